import Foundation
import Synchronization

/// A thread that runs a pass every `interval` until `stop()`: the followers of a shared
/// database (`SharedChangeFollower`, the API's health-state follower) read what other replicas
/// wrote this way. A pass is never interrupted; `stop()` ends the thread after the current one.
public final class PeriodicThread: Sendable {
    private let stopped = Mutex(false)
    private let wake = NSCondition()

    /// Starts the thread. `state`: what one pass hands to the next (a cursor); `pass` returns
    /// false to end the thread. `immediately`: the first pass runs at once instead of after
    /// `interval`.
    public init<State: Sendable>(
        name: String, interval: Duration, immediately: Bool = false, state: State, pass: @escaping @Sendable (inout State) -> Bool
    ) {
        let thread = Thread { [self] in
            var state = state
            if immediately, !pass(&state) { return }
            while !self.wait(interval) {
                if !pass(&state) { return }
            }
        }
        thread.name = name
        thread.start()
    }

    /// Sleeps for `interval`; true once `stop()` was called.
    private func wait(_ interval: Duration) -> Bool {
        wake.lock()
        defer { wake.unlock() }
        if stopped.withLock({ $0 }) { return true }
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        _ = wake.wait(until: Date(timeIntervalSinceNow: seconds))
        return stopped.withLock { $0 }
    }

    /// Ends the thread after its current pass (it does not wait for it).
    public func stop() {
        wake.lock()
        stopped.withLock { $0 = true }
        wake.broadcast()
        wake.unlock()
    }
}
