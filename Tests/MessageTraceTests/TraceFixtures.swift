import MessageTrace
import SMTPCore
import SMTPTranscript

#if canImport(Glibc)
import Glibc
#endif

/// Records for the index tests, built as the proxy would write them.
enum TraceFixtures {
    /// 2026-01-10T12:00:00Z plus `minutes`.
    static func time(_ minutes: Int64) -> Timestamp {
        Timestamp(microsecondsSinceEpoch: 1_768_046_400_000_000 + minutes * 60_000_000)
    }

    static func message(
        from sender: String?,
        to recipients: [(String, Int)],
        outcome: SessionRecord.TransactionOutcome = .delivered,
        subject: String? = "Hello",
        messageID: String? = nil,
        dataReply: SessionRecord.Reply? = nil,
        rules: [SessionRecord.RuleVerdict] = []
    ) -> SessionRecord.Transaction {
        let finalReply = dataReply ?? (outcome == .delivered ? SessionRecord.Reply(code: 250, enhanced: "2.0.0", text: "Ok: queued") : nil)
        return SessionRecord.Transaction(
            mailFrom: SessionRecord.MailFrom(address: sender, reply: SessionRecord.Reply(code: 250, text: "Ok")),
            rcptTo: recipients.map { SessionRecord.Recipient(address: $0.0, reply: SessionRecord.Reply(code: $0.1, text: $0.1 < 400 ? "Ok" : "No")) },
            data: SessionRecord.DataTransfer(command: .data, size: 100, chunks: 1, reply: finalReply),
            message: SessionRecord.Message(messageID: messageID, subject: subject, size: 100),
            rules: rules,
            outcome: outcome
        )
    }

    static func session(
        _ id: String,
        at minutes: Int64,
        client: String = "192.0.2.10",
        user: String? = nil,
        outcome: SessionRecord.SessionOutcome = .completed,
        transactions: [SessionRecord.Transaction] = [],
        rules: [SessionRecord.RuleVerdict] = []
    ) -> SessionRecord {
        var record = SessionRecord(
            sessionID: id,
            source: .proxy,
            start: time(minutes),
            end: time(minutes),
            client: SessionRecord.Endpoint(ip: client, port: 40000),
            server: SessionRecord.Endpoint(ip: "127.0.0.1", port: 2525),
            greeting: SessionRecord.Reply(code: 220, text: "ready"),
            helo: SessionRecord.Helo(verb: "EHLO", name: "client.example"),
            auth: user.map { SessionRecord.Auth(mechanism: "PLAIN", user: $0, result: .success, code: 235) },
            transactions: transactions,
            outcome: outcome
        )
        record.rules = rules
        return record
    }

    /// Microseconds since the epoch, now.
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000
    }

    static func indexed(_ record: SessionRecord) -> IndexedSession {
        IndexedSession(record, line: SessionRecordEncoder.jsonLine(record))
    }

    /// A fresh index in a directory of its own; removed with the directory.
    static func temporaryDirectory() -> String {
        var template = Array("/tmp/smtpscope-trace-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return String(cString: path!)
    }

    /// Removes the directory and the files in it (the tests make no subdirectories).
    static func remove(_ directory: String) {
        if let handle = opendir(directory) {
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(directory + "/" + name) }
            }
            closedir(handle)
        }
        rmdir(directory)
    }
}
