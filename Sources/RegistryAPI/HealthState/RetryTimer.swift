import Dispatch
import Synchronization

/// When background work that failed (the database did not answer, a statement timed out) runs
/// again: after a backoff that starts at `first` and doubles with each consecutive failure up
/// to `maximum` (client-go's exponential failure rate limiter), with at most one retry waiting
/// at a time. The owner keeps what is to be done again; the retry only wakes it.
final class RetryTimer: Sendable {
    private struct State {
        /// The last delay used; nil once the work succeeded.
        var delay: Duration?
        var scheduled = false
        var stopped = false
    }

    private let state = Mutex(State())
    private let queue: DispatchQueue
    private let first: Duration
    private let maximum: Duration

    /// `queue`: where `retry` runs. `first`, `maximum`: the backoff (default 1 s doubling up to 30 s).
    init(queue: DispatchQueue, first: Duration = .seconds(1), maximum: Duration = .seconds(30)) {
        self.queue = queue
        self.first = first
        self.maximum = max(first, maximum)
    }

    /// The work failed: runs `retry` on the queue after the next delay, unless a retry waits
    /// already (that one then stands for this failure too) or `stop()` was called. Returns the
    /// delay a retry scheduled now waits (the backoff moves on either way); nil once stopped.
    @discardableResult
    func failed(retry: @escaping @Sendable () -> Void) -> Duration? {
        let (delay, schedule) = state.withLock { state -> (Duration?, Bool) in
            guard !state.stopped else { return (nil, false) }
            let delay = state.delay.map { min($0 * 2, maximum) } ?? first
            state.delay = delay
            guard !state.scheduled else { return (delay, false) }
            state.scheduled = true
            return (delay, true)
        }
        guard let delay, schedule else { return delay }
        queue.asyncAfter(deadline: .now() + delay.dispatchInterval) { [weak self] in
            let stopped = self?.state.withLock { state in
                state.scheduled = false
                return state.stopped
            }
            if stopped == false { retry() }
        }
        return delay
    }

    /// No retry from now on (shutdown): the one waiting does not run, later failures schedule none.
    func stop() {
        state.withLock { $0.stopped = true }
    }

    /// The work succeeded: the next failure waits `first` again.
    func succeeded() {
        state.withLock { $0.delay = nil }
    }
}

extension Duration {
    /// This duration for Dispatch, in nanoseconds (truncated).
    var dispatchInterval: DispatchTimeInterval {
        .nanoseconds(Int(components.seconds) * 1_000_000_000 + Int(components.attoseconds / 1_000_000_000))
    }
}
