/// The index's tables, one version per migration. Each version's statements are kept as they
/// shipped: a change is a new migration, so an index made by an older smtpscope is brought up to
/// date in place, and one made by a newer smtpscope is refused rather than misread.
///
/// - `session`: one row per record, keyed by session id (adding it again changes nothing); the
///   record's JSON line as the transcript had it; time, client address (16 octets, so a CIDR is a
///   range), AUTH user and outcome, each indexed with the time for "newest first".
/// - `message`: one row per transaction: sender (as sent, folded, and its domain), outcome, Subject
///   (folded for substring search), Message-ID, and what the table shows (the deciding reply and rule).
/// - `recipient`: one row per RCPT TO, folded address and domain indexed with the time.
/// - `verdict`: the rule names with a verdict in the session.
/// - `transcript_file`: how far each transcript file has been indexed from the file.
public enum TraceSchema {
    public struct Migration: Sendable {
        public var identifier: String
        public var statements: [String]
    }

    public static func migrations(_ dialect: TraceSQL.Dialect) -> [Migration] {
        let integer = dialect == .sqlite ? "INTEGER" : "BIGINT"
        let blob = dialect == .sqlite ? "BLOB" : "BYTEA"
        return [
            Migration(identifier: "v1", statements: [
                """
                CREATE TABLE session (
                    id TEXT PRIMARY KEY NOT NULL,
                    start_us \(integer) NOT NULL,
                    client_ip TEXT,
                    client_addr \(blob),
                    client_port \(integer),
                    auth_user TEXT,
                    outcome TEXT NOT NULL,
                    record TEXT NOT NULL
                )
                """,
                "CREATE INDEX session_by_start ON session (start_us)",
                "CREATE INDEX session_by_client ON session (client_addr, start_us)",
                "CREATE INDEX session_by_user ON session (auth_user, start_us)",
                "CREATE INDEX session_by_outcome ON session (outcome, start_us)",
                """
                CREATE TABLE message (
                    session_id TEXT NOT NULL REFERENCES session (id) ON DELETE CASCADE,
                    txn \(integer) NOT NULL,
                    start_us \(integer) NOT NULL,
                    sender TEXT,
                    sender_key TEXT,
                    sender_domain TEXT,
                    outcome TEXT NOT NULL,
                    subject TEXT,
                    subject_key TEXT,
                    message_id TEXT,
                    deciding_reply TEXT,
                    deciding_rule TEXT,
                    PRIMARY KEY (session_id, txn)
                )
                """,
                "CREATE INDEX message_by_sender ON message (sender_key, start_us)",
                "CREATE INDEX message_by_sender_domain ON message (sender_domain, start_us)",
                "CREATE INDEX message_by_outcome ON message (outcome, start_us)",
                "CREATE INDEX message_by_message_id ON message (message_id)",
                """
                CREATE TABLE recipient (
                    session_id TEXT NOT NULL,
                    txn \(integer) NOT NULL,
                    seq \(integer) NOT NULL,
                    start_us \(integer) NOT NULL,
                    address TEXT,
                    address_key TEXT,
                    domain TEXT,
                    reply_code \(integer),
                    PRIMARY KEY (session_id, txn, seq),
                    FOREIGN KEY (session_id, txn) REFERENCES message (session_id, txn) ON DELETE CASCADE
                )
                """,
                "CREATE INDEX recipient_by_address ON recipient (address_key, start_us)",
                "CREATE INDEX recipient_by_domain ON recipient (domain, start_us)",
                """
                CREATE TABLE verdict (
                    session_id TEXT NOT NULL REFERENCES session (id) ON DELETE CASCADE,
                    rule TEXT NOT NULL,
                    PRIMARY KEY (session_id, rule)
                )
                """,
                "CREATE INDEX verdict_by_rule ON verdict (rule)",
                """
                CREATE TABLE transcript_file (
                    path TEXT PRIMARY KEY NOT NULL,
                    indexed_octets \(integer) NOT NULL
                )
                """,
            ]),
        ] + (dialect == .sqlite ? [subjectTrigrams] : [])
    }

    /// SQLite v2: the folded subjects in an FTS5 trigram table over `message` (external content,
    /// kept in step by triggers, deletions by retention included), so `--subject` reads the index
    /// instead of every subject. An index made before it is filled from `message` in place.
    static let subjectTrigrams = Migration(identifier: "v2-subject-trigrams", statements: [
        "CREATE VIRTUAL TABLE message_subject USING fts5(subject_key, content='message', content_rowid='rowid', tokenize='trigram')",
        "INSERT INTO message_subject (message_subject) VALUES ('rebuild')",
        """
        CREATE TRIGGER message_subject_insert AFTER INSERT ON message WHEN new.subject_key IS NOT NULL BEGIN
            INSERT INTO message_subject (rowid, subject_key) VALUES (new.rowid, new.subject_key);
        END
        """,
        """
        CREATE TRIGGER message_subject_delete AFTER DELETE ON message WHEN old.subject_key IS NOT NULL BEGIN
            INSERT INTO message_subject (message_subject, rowid, subject_key) VALUES ('delete', old.rowid, old.subject_key);
        END
        """,
    ])

    /// The rows of one session, as statements with bound values (the session row first; the
    /// others only when it was new). `?` placeholders for SQLite, `$n` for PostgreSQL.
    static func insertSession(_ session: IndexedSession, dialect: TraceSQL.Dialect) -> TraceStatement {
        var builder = TraceSQL.Builder(dialect: dialect)
        let values: [TraceValue?] = [
            .text(session.sessionID), .integer(session.start), session.clientIP.map(TraceValue.text),
            session.clientAddress.map(TraceValue.blob), session.clientPort.map { .integer(Int64($0)) },
            session.user.map(TraceValue.text), .text(session.outcome), .text(session.line),
        ]
        let placeholders = values.map { builder.bindOptional($0) }.joined(separator: ", ")
        let conflict = dialect == .sqlite ? "INSERT OR IGNORE INTO" : "INSERT INTO"
        let tail = dialect == .sqlite ? "" : " ON CONFLICT (id) DO NOTHING"
        return TraceStatement(
            sql: "\(conflict) session (id, start_us, client_ip, client_addr, client_port, auth_user, outcome, record) VALUES (\(placeholders))\(tail)",
            arguments: builder.arguments
        )
    }

    static func insertChildren(_ session: IndexedSession, dialect: TraceSQL.Dialect) -> [TraceStatement] {
        var statements: [TraceStatement] = []
        for message in session.messages {
            var builder = TraceSQL.Builder(dialect: dialect)
            let values: [TraceValue?] = [
                .text(session.sessionID), .integer(Int64(message.position)), .integer(session.start),
                message.sender.map(TraceValue.text), message.senderKey.map(TraceValue.text), message.senderDomain.map(TraceValue.text),
                .text(message.outcome), message.subject.map(TraceValue.text), message.subjectKey.map(TraceValue.text),
                message.messageID.map(TraceValue.text), message.decidingReply.map(TraceValue.text), message.decidingRule.map(TraceValue.text),
            ]
            let placeholders = values.map { builder.bindOptional($0) }.joined(separator: ", ")
            statements.append(TraceStatement(
                sql: "INSERT INTO message (session_id, txn, start_us, sender, sender_key, sender_domain, outcome, subject, subject_key, message_id, deciding_reply, deciding_rule) VALUES (\(placeholders))",
                arguments: builder.arguments
            ))
            for (seq, recipient) in message.recipients.enumerated() {
                var builder = TraceSQL.Builder(dialect: dialect)
                let values: [TraceValue?] = [
                    .text(session.sessionID), .integer(Int64(message.position)), .integer(Int64(seq)), .integer(session.start),
                    recipient.address.map(TraceValue.text), recipient.addressKey.map(TraceValue.text),
                    recipient.domain.map(TraceValue.text), recipient.replyCode.map { .integer(Int64($0)) },
                ]
                let placeholders = values.map { builder.bindOptional($0) }.joined(separator: ", ")
                statements.append(TraceStatement(
                    sql: "INSERT INTO recipient (session_id, txn, seq, start_us, address, address_key, domain, reply_code) VALUES (\(placeholders))",
                    arguments: builder.arguments
                ))
            }
        }
        for rule in session.rules {
            var builder = TraceSQL.Builder(dialect: dialect)
            let placeholders = [builder.bind(.text(session.sessionID)), builder.bind(.text(rule))].joined(separator: ", ")
            statements.append(TraceStatement(sql: "INSERT INTO verdict (session_id, rule) VALUES (\(placeholders))", arguments: builder.arguments))
        }
        return statements
    }
}

extension TraceSQL.Builder {
    /// A NULL is written as the literal, not bound: both databases then need no type for it.
    mutating func bindOptional(_ value: TraceValue?) -> String {
        guard let value else { return "NULL" }
        return bind(value)
    }
}
