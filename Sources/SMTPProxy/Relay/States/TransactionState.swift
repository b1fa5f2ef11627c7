import SMTPCore
import SMTPTranscript

extension RelaySessionStateMachine {
    /// A transaction the client opened with MAIL (RFC 5321 §3.3), as far as the proxy knows it.
    struct Transaction: Sendable {
        var smtpUTF8: Bool
        /// The reverse-path and parameters as sent upstream, for a redirect's new transaction.
        var mailFrom: SMTPPath
        var mailParameters: [ESMTPParameter]
        var mailAccepted = false
        /// False when a rule settled the transaction before MAIL went upstream.
        var upstreamOpen = true
        var recipientCommands = 0
        var accepted: [SMTPPath] = []
        var addedRecipients: [SMTPPath] = []
        var redirect: SMTPPath?
        /// Set once a rule discarded or quarantined the transaction: the client is answered as if
        /// it were delivered, and nothing more of it goes upstream.
        var settlement: Settlement?
    }

    /// What a rule decided for a whole transaction instead of delivery.
    enum Settlement: Sendable, Hashable {
        case discard
        case quarantine(reason: String)

        var outcome: SessionRecord.TransactionOutcome {
            switch self {
            case .discard: .discarded
            case .quarantine: .quarantined
            }
        }
    }

    /// The client's mail transaction, and the message it is sending, if any. Content exists only
    /// inside a transaction: a message without a MAIL cannot be represented.
    enum TransactionState: Sendable {
        case idle
        case open(Transaction)
        case receivingMessage(Transaction, Content)

        var transaction: Transaction? {
            get {
                switch self {
                case .idle: nil
                case .open(let transaction), .receivingMessage(let transaction, _): transaction
                }
            }
            set {
                switch (self, newValue) {
                case (.idle, nil), (.open, nil):
                    self = .idle
                case (.receivingMessage, nil):
                    preconditionFailure("a transaction ended while its message content was still open")
                case (.idle, let transaction?), (.open, let transaction?):
                    self = .open(transaction)
                case (.receivingMessage(_, let content), let transaction?):
                    self = .receivingMessage(transaction, content)
                }
            }
        }

        var content: Content? {
            get {
                if case .receivingMessage(_, let content) = self { return content }
                return nil
            }
            set {
                switch (self, newValue) {
                case (.idle, nil), (.open, nil):
                    break
                case (.receivingMessage(let transaction, _), nil):
                    self = .open(transaction)
                case (.idle, .some):
                    preconditionFailure("message content without a transaction")
                case (.open(let transaction), let content?), (.receivingMessage(let transaction, _), let content?):
                    self = .receivingMessage(transaction, content)
                }
            }
        }
    }
}
