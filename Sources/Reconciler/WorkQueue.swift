import Foundation

/// One unit of reconcile work: a service in a cluster.
public struct ReconcileKey: Sendable, Hashable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public var cluster: String

    public init(namespace: String, name: String, cluster: String) {
        self.namespace = namespace
        self.name = name
        self.cluster = cluster
    }

    public var description: String { "\(namespace)/\(name)@\(cluster)" }
}

/// A work queue with client-go's semantics (k8s.io/client-go/util/workqueue `Typed`,
/// `TypedRateLimitingInterface`):
/// - a key is never handed to two workers at once (`processing`);
/// - a key added while queued is queued once (`dirty`); one added while being processed is
///   queued again once, when `done` is called;
/// - `addRateLimited` re-adds a key after a per-key exponential back-off (`baseDelay` doubling up
///   to `maxDelay`, like `ItemExponentialFailureRateLimiter`), with up to 10 % jitter, and never
///   sooner than a `Retry-After`; `forget` resets it.
/// In addition, at most `perCluster` keys of one cluster are processed at once, so that a slow
/// cluster cannot take every worker.
public final class WorkQueue: Sendable {
    public struct Limits: Sendable {
        public var perCluster: Int
        public var baseDelay: Duration
        public var maxDelay: Duration

        public init(perCluster: Int = 4, baseDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(300)) {
            self.perCluster = perCluster
            self.baseDelay = baseDelay
            self.maxDelay = maxDelay
        }
    }

    private struct State {
        var queue: [ReconcileKey] = []
        var dirty = Set<ReconcileKey>()
        var processing = Set<ReconcileKey>()
        var busyPerCluster: [String: Int] = [:]
        var delayed: [(due: ContinuousClock.Instant, key: ReconcileKey)] = []
        var failures: [ReconcileKey: Int] = [:]
        var shuttingDown = false
    }

    private let limits: Limits
    private let condition = Condition()
    /// Only touched while `condition`'s lock is held.
    private let state: LockedState<State>

    public init(limits: Limits = Limits()) {
        self.limits = limits
        self.state = LockedState(State())
    }

    /// Queues `key` (once, however often it is added before a worker takes it).
    public func add(_ key: ReconcileKey) {
        condition.locked {
            state.mutate { Self.insert(key, into: &$0) }
            condition.broadcast()
        }
    }

    private static func insert(_ key: ReconcileKey, into state: inout State) {
        guard !state.shuttingDown, !state.dirty.contains(key) else { return }
        state.dirty.insert(key)
        if !state.processing.contains(key) { state.queue.append(key) }
    }

    /// Queues `key` after `delay`.
    public func add(_ key: ReconcileKey, after delay: Duration) {
        condition.locked {
            state.mutate { $0.delayed.append((ContinuousClock.now.advanced(by: delay), key)) }
            condition.broadcast()
        }
    }

    /// Queues `key` after its next back-off (at least `retryAfter`); returns the delay chosen.
    @discardableResult
    public func addRateLimited(_ key: ReconcileKey, retryAfter: Duration? = nil) -> Duration {
        let failures = condition.locked {
            state.mutate { state -> Int in
                let count = state.failures[key, default: 0]
                state.failures[key] = count + 1
                return count
            }
        }
        var delay = limits.baseDelay * Double(1 << min(failures, 30))
        if delay > limits.maxDelay { delay = limits.maxDelay }
        delay = delay * Double.random(in: 1.0...1.1)
        if delay > limits.maxDelay { delay = limits.maxDelay }
        if let retryAfter, retryAfter > delay { delay = retryAfter }
        add(key, after: delay)
        return delay
    }

    /// Failures recorded for `key` since the last `forget`.
    public func failures(_ key: ReconcileKey) -> Int {
        condition.locked { state.read { $0.failures[key, default: 0] } }
    }

    /// Resets `key`'s back-off (after a success).
    public func forget(_ key: ReconcileKey) {
        condition.locked { state.mutate { $0.failures[key] = nil } }
    }

    /// Blocks until a key whose cluster has a free slot is queued, and hands it out; nil once
    /// the queue shuts down.
    public func get() -> ReconcileKey? {
        condition.locked {
            while true {
                let now = ContinuousClock.now
                let (key, wake) = state.mutate { state -> (ReconcileKey?, ContinuousClock.Instant?) in
                    let due = state.delayed.filter { $0.due <= now }
                    if !due.isEmpty {
                        state.delayed.removeAll { $0.due <= now }
                        for item in due { Self.insert(item.key, into: &state) }
                    }
                    if state.shuttingDown { return (nil, nil) }
                    if let index = state.queue.firstIndex(where: { state.busyPerCluster[$0.cluster, default: 0] < limits.perCluster }) {
                        let key = state.queue.remove(at: index)
                        state.dirty.remove(key)
                        state.processing.insert(key)
                        state.busyPerCluster[key.cluster, default: 0] += 1
                        return (key, nil)
                    }
                    return (nil, state.delayed.map(\.due).min())
                }
                if let key { return key }
                if state.read(\.shuttingDown) { return nil }
                condition.wait(until: wake)
            }
        }
    }

    /// Marks `key` as finished; if it was added meanwhile it is queued again.
    public func done(_ key: ReconcileKey) {
        condition.locked {
            state.mutate { state in
                state.processing.remove(key)
                state.busyPerCluster[key.cluster, default: 1] -= 1
                if state.dirty.contains(key), !state.shuttingDown { state.queue.append(key) }
            }
            condition.broadcast()
        }
    }

    /// Keys waiting (queued now, not the delayed ones).
    public var depth: Int { condition.locked { state.read(\.queue.count) } }

    /// Keys being processed.
    public var inFlight: Int { condition.locked { state.read(\.processing.count) } }

    /// Whether `key` is queued or waiting for its back-off.
    public func isWaiting(_ key: ReconcileKey) -> Bool {
        condition.locked { state.read { $0.dirty.contains(key) || $0.delayed.contains { $0.key == key } } }
    }

    /// Stops handing out keys: `get` returns nil from now on; keys being processed finish.
    public func shutDown() {
        condition.locked {
            state.mutate { $0.shuttingDown = true }
            condition.broadcast()
        }
    }

    /// Waits until no key is being processed, or `deadline` passes; true when drained.
    public func waitUntilIdle(deadline: Duration) -> Bool {
        let end = ContinuousClock.now.advanced(by: deadline)
        return condition.locked {
            while state.read(\.processing.count) > 0 {
                if ContinuousClock.now >= end { return false }
                condition.wait(until: end)
            }
            return true
        }
    }
}

/// A value only touched while the owner's `Condition` lock is held.
final class LockedState<Value>: @unchecked Sendable {
    // Why @unchecked Sendable is safe: every access goes through `WorkQueue`, inside
    // `condition.locked { … }`, so one thread at a time reads or writes `value`.
    private var value: Value

    init(_ value: Value) { self.value = value }

    func mutate<T>(_ body: (inout Value) -> T) -> T { body(&value) }
    func read<T>(_ body: (Value) -> T) -> T { body(value) }
}

/// NSCondition with a timed wait on the continuous clock.
final class Condition: @unchecked Sendable {
    // Why @unchecked Sendable is safe: NSCondition is a thread-safe lock and condition variable.
    private let condition = NSCondition()

    func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }

    func broadcast() { condition.broadcast() }

    /// Waits (lock held) until signalled or `instant` (nil: no limit).
    func wait(until instant: ContinuousClock.Instant?) {
        guard let instant else {
            condition.wait()
            return
        }
        let remaining = ContinuousClock.now.duration(to: instant)
        guard remaining > .zero else { return }
        let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
        _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
    }
}
