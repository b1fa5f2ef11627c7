import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A `MessageSpool` driven from one session's event loop without ever waiting on the disk.
///
/// While the message fits in memory (`SpoolConfiguration.memoryOctets`) every call is done in place.
/// From the first octet that does not, the spool lives on the thread pool: appends, reads, the
/// quarantine's copy and the close run there one after the other, in the order they were asked for,
/// and their results come back on the loop. A write that fails is remembered in `failure`; the
/// message is then never released, only dropped.
final class LoopSpool {
    /// Octets handed to the disk and not yet written past which the client is no longer read.
    static let maxQueuedOctets = 1024 * 1024

    private let spool: NIOLockedValueBox<MessageSpool>
    private let memoryOctets: Int
    private let eventLoop: any EventLoop
    /// The last job given to the thread pool; nil while the message is in memory.
    private var lastJob: EventLoopFuture<Void>?
    private var queuedOctets = 0
    /// Octets appended so far.
    private(set) var octets = 0
    /// Why a write to the spool file failed; the first failure only.
    private(set) var failure: String?

    init(configuration: SpoolConfiguration, eventLoop: any EventLoop) {
        self.spool = NIOLockedValueBox(MessageSpool(configuration: configuration))
        self.memoryOctets = configuration.memoryOctets
        self.eventLoop = eventLoop
    }

    /// False while more than `maxQueuedOctets` wait for the disk.
    var acceptsMore: Bool { queuedOctets < Self.maxQueuedOctets }

    /// Adds content; `written` is called on the loop when a queued write is done (reading may go on),
    /// with the reason when it is the first one that failed.
    func append(_ bytes: ByteBuffer, written: @escaping @Sendable (_ failure: String?) -> Void) {
        octets += bytes.readableBytes
        guard failure == nil else { return }
        if lastJob == nil, octets <= memoryOctets {
            // In memory: MessageSpool.append touches no file below the threshold.
            do {
                try spool.withLockedValue { try $0.append(bytes) }
            } catch {
                failure = "\(error)"
                written(failure)
            }
            return
        }
        let count = bytes.readableBytes
        queuedOctets += count
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        onThreadPool { try $0.append(bytes) }.whenComplete { result in
            let spool = bound.value
            spool.queuedOctets -= count
            guard case .failure(let error) = result, spool.failure == nil else { return written(nil) }
            spool.failure = "\(error)"
            written(spool.failure)
        }
    }

    /// Up to `maximum` octets from `offset` on, or nil past the end, after every queued write. Fails
    /// when a write failed: the spool lacks octets, and no piece of it may go anywhere.
    func piece(at offset: Int, maximum: Int = 65536) -> EventLoopFuture<ByteBuffer?> {
        let read: @Sendable (inout MessageSpool) throws -> ByteBuffer? = { spool in
            if let failure = spool.failure { throw failure }
            return try spool.piece(at: offset, maximum: maximum)
        }
        guard lastJob != nil else {
            return eventLoop.makeCompletedFuture { try spool.withLockedValue(read) }
        }
        return onThreadPool(read)
    }

    /// Frees the memory and the file, once every queued job is done.
    func close() {
        guard lastJob != nil else {
            spool.withLockedValue { $0.close() }
            return
        }
        _ = onThreadPool { $0.close() }
    }

    /// Runs `body` on the thread pool with the whole message, behind the last job whatever that
    /// job's result (a close must follow a failed write).
    func onThreadPool<T: Sendable>(_ body: @escaping @Sendable (inout MessageSpool) throws -> T) -> EventLoopFuture<T> {
        let spool = self.spool
        let loop = eventLoop
        let promise = loop.makePromise(of: T.self)
        let run: @Sendable () -> Void = {
            NIOThreadPool.singleton.runIfActive(eventLoop: loop) { try spool.withLockedValue { try body(&$0) } }.cascade(to: promise)
        }
        if let lastJob {
            lastJob.whenComplete { _ in run() }
        } else {
            run()
        }
        lastJob = promise.futureResult.map { _ in () }
        return promise.futureResult
    }
}

@available(*, unavailable)
extension LoopSpool: Sendable {}
