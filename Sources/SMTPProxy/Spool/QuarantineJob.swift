import NIOCore

/// One quarantined message on its way to disk: what a thread-pool job needs, and nothing of the
/// session that runs on the event loop.
struct QuarantineJob: Sendable {
    let store: SinkMessageStore
    /// The file name's stem: the session id and the message's number in the session.
    let id: String
    let record: QuarantineRecord

    /// Copies the spool into the quarantine folder and commits it with its record; returns why it
    /// could not, or nil once the message, its record and the folder entry are on disk.
    func write(_ spool: MessageSpool) -> String? {
        if let failure = spool.failure { return "spool: \(failure)" }
        do {
            try store.prepare()
            let file = try store.openSpool(queueID: id)
            try spool.forEachPiece { file.append($0) }
            guard file.commit(record) else { return "could not write \(id) in \(store.directory)" }
            return nil
        } catch {
            return "\(error)"
        }
    }
}
