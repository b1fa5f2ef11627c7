import MailMessage
import SMTPCore

/// One SMTP session as the proxy relayed it or a capture showed it: the `smtpscope.session/1`
/// record of README "Transcript schema" (normative form: `session.v1.schema.json`).
///
/// `nil` always means "not known" and is written as JSON `null`, never as an empty string.
public struct SessionRecord: Sendable, Equatable {
    public static let schemaName = "smtpscope.session/1"

    public enum Source: String, Sendable, Equatable, CaseIterable {
        case proxy
        case pcap
    }

    public var sessionID: String
    public var source: Source
    public var start: Timestamp
    public var end: Timestamp?
    /// The peer that opened the connection.
    public var client: Endpoint?
    /// The address the client spoke to.
    public var server: Endpoint?
    /// Proxy mode only: where the proxy connected.
    public var upstream: Endpoint?
    public var greeting: Reply?
    /// The most recent HELO/EHLO seen in clear text.
    public var helo: Helo?
    /// Keywords (with their parameters) of the most recent EHLO reply; `nil` when none was seen.
    public var extensions: [String]?
    public var tls: TLS
    /// Proxy mode only: the upstream leg's TLS, when the proxy started it there; `nil` when the
    /// upstream leg stayed in plaintext (and in pcap mode). Written only when present.
    public var upstreamTLS: UpstreamTLS?
    public var auth: Auth?
    public var transactions: [Transaction]
    /// Verdicts of `connect`, `helo` and `auth` rules, which belong to no transaction.
    public var rules: [RuleVerdict] = []
    public var events: [Event]
    public var outcome: SessionOutcome
    public var close: Close?
    public var anomalies: [Anomaly]
    public var bytes: ByteCounts

    public init(
        sessionID: String,
        source: Source,
        start: Timestamp,
        end: Timestamp? = nil,
        client: Endpoint? = nil,
        server: Endpoint? = nil,
        upstream: Endpoint? = nil,
        greeting: Reply? = nil,
        helo: Helo? = nil,
        extensions: [String]? = nil,
        tls: TLS = TLS(),
        auth: Auth? = nil,
        transactions: [Transaction] = [],
        events: [Event] = [],
        outcome: SessionOutcome = .incomplete,
        close: Close? = nil,
        anomalies: [Anomaly] = [],
        bytes: ByteCounts = ByteCounts()
    ) {
        self.sessionID = sessionID
        self.source = source
        self.start = start
        self.end = end
        self.client = client
        self.server = server
        self.upstream = upstream
        self.greeting = greeting
        self.helo = helo
        self.extensions = extensions
        self.tls = tls
        self.auth = auth
        self.transactions = transactions
        self.events = events
        self.outcome = outcome
        self.close = close
        self.anomalies = anomalies
        self.bytes = bytes
    }
}

extension SessionRecord {
    public struct Endpoint: Sendable, Hashable {
        /// Textual address: dotted quad, or RFC 5952 IPv6 text.
        public var ip: String
        public var port: Int

        public init(ip: String, port: Int) {
            self.ip = ip
            self.port = port
        }
    }

    /// An SMTP reply (RFC 5321 §4.2) as recorded: multi-line texts are joined with "\n", each line
    /// without its code and separator; the enhanced code (RFC 3463) is lifted out of the first line.
    public struct Reply: Sendable, Equatable {
        public var code: Int
        /// "X.Y.Z", or `nil` when the reply carries none.
        public var enhanced: String?
        public var text: String

        public init(code: Int, enhanced: String? = nil, text: String) {
            self.code = code
            self.enhanced = enhanced
            self.text = text
        }
    }

    public struct Helo: Sendable, Equatable {
        /// "HELO", "EHLO" or "LHLO".
        public var verb: String
        public var name: String

        public init(verb: String, name: String) {
            self.verb = verb
            self.name = name
        }
    }

    public struct TLS: Sendable, Equatable {
        public enum Mode: String, Sendable, Equatable, CaseIterable {
            case none
            case starttls
            case implicit
            case passthrough
        }

        public var mode: Mode
        /// Whether a handshake completed; `nil` when the inspector could not tell.
        public var established: Bool?
        /// "TLSv1.2", "TLSv1.3", ...
        public var version: String?
        /// IANA cipher suite name, e.g. "TLS_AES_128_GCM_SHA256".
        public var cipher: String?
        public var sni: String?
        public var failure: String?

        public init(
            mode: Mode = .none,
            established: Bool? = nil,
            version: String? = nil,
            cipher: String? = nil,
            sni: String? = nil,
            failure: String? = nil
        ) {
            self.mode = mode
            self.established = established
            self.version = version
            self.cipher = cipher
            self.sni = sni
            self.failure = failure
        }
    }

    /// The upstream leg's STARTTLS (RFC 3207) as the proxy negotiated it: shaped like `TLS`, with
    /// the certificate check the proxy made.
    public struct UpstreamTLS: Sendable, Equatable {
        public enum Certificate: String, Sendable, Equatable, CaseIterable {
            /// `--upstream-tls verify`: the chain and the host name were checked and passed.
            case verified
            /// `opportunistic` or `require` (RFC 7435): any certificate is taken.
            case notChecked = "not_checked"
            /// `verify`, and the check failed the handshake.
            case failed
        }

        public var mode: TLS.Mode
        public var established: Bool
        public var version: String?
        public var cipher: String?
        /// The name the proxy sent in its ClientHello.
        public var sni: String?
        public var certificate: Certificate?
        public var failure: String?

        public init(
            mode: TLS.Mode = .starttls,
            established: Bool,
            version: String? = nil,
            cipher: String? = nil,
            sni: String? = nil,
            certificate: Certificate? = nil,
            failure: String? = nil
        ) {
            self.mode = mode
            self.established = established
            self.version = version
            self.cipher = cipher
            self.sni = sni
            self.certificate = certificate
            self.failure = failure
        }
    }

    public struct Auth: Sendable, Equatable {
        public enum Result: String, Sendable, Equatable, CaseIterable {
            case success
            case failure
        }

        public var mechanism: String
        /// The decoded authentication identity, or a keyed hash of it with `--redact-users`.
        /// Never a password, token or blob.
        public var user: String?
        public var result: Result?
        public var code: Int?

        public init(mechanism: String, user: String? = nil, result: Result? = nil, code: Int? = nil) {
            self.mechanism = mechanism
            self.user = user
            self.result = result
            self.code = code
        }
    }

    public struct Transaction: Sendable, Equatable {
        public var mailFrom: MailFrom?
        public var rcptTo: [Recipient]
        public var data: DataTransfer?
        public var message: Message?
        public var rules: [RuleVerdict]
        public var outcome: TransactionOutcome

        public init(
            mailFrom: MailFrom? = nil,
            rcptTo: [Recipient] = [],
            data: DataTransfer? = nil,
            message: Message? = nil,
            rules: [RuleVerdict] = [],
            outcome: TransactionOutcome = .unknown
        ) {
            self.mailFrom = mailFrom
            self.rcptTo = rcptTo
            self.data = data
            self.message = message
            self.rules = rules
            self.outcome = outcome
        }
    }

    /// An ESMTP parameter (RFC 5321 §4.1.2 `esmtp-param`), in the order sent; `value` is `nil` for a
    /// keyword without "=".
    public struct Parameter: Sendable, Equatable {
        public var keyword: String
        public var value: String?

        public init(keyword: String, value: String?) {
            self.keyword = keyword
            self.value = value
        }
    }

    public struct MailFrom: Sendable, Equatable {
        /// Without angle brackets, as sent; "" for the null reverse-path; `nil` when not seen.
        public var address: String?
        public var params: [Parameter]
        public var reply: Reply?
        public var rewrittenTo: String?

        public init(address: String?, params: [Parameter] = [], reply: Reply? = nil, rewrittenTo: String? = nil) {
            self.address = address
            self.params = params
            self.reply = reply
            self.rewrittenTo = rewrittenTo
        }
    }

    public struct Recipient: Sendable, Equatable {
        public var address: String?
        public var params: [Parameter]
        public var reply: Reply?

        public init(address: String?, params: [Parameter] = [], reply: Reply? = nil) {
            self.address = address
            self.params = params
            self.reply = reply
        }
    }

    public struct DataTransfer: Sendable, Equatable {
        public enum Command: String, Sendable, Equatable, CaseIterable {
            case data = "DATA"
            case bdat = "BDAT"
        }

        public var command: Command
        /// Message octets after dot-unstuffing (DATA) or as chunked (BDAT); `nil` when not seen.
        public var size: Int?
        public var chunks: Int
        /// The reply to DATA itself when it was not 354 (the message never started).
        public var initialReply: Reply?
        /// The reply to the end of data, or to the `BDAT … LAST` chunk.
        public var reply: Reply?

        public init(command: Command, size: Int? = nil, chunks: Int = 0, initialReply: Reply? = nil, reply: Reply? = nil) {
            self.command = command
            self.size = size
            self.chunks = chunks
            self.initialReply = initialReply
            self.reply = reply
        }
    }

    public struct Message: Sendable, Equatable {
        public var messageID: String?
        public var subject: String?
        public var from: [String]
        public var to: [String]
        public var cc: [String]
        public var date: String?
        public var size: Int
        /// Lowercase hex SHA-256 of the message as delivered (unstuffed, CRLF line endings kept).
        public var sha256: String?
        public var attachments: [Attachment]

        public init(
            messageID: String? = nil,
            subject: String? = nil,
            from: [String] = [],
            to: [String] = [],
            cc: [String] = [],
            date: String? = nil,
            size: Int = 0,
            sha256: String? = nil,
            attachments: [Attachment] = []
        ) {
            self.messageID = messageID
            self.subject = subject
            self.from = from
            self.to = to
            self.cc = cc
            self.date = date
            self.size = size
            self.sha256 = sha256
            self.attachments = attachments
        }
    }

    /// A leaf MIME part that is an attachment, as the message reader found it; `size` is decoded octets.
    public typealias Attachment = MailMessage.Attachment

    /// One action of one matching rule.
    public struct RuleVerdict: Sendable, Equatable {
        /// Whether the rule was written to be enforced or only watched (`mode monitor`).
        public enum Mode: String, Sendable, Equatable, CaseIterable {
            case enforce
            case monitor
        }

        public var rule: String
        public var file: String
        /// The rule's line in `file`, when known.
        public var line: Int?
        public var stage: String
        public var action: String
        /// True only when the action was carried out: never in `pcap` or `rules test`.
        public var enforced: Bool
        public var mode: Mode?
        /// What the action said: the reply, the address, the header, the tag or log text.
        public var detail: String?

        public init(rule: String, file: String, line: Int? = nil, stage: String, action: String, enforced: Bool, mode: Mode? = nil, detail: String? = nil) {
            self.rule = rule
            self.file = file
            self.line = line
            self.stage = stage
            self.action = action
            self.enforced = enforced
            self.mode = mode
            self.detail = detail
        }
    }

    public enum TransactionOutcome: String, Sendable, Equatable, CaseIterable {
        case delivered
        case rejected
        case tempfailed
        case aborted
        case discarded
        case quarantined
        case unknown
    }

    public enum SessionOutcome: String, Sendable, Equatable, CaseIterable {
        case incomplete
        case tlsFailed = "tls_failed"
        case reset
        case serverClosed = "server_closed"
        case timeout
        case rejected
        case tempfail
        case completed
    }

    public enum Party: String, Sendable, Equatable, CaseIterable {
        case client
        case server
        case proxy
    }

    /// One command or reply line in order, or one message-content event (`octets` set).
    public struct Event: Sendable, Equatable {
        /// Microseconds since the session's start (written as seconds with six decimals).
        public var t: Int64
        public var from: Party
        public var to: Party
        /// The line without its CRLF; AUTH payloads are replaced by "[redacted]".
        public var text: String
        /// For message content: the number of octets carried.
        public var octets: Int?

        public init(t: Int64, from: Party, to: Party, text: String, octets: Int? = nil) {
            self.t = t
            self.from = from
            self.to = to
            self.text = text
            self.octets = octets
        }
    }

    public struct Close: Sendable, Equatable {
        public enum Reason: String, Sendable, Equatable, CaseIterable {
            case quit = "QUIT"
            case rst = "RST"
            case fin = "FIN"
            case timeout
            case error
        }

        public var by: Party?
        public var reason: Reason

        public init(by: Party?, reason: Reason) {
            self.by = by
            self.reason = reason
        }
    }

    public struct Anomaly: Sendable, Equatable {
        /// One of README "Anomalies", e.g. "bare_lf_in_data".
        public var kind: String
        public var t: Int64
        public var detail: String?

        public init(kind: String, t: Int64, detail: String? = nil) {
            self.kind = kind
            self.t = t
            self.detail = detail
        }
    }

    public struct ByteCounts: Sendable, Equatable {
        public var client: Int
        public var server: Int

        public init(client: Int = 0, server: Int = 0) {
            self.client = client
            self.server = server
        }
    }
}
