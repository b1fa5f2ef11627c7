import SMTPCore

/// One session record as an RFC 5424 syslog message, framed for TCP by RFC 6587 octet counting
/// (`proxy --transcripts syslog+tcp://HOST:PORT`).
///
/// ```
/// 126 <22>1 2026-11-29T06:45:01.735456Z mx1 smtpscope 4242 session - {"schema":"smtpscope.session/1",…}
/// ```
///
/// - PRI: facility `mail` (2); severity `info` (6) for a session whose outcome is `completed`,
///   `notice` (5) for every other outcome, so a collector can route refusals and failures apart.
/// - TIMESTAMP: the session's end (its start when it has none), RFC 3339 UTC with microseconds
///   (§6.2.3 allows up to six fractional digits). The record's own time, not the sending time, so
///   a record held back while the collector was down keeps its place in time.
/// - HOSTNAME, APP-NAME (`smtpscope`), PROCID (the process id), MSGID (`session`): PRINTUSASCII
///   only, cut to the §6 maximum lengths; an empty or unusable field is the NILVALUE `-`.
/// - STRUCTURED-DATA: `-`. Everything is in the JSON; an SD-ID of our own would need an IANA
///   enterprise number (§7.2.2) that the project does not have.
/// - MSG: the record exactly as its JSON Lines line, without the line feed. No BOM: RFC 8259 §8.1
///   forbids a byte order mark in front of JSON sent over a network, and RFC 5424 §6.4 allows
///   MSG-ANY, which collectors pass on unchanged. The JSON is UTF-8 all the same.
///
/// Nothing in MSG needs escaping for octet counting: the frame's length says where it ends,
/// whatever it holds.
public struct SyslogMessage: Sendable, Equatable {
    public enum Severity: Int, Sendable, Equatable {
        case notice = 5
        case info = 6
    }

    /// RFC 5424 §6.2.1, facility 2: "mail system".
    public static let mailFacility = 2
    public static let appName = "smtpscope"
    public static let sessionMessageID = "session"

    public var severity: Severity
    public var timestamp: Timestamp
    public var hostname: String
    public var processID: String
    /// The record's JSON, one line without the line feed.
    public var json: [UInt8]

    public init(record: SessionRecord, hostname: String, processID: String) {
        severity = record.outcome == .completed ? .info : .notice
        timestamp = record.end ?? record.start
        self.hostname = hostname
        self.processID = processID
        var line: [UInt8] = []
        line.reserveCapacity(1024 + record.events.count * 64)
        SessionRecordEncoder.writeRecord(record, into: &line)
        json = line
    }

    /// `<PRI>` as §6.2.1 computes it: facility × 8 + severity.
    public var priority: Int {
        Self.mailFacility * 8 + severity.rawValue
    }

    /// The SYSLOG-MSG of §6: HEADER SP STRUCTURED-DATA SP MSG.
    public func appendMessage(into out: inout [UInt8]) {
        out.append(UInt8(ascii: "<"))
        out.append(contentsOf: String(priority).utf8)
        out.append(contentsOf: ">1 ".utf8)
        RFC3339.write(timestamp, into: &out)
        out.append(UInt8(ascii: " "))
        Self.appendHeaderField(hostname, maximumLength: 255, into: &out)
        out.append(UInt8(ascii: " "))
        Self.appendHeaderField(Self.appName, maximumLength: 48, into: &out)
        out.append(UInt8(ascii: " "))
        Self.appendHeaderField(processID, maximumLength: 128, into: &out)
        out.append(UInt8(ascii: " "))
        Self.appendHeaderField(Self.sessionMessageID, maximumLength: 32, into: &out)
        out.append(contentsOf: " - ".utf8)
        out.append(contentsOf: json)
    }

    /// RFC 6587 §3.4.1 octet counting: MSG-LEN SP SYSLOG-MSG.
    public func appendFrame(into out: inout [UInt8]) {
        var message: [UInt8] = []
        message.reserveCapacity(json.count + 128)
        appendMessage(into: &message)
        out.append(contentsOf: String(message.count).utf8)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: message)
    }

    /// The frame as one array.
    public var frame: [UInt8] {
        var out: [UInt8] = []
        appendFrame(into: &out)
        return out
    }

    /// A header field is 1 to N PRINTUSASCII octets (33...126); anything else would end the field
    /// early or break a strict parser, so such octets are left out. Nothing left is the NILVALUE.
    static func appendHeaderField(_ value: String, maximumLength: Int, into out: inout [UInt8]) {
        var written = 0
        for octet in value.utf8 where (33...126).contains(octet) {
            guard written < maximumLength else { break }
            out.append(octet)
            written += 1
        }
        if written == 0 { out.append(UInt8(ascii: "-")) }
    }
}
