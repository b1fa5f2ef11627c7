import MailMessage
import NIOCore
import SMTPCore

extension RelaySessionStateMachine {
    enum ContentFailure: Sendable, Hashable {
        case forbidden(DataContentWriter.Octet)
        case tooLarge
        case headerTooLarge
        case upstreamLost
        case spoolFailed
        case rejected(PolicyReply)
    }

    /// Message content in flight from the client, inside its transaction (`TransactionState`).
    struct Content: Sendable {
        var commandID: Int
        var kind: ConversationEvent.ContentCommand
        var parser = DataContentParser(reportsLenientEndCandidates: false)
        var writer = DataContentWriter()
        var octets = 0
        var failure: ContentFailure?
        /// BDAT: octets left in the current chunk, whether it is the last, and its reply slot.
        var chunkRemaining: UInt64 = 0
        var chunkIsLast = false
        var chunkSlot = 0
        var chunkSize: UInt64 = 0
        /// BDAT relayed as BDAT (RFC 3030; the upstream offers CHUNKING): each client chunk goes
        /// upstream raw under its own `BDAT n`, never LAST; only the proxy's closing `BDAT 0 LAST`,
        /// sent once the whole message has passed its checks, lets the upstream commit it.
        var relaysChunks = false
        /// The current chunk's `BDAT n` went upstream: its octets are owed there.
        var chunkRelayed = false
        /// An upstream reply to a chunk that was not 2xx: RFC 3030 §2 says no further BDAT may
        /// follow it, so later chunks stay with the proxy and are answered with it.
        var upstreamRefusal: SMTPReply?
        /// Spooled: the proxy answers 354 and the chunks itself and keeps the message until `message`
        /// rules have seen it whole; nothing goes upstream before.
        var spooled = false
        /// Reads the spooled message for the `message` stage's facts, and for the record.
        var inspector: MessageInspector?
        /// The inspector's reading, taken at the end of the content.
        var summary: MessageSummary?
        /// The header section so far, bounded by `maxHeaderSectionOctets`: its octets, the last four of
        /// them, and whether its empty line was seen.
        var headerOctets = 0
        var headerTail: UInt32 = 0
        var headerEnded = false

        /// Reads `slice` up to the end of the header section; false once the section is longer
        /// than `limit`.
        mutating func measureHeader(_ slice: ByteBuffer, limit: Int) -> Bool {
            guard !headerEnded else { return true }
            for octet in slice.readableBytesView {
                headerOctets += 1
                headerTail = headerTail << 8 | UInt32(octet)
                // CRLF CRLF, or a message that starts with its empty line.
                if headerTail == 0x0D0A_0D0A || (headerOctets == 2 && headerTail == 0x0D0A) {
                    headerEnded = true
                    return true
                }
                if headerOctets > limit { return false }
            }
            return true
        }
    }
}
