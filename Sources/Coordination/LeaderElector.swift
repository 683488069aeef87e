public import Foundation
public import Logging
public import RegistryStorage
import Synchronization

/// The lease's store could not be asked (`LeaderElector.leaseStatus()`): 503 at the API.
public struct LeaderLeaseError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// What an elector reports as it goes (the API's metrics implement it).
public protocol LeaderElectionObserver: Sendable {
    /// This process started (`true`) or stopped (`false`) leading.
    func leadershipChanged(leading: Bool)
}

/// Campaigns for a `LeaderLease` and keeps it, with the semantics of client-go's leader election
/// (k8s.io/client-go/tools/leaderelection, `LeaderElector.Run` with `ReleaseOnCancel`):
/// - while not leading, tries to acquire every `retryPeriod`, jittered by up to
///   `jitterFactor` × `retryPeriod` more (client-go's `wait.JitterUntil`), so that replicas
///   started together do not ask in lockstep;
/// - while leading, renews every `renewInterval` (a third of the lease's TTL); a renewal that
///   fails or does not answer is tried again every `retryPeriod`;
/// - stops leading as soon as the term's `validUntil` passes without a successful renewal
///   (`validUntil` is earlier than the instant the store gives the lease to someone else, see
///   `LeaderTerm`), or at once when a renewal says the term was lost; a renewal that hangs does
///   not hold this up (it runs on a thread of its own and is abandoned at `validUntil`);
/// - on `stop()` (clean shutdown), stops leading and then releases the lease, so that another
///   replica takes over at once instead of after the TTL.
///
/// The callbacks run on the elector's own thread, one at a time, never concurrently, in the
/// order: `onNewLeader` (when the observed holder changes, itself included), `onStartedLeading`,
/// then `onStoppedLeading` once the term ends. They must return promptly (start or stop
/// threads, not do the work): renewals wait for them. After `onStoppedLeading` the elector
/// campaigns again.
public final class LeaderElector: Sendable {
    public struct Configuration: Sendable {
        /// Between two renewals while leading (client-go: `RetryPeriod` of renewal; here a third of
        /// the TTL, as the brief for issue 16 and client-go's 15 s / 5 s rhythm of lease and renew).
        public var renewInterval: Duration
        /// Between two tries to acquire while not leading, and between retries of a failed
        /// renewal (client-go's default ratio: 2 s for a 15 s lease).
        public var retryPeriod: Duration
        /// Each wait of `retryPeriod` lasts up to `jitterFactor` times longer (client-go: 1.2).
        public var jitterFactor = 1.2

        /// The rhythm for a lease of `ttl`: renew every third, retry every 2/15 (at least 10 ms).
        public init(ttl: Duration) {
            renewInterval = ttl / 3
            retryPeriod = max(ttl * 2 / 15, .milliseconds(10))
        }
    }

    /// What the elector does on a change of leadership (see the class's comment for the rules).
    public struct Callbacks: Sendable {
        public var onStartedLeading: @Sendable (LeaderTerm) -> Void
        public var onStoppedLeading: @Sendable () -> Void
        public var onNewLeader: @Sendable (String) -> Void

        public init(
            onStartedLeading: @escaping @Sendable (LeaderTerm) -> Void, onStoppedLeading: @escaping @Sendable () -> Void,
            onNewLeader: @escaping @Sendable (String) -> Void = { _ in }
        ) {
            self.onStartedLeading = onStartedLeading
            self.onStoppedLeading = onStoppedLeading
            self.onNewLeader = onNewLeader
        }
    }

    private struct State {
        var phase: Phase = .idle
        var term: LeaderTerm?
        var leadingSince: Date?
        var observedHolder: String?
        enum Phase { case idle, running, stopping, stopped }
    }

    public let lease: any LeaderLease
    public let configuration: Configuration
    private let logger: Logger
    private let observer: (any LeaderElectionObserver)?
    private let callbacks: Mutex<Callbacks?>
    private let state = Mutex(State())
    private let wakeup = Wakeup()
    private let finished = DispatchSemaphore(value: 0)

    public init(
        lease: any LeaderLease, configuration: Configuration? = nil, logger: Logger, observer: (any LeaderElectionObserver)? = nil,
        callbacks: Callbacks? = nil
    ) {
        self.lease = lease
        self.configuration = configuration ?? Configuration(ttl: lease.ttl)
        self.logger = logger
        self.observer = observer
        self.callbacks = Mutex(callbacks)
    }

    /// Who this process is in the lease.
    public var identity: String { lease.holder }

    /// The term this process leads in now; nil when not leading (also from the instant its
    /// `validUntil` passed, before `onStoppedLeading` has returned).
    public var currentTerm: LeaderTerm? {
        state.withLock { $0.term }.flatMap { $0.isValid ? $0 : nil }
    }

    /// Whether this process leads now.
    public var isLeading: Bool { currentTerm != nil }

    /// When this process started its current term (wall clock); nil when not leading.
    public var leadingSince: Date? { state.withLock { $0.term == nil ? nil : $0.leadingSince } }

    /// The holder seen last: this process while it leads, else the one the lease named.
    public var observedLeader: String? { state.withLock { $0.observedHolder } }

    /// Sets the callbacks, before `start()`; nil after `stop()` lets go of what they hold.
    public func setCallbacks(_ new: Callbacks?) {
        callbacks.withLock { $0 = new }
    }

    /// Starts campaigning on a thread of its own (once; nothing after `stop()`). With
    /// `waitingForFirstAttempt`, returns only after the first try to acquire has been answered
    /// and, when it was granted, `onStartedLeading` has returned: a process that can lead at
    /// once (always so with `LocalLease`) has started its background work before it serves.
    public func start(waitingForFirstAttempt: Bool = false) {
        let first = state.withLock { state in
            guard state.phase == .idle else { return false }
            state.phase = .running
            return true
        }
        guard first else { return }
        let attempted = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            run(afterFirstAttempt: { attempted.signal() })
            finished.signal()
        }
        thread.name = "leader-elector"
        thread.stackSize = 256 << 10
        thread.start()
        if waitingForFirstAttempt { attempted.wait() }
    }

    /// Who holds the lease now, as the store says (for `GET /v1/leader`); nil if it was never
    /// acquired.
    ///
    /// - Throws: `LeaderLeaseError` when the store cannot be asked.
    public func leaseStatus() throws(LeaderLeaseError) -> LeaderLeaseStatus? {
        do {
            return try lease.status()
        } catch {
            throw LeaderLeaseError(message: "the leader lease cannot be read: \(error)")
        }
    }

    /// Stops campaigning: if leading, `onStoppedLeading` runs and then the lease is released.
    /// Returns when that is done (the elector's thread has ended).
    public func stop() {
        let wasRunning = state.withLock { state in
            defer { if state.phase != .stopped { state.phase = state.phase == .idle ? .stopped : .stopping } }
            return state.phase == .running
        }
        guard wasRunning else { return }
        wakeup.signal()
        finished.wait()
        state.withLock { $0.phase = .stopped }
    }

    private var isStopping: Bool { state.withLock { $0.phase != .running } }

    // MARK: - The elector's thread

    private func run(afterFirstAttempt: @escaping () -> Void) {
        var attempted: (() -> Void)? = afterFirstAttempt
        defer { attempted?() }
        while !isStopping {
            let term: LeaderTerm?
            do {
                term = try lease.acquire()
            } catch {
                logger.warning("could not ask for the leader lease; trying again", metadata: ["holder": "\(identity)", "error": "\(error)"])
                attempted?()
                attempted = nil
                wait(until: ContinuousClock.now + jittered(configuration.retryPeriod))
                continue
            }
            if let term, term.isValid {
                lead(term, started: attempted)
                attempted = nil
            } else {
                observeHolder()
                attempted?()
                attempted = nil
                wait(until: ContinuousClock.now + jittered(configuration.retryPeriod))
            }
        }
    }

    /// Leads in `term` until it is lost, runs out, or the elector stops; `started` is called
    /// once `onStartedLeading` returned.
    private func lead(_ first: LeaderTerm, started: (() -> Void)? = nil) {
        var term = first
        state.withLock { state in
            state.term = term
            state.leadingSince = Date()
        }
        logger.notice("started leading", metadata: ["holder": "\(identity)", "generation": "\(term.generation)", "lease": "\(term.name)"])
        newLeader(identity)
        observer?.leadershipChanged(leading: true)
        callbacks.withLock { $0 }?.onStartedLeading(term)
        started?()
        var nextRenewal = ContinuousClock.now + configuration.renewInterval
        var lost = false
        while !isStopping {
            wait(until: min(nextRenewal, term.validUntil))
            if isStopping { break }
            if !term.isValid {
                logger.error(
                    "leader lease ran out without a successful renewal: stopping the background work before another replica can take it",
                    metadata: ["holder": "\(identity)", "generation": "\(term.generation)"])
                lost = true
                break
            }
            guard ContinuousClock.now >= nextRenewal else { continue }
            switch renew(term) {
            case .renewed(let renewed):
                term = renewed
                state.withLock { $0.term = renewed }
                nextRenewal = ContinuousClock.now + configuration.renewInterval
            case .lost:
                logger.error(
                    "leader lease lost (another term began or it expired at the store): stopping the background work",
                    metadata: ["holder": "\(identity)", "generation": "\(term.generation)"])
                lost = true
            case .failed(let error):
                logger.warning(
                    "could not renew the leader lease; trying again until it runs out",
                    metadata: ["holder": "\(identity)", "generation": "\(term.generation)", "error": "\(error)"])
                nextRenewal = ContinuousClock.now + configuration.retryPeriod
            }
            if lost { break }
        }
        state.withLock { state in
            state.term = nil
            state.leadingSince = nil
            if lost { state.observedHolder = nil }
        }
        callbacks.withLock { $0 }?.onStoppedLeading()
        observer?.leadershipChanged(leading: false)
        logger.notice("stopped leading", metadata: ["holder": "\(identity)", "generation": "\(term.generation)"])
        if !lost {
            do {
                try lease.release(term)
                logger.notice("leader lease released", metadata: ["holder": "\(identity)", "generation": "\(term.generation)"])
            } catch {
                logger.warning(
                    "could not release the leader lease; another replica takes over when it expires",
                    metadata: ["holder": "\(identity)", "error": "\(error)"])
            }
        }
    }

    private enum Renewal: Sendable {
        case renewed(LeaderTerm)
        case lost
        case failed(String)
    }

    /// One renewal, on a thread of its own, awaited until the term's `validUntil` at most: a
    /// store that does not answer cannot keep this process leading past it.
    private func renew(_ term: LeaderTerm) -> Renewal {
        let outcome = Mutex<Renewal?>(nil)
        let lease = self.lease
        let wakeup = self.wakeup
        let thread = Thread {
            let result: Renewal
            do {
                result = try lease.renew(term).map(Renewal.renewed) ?? .lost
            } catch {
                result = .failed("\(error)")
            }
            outcome.withLock { $0 = result }
            wakeup.signal()
        }
        thread.name = "leader-renew"
        thread.stackSize = 256 << 10
        thread.start()
        // The result is set before the signal, and checked under the wake-up's lock: never missed.
        wakeup.wait(until: term.validUntil) { [self] in outcome.withLock { $0 != nil } || isStopping }
        return outcome.withLock { $0 } ?? .failed("no answer before the term ran out")
    }

    private func observeHolder() {
        do {
            if let status = try lease.status(), status.isHeld, status.holder != identity { newLeader(status.holder) }
        } catch {
            logger.debug("could not read the leader lease", metadata: ["error": "\(error)"])
        }
    }

    private func newLeader(_ holder: String) {
        let changed = state.withLock { state in
            defer { state.observedHolder = holder }
            return state.observedHolder != holder
        }
        guard changed else { return }
        if holder != identity { logger.info("new leader observed", metadata: ["leader": "\(holder)"]) }
        callbacks.withLock { $0 }?.onNewLeader(holder)
    }

    /// `duration` plus up to `jitterFactor` × `duration` (client-go's `wait.Jitter`).
    private func jittered(_ duration: Duration) -> Duration {
        guard configuration.jitterFactor > 0 else { return duration }
        return duration + duration * Double.random(in: 0...configuration.jitterFactor)
    }

    private func wait(until deadline: ContinuousClock.Instant) {
        wakeup.wait(until: deadline) { [self] in isStopping }
    }
}

/// A wake-up call for the elector's thread: `wait(until:)` returns at the deadline, when
/// `signal()` is called, or when `done()` holds.
private final class Wakeup: @unchecked Sendable {
    // Why @unchecked Sendable is safe: NSCondition is a thread-safe lock and condition variable,
    // and `signals` is only touched with it locked.
    private let condition = NSCondition()
    private var signals = 0

    func signal() {
        condition.lock()
        signals += 1
        condition.broadcast()
        condition.unlock()
    }

    func wait(until deadline: ContinuousClock.Instant, done: () -> Bool) {
        condition.lock()
        defer { condition.unlock() }
        let seen = signals
        while signals == seen, !done() {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return }
            let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
            _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
        }
    }
}
