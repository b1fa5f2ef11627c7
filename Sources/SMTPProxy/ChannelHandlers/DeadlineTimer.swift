import NIOCore

/// A deadline that moves with nearly every event and rarely passes, as RFC 5321's timeouts do
/// (each command restarts one). Moving it later only records the new time; the one scheduled task,
/// should it fire early, re-arms itself for the time left. Cancelling and scheduling a task on
/// every event took about 7 % of the proxy's CPU time with 1 KB messages.
///
/// Used on its channel's event loop only.
struct DeadlineTimer {
    /// When the deadline passes; nil while none runs.
    private(set) var due: NIODeadline?
    private var scheduled: (task: Scheduled<Void>, at: NIODeadline)?
    /// Runs on the event loop when the task fires; it calls `fired(now:on:)`.
    private let check: @Sendable () -> Void

    init(check: @escaping @Sendable () -> Void) {
        self.check = check
    }

    /// Starts, moves or (with nil) stops the deadline. A task already due no later than `due`
    /// stays: it finds the new time when it fires.
    mutating func move(to due: NIODeadline?, on loop: any EventLoop) {
        self.due = due
        guard let due else { return }
        if let scheduled, scheduled.at <= due { return }
        scheduled?.task.cancel()
        let check = self.check
        scheduled = (loop.scheduleTask(deadline: due) { check() }, due)
    }

    /// The task fired: true when the deadline has passed. Otherwise the task is re-armed for the
    /// time left, or not at all when the deadline was stopped.
    mutating func fired(now: NIODeadline, on loop: any EventLoop) -> Bool {
        scheduled = nil
        guard let due else { return false }
        if now >= due {
            self.due = nil
            return true
        }
        move(to: due, on: loop)
        return false
    }

    /// A pending task holds whatever `check` captured until it fires: a finished session keeps none.
    mutating func cancel() {
        scheduled?.task.cancel()
        scheduled = nil
        due = nil
    }
}
