import NIOCore
import SMTPCore
import SMTPTranscript

/// The replies owed to the client, in command order (RFC 2920 §3: replies come back in the order
/// the commands were sent), whether they come from the upstream or from the proxy.
///
/// A slot is opened when a command is read and filled when its reply is known; only a filled
/// slot at the head is released, so a fast local reply never overtakes a slow upstream one.
///
/// This is the relay's one place that pairs replies with commands. Its interface: `open` a slot
/// (or `answer` one the proxy fills at once), `fill` it when the reply is known, `popReady` what
/// may go out, and `failRemaining`, `remove` or `removeAll` when the session cannot go on as it was.
/// What happens on the client leg after a reply (`FollowUp`) travels with its slot.
struct ReplyQueue: Sendable {
    /// What happens on the client leg once a slot's reply has been sent.
    enum FollowUp: Sendable {
        case none
        case closeClient
        case startClientTLS
        /// `--client-tls passthrough`: the upstream's 220 to STARTTLS went to the client; from
        /// here on octets are relayed blind.
        case startPassthrough
        /// The client may now send content (after 354).
        case enterContent
        /// The next client line is a SASL response (after 334).
        case enterSASL
        /// The client may send commands again (after a held command's final reply).
        case resumeCommands
    }

    struct Slot: Sendable {
        var id: Int
        var answering: AwaitedReply
        var reply: SMTPReply?
        var origin: SessionRecord.Party
        var followUp: FollowUp
        /// Counts towards the session's error limit.
        var isError: Bool
    }

    private var slots = CircularBuffer<Slot>(initialCapacity: 8)
    private var nextID = 1

    var isEmpty: Bool { slots.isEmpty }

    /// Opens a slot for a reply still to come; returns its identifier.
    mutating func open(answering: AwaitedReply) -> Int {
        defer { nextID += 1 }
        slots.append(Slot(id: nextID, answering: answering, reply: nil, origin: .server, followUp: .none, isError: false))
        return nextID
    }

    /// Opens a slot already answered by the proxy.
    mutating func answer(_ answering: AwaitedReply, with reply: SMTPReply, isError: Bool = false, followUp: FollowUp = .none) {
        let id = open(answering: answering)
        fill(id, with: reply, origin: .proxy, isError: isError, followUp: followUp)
    }

    mutating func fill(_ id: Int, with reply: SMTPReply, origin: SessionRecord.Party, isError: Bool = false, followUp: FollowUp = .none) {
        // A slot dropped by `failRemaining` may still be answered by a late upstream reply.
        guard let index = slots.firstIndex(where: { $0.id == id && $0.reply == nil }) else { return }
        slots[index].reply = reply
        slots[index].origin = origin
        slots[index].followUp = followUp
        slots[index].isError = isError || (500...504).contains(reply.code)
    }

    /// Replaces every reply still owed with one final reply (421 and close): used when the session
    /// cannot go on. Replies already known are still sent first, in order.
    mutating func failRemaining(with reply: SMTPReply) {
        var kept = CircularBuffer<Slot>(initialCapacity: slots.count + 1)
        var placed = false
        for var slot in slots {
            if slot.reply == nil {
                slot.reply = reply
                slot.origin = .proxy
                slot.followUp = .closeClient
                slot.isError = false
                kept.append(slot)
                placed = true
                break
            }
            kept.append(slot)
        }
        slots = kept
        if !placed { answer(.unknown, with: reply, followUp: .closeClient) }
    }

    /// Forgets a slot whose command was never complete (a chunk cut short by the client's close):
    /// no reply is owed to it.
    mutating func remove(_ id: Int) {
        guard let index = slots.firstIndex(where: { $0.id == id }) else { return }
        slots.remove(at: index)
    }

    /// The next slot ready to go out, if the head is filled.
    mutating func popReady() -> Slot? {
        guard let head = slots.first, head.reply != nil else { return nil }
        return slots.removeFirst()
    }

    mutating func removeAll() { slots.removeAll() }
}
