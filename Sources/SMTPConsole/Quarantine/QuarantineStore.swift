import Foundation
import NIOPosix
import SMTPCore
import SMTPTranscript

/// The quarantine folder (`--quarantine DIR`) as the console sees it: list, read, delete,
/// release, and `actions.jsonl`, where every release and deletion is recorded (one JSON line:
/// time, action, id, session, envelope, and for a release the upstream and its reply). File work
/// runs on NIO's thread pool, never on an event loop.
public struct QuarantineStore: Sendable {
    public var directory: String
    /// Where a release goes; nil: releasing is not possible (say, a transparent proxy).
    public var upstream: ConsoleAddress?
    /// The name a release gives in EHLO.
    public var heloName: String

    public init(directory: String, upstream: ConsoleAddress?, heloName: String) {
        self.directory = directory
        self.upstream = upstream
        self.heloName = heloName
    }

    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    func path(_ id: String, _ suffix: String) -> String {
        directory + "/" + id + suffix
    }

    /// Every entry, newest first; a `.json` that is not a quarantine record is left out.
    public func list() async throws -> [QuarantineEntry] {
        let directory = self.directory
        return try await NIOThreadPool.singleton.runIfActive {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            var entries: [QuarantineEntry] = []
            for name in names where name.hasSuffix(".json") && name != "actions.jsonl" {
                let id = String(name.dropLast(5))
                guard QuarantineEntry.isValidID(id), FileManager.default.fileExists(atPath: directory + "/" + id + ".eml"),
                      let data = FileManager.default.contents(atPath: directory + "/" + name),
                      let entry = QuarantineEntry.parse(data, id: id) else { continue }
                entries.append(entry)
            }
            return entries.sorted { ($0.quarantined, $0.id) > ($1.quarantined, $1.id) }
        }
    }

    /// The entry and its message's header section (at most 64 KiB), or nil.
    public func entry(_ id: String) async throws -> (QuarantineEntry, String)? {
        guard QuarantineEntry.isValidID(id) else { return nil }
        let json = path(id, ".json")
        let eml = path(id, ".eml")
        return try await NIOThreadPool.singleton.runIfActive {
            guard let data = FileManager.default.contents(atPath: json), let entry = QuarantineEntry.parse(data, id: id),
                  let handle = FileHandle(forReadingAtPath: eml) else { return nil }
            defer { try? handle.close() }
            let head = (try? handle.read(upToCount: 64 * 1024)) ?? Data()
            let text = String(decoding: head, as: UTF8.self)
            let end = text.range(of: "\r\n\r\n") ?? text.range(of: "\n\n")
            // Lines end in LF on the page (a lone CR would be shown as U+FFFD by the escaping).
            let section = end.map { String(text[..<$0.lowerBound]) } ?? text
            return (entry, section.replacingOccurrences(of: "\r\n", with: "\n"))
        }
    }

    /// Deletes both files and records it.
    public func delete(_ id: String) async throws {
        guard let (entry, _) = try await entry(id) else { throw Problem(description: "no quarantined message \(id)") }
        try await remove(entry)
        try await record(action: "deleted", entry, upstream: nil, reply: nil)
    }

    /// Sends the message to the upstream with its envelope; on the upstream's 250, removes it from
    /// the quarantine and records the release. Returns the upstream's reply.
    public func release(_ id: String) async throws -> String {
        guard let upstream else { throw Problem(description: "no upstream to release to (give the console --upstream HOST:PORT)") }
        guard let (entry, _) = try await entry(id) else { throw Problem(description: "no quarantined message \(id)") }
        let eml = path(id, ".eml")
        let content = try await NIOThreadPool.singleton.runIfActive { FileManager.default.contents(atPath: eml) }
        guard let content else { throw Problem(description: "cannot read \(eml)") }
        let delivery = SMTPDelivery(heloName: heloName, mailFrom: entry.mailFrom ?? "", rcptTo: entry.rcptTo)
        let reply = try await SMTPReleaseClient.deliver(Array(content), delivery: delivery, to: upstream)
        try await remove(entry)
        try await record(action: "released", entry, upstream: upstream, reply: reply)
        return reply
    }

    func remove(_ entry: QuarantineEntry) async throws {
        let paths = [path(entry.id, ".eml"), path(entry.id, ".json")]
        try await NIOThreadPool.singleton.runIfActive {
            for path in paths { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    /// Appends the action's line to `actions.jsonl` (0640, like the quarantine's files).
    func record(action: String, _ entry: QuarantineEntry, upstream: ConsoleAddress?, reply: String?) async throws {
        var line: [UInt8] = Array("{\"time\":\"".utf8)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        RFC3339.write(Timestamp(seconds: Int64(now.tv_sec), microseconds: Int64(now.tv_nsec) / 1000), into: &line)
        line += Array("\",\"action\":".utf8)
        JSONOutput.writeString(action, into: &line)
        line += Array(",\"id\":".utf8)
        JSONOutput.writeString(entry.id, into: &line)
        line += Array(",\"session_id\":".utf8)
        JSONOutput.writeString(entry.sessionID, into: &line)
        line += Array(",\"mail_from\":".utf8)
        if let from = entry.mailFrom { JSONOutput.writeString(from, into: &line) } else { JSONOutput.writeNull(into: &line) }
        line += Array(",\"rcpt_to\":[".utf8)
        for (index, recipient) in entry.rcptTo.enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            JSONOutput.writeString(recipient, into: &line)
        }
        line += Array("],\"upstream\":".utf8)
        if let upstream { JSONOutput.writeString(upstream.description, into: &line) } else { JSONOutput.writeNull(into: &line) }
        line += Array(",\"reply\":".utf8)
        if let reply { JSONOutput.writeString(reply, into: &line) } else { JSONOutput.writeNull(into: &line) }
        line += Array("}\n".utf8)
        let path = directory + "/actions.jsonl"
        let octets = line
        let written: Bool = try await NIOThreadPool.singleton.runIfActive {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            // One write(2) of one line: concurrent appends do not interleave.
            return octets.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == octets.count
        }
        if !written { throw Problem(description: "the \(action) was done but could not be recorded in \(path)") }
    }
}
