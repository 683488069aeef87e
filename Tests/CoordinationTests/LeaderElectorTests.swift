import Foundation
import Logging
import RegistryStorage
import Synchronization
import Testing

@testable import Coordination

/// A lease whose answers the test decides.
final class FakeLease: LeaderLease {
    struct Failure: Error, CustomStringConvertible {
        var description: String { "store unreachable (fake)" }
    }
    enum Renewal: Sendable {
        case succeed, fail, lose
        /// Blocks until `unblock()` (a store that does not answer).
        case hang
    }

    let holder: String
    let ttl: Duration
    private struct State {
        var refusals: Int
        var renewal = Renewal.succeed
        var generation = 0
        var otherHolder = "other"
        var log: [String] = []
        var acquires = 0
    }
    private let state: Mutex<State>
    private let gate = DispatchSemaphore(value: 0)

    init(holder: String = "me", ttl: Duration, refusals: Int = 0) {
        self.holder = holder
        self.ttl = ttl
        state = Mutex(State(refusals: refusals))
    }

    var log: [String] { state.withLock { $0.log } }
    var acquires: Int { state.withLock { $0.acquires } }
    func setRenewal(_ renewal: Renewal) { state.withLock { $0.renewal = renewal } }
    func unblock() { for _ in 0..<16 { gate.signal() } }

    func acquire() throws(Failure) -> LeaderTerm? {
        let generation: Int? = state.withLock { state in
            state.acquires += 1
            if state.refusals > 0 {
                state.refusals -= 1
                return nil
            }
            state.generation += 1
            state.log.append("acquire:\(state.generation)")
            return state.generation
        }
        return generation.map { LeaderTerm(name: "background", holder: holder, generation: $0, validUntil: .now + ttl) }
    }

    func renew(_ term: LeaderTerm) throws(Failure) -> LeaderTerm? {
        switch state.withLock({ $0.renewal }) {
        case .succeed:
            var renewed = term
            renewed.validUntil = .now + ttl
            return renewed
        case .fail: throw Failure()
        case .lose: return nil
        case .hang:
            gate.wait()
            throw Failure()
        }
    }

    func release(_ term: LeaderTerm) throws(Failure) {
        state.withLock { $0.log.append("release:\(term.generation)") }
    }

    func status() throws(Failure) -> LeaderLeaseStatus? {
        state.withLock { state in
            LeaderLeaseStatus(
                holder: state.refusals > 0 ? state.otherHolder : holder, generation: state.generation, isHeld: true, expiresInMilliseconds: 1000)
        }
    }
}

/// Records the callbacks in order, checks they never overlap and all run on one thread.
final class CallbackRecorder: Sendable {
    private struct State {
        var events: [String] = []
        var inside = false
        var overlapped = false
        var threads = Set<String>()
        var stoppedAt: ContinuousClock.Instant?
        var validUntil: ContinuousClock.Instant?
    }
    private let state = Mutex(State())

    var events: [String] { state.withLock { $0.events } }
    var overlapped: Bool { state.withLock { $0.overlapped } }
    var threadCount: Int { state.withLock { $0.threads.count } }
    var stoppedAt: ContinuousClock.Instant? { state.withLock { $0.stoppedAt } }
    var validUntil: ContinuousClock.Instant? { state.withLock { $0.validUntil } }

    private func record(_ event: String, _ update: (inout State) -> Void = { _ in }) {
        state.withLock { state in
            if state.inside { state.overlapped = true }
            state.inside = true
            state.threads.insert("\(Unmanaged.passUnretained(Thread.current).toOpaque())")
        }
        Thread.sleep(forTimeInterval: 0.005)
        state.withLock { state in
            state.events.append(event)
            update(&state)
            state.inside = false
        }
    }

    var callbacks: LeaderElector.Callbacks {
        LeaderElector.Callbacks(
            onStartedLeading: { term in self.record("started:\(term.generation)") { $0.validUntil = term.validUntil } },
            onStoppedLeading: { self.record("stopped") { $0.stoppedAt = .now } },
            onNewLeader: { holder in self.record("leader:\(holder)") })
    }
}

/// Waits (polling, at most `seconds`) until `condition` holds.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let end = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < end {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return condition()
}

@Suite struct LeaderElectorTests {
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// Refused twice (another holder leads), then granted: the callbacks say who leads, in order;
    /// a clean stop ends the term and then releases the lease.
    @Test func refusedThenGrantedThenReleasedOnStop() {
        let lease = FakeLease(ttl: .milliseconds(600), refusals: 2)
        let recorder = CallbackRecorder()
        let elector = LeaderElector(lease: lease, logger: logger, callbacks: recorder.callbacks)
        #expect(!elector.isLeading)
        elector.start()
        #expect(eventually { elector.isLeading })
        #expect(elector.currentTerm?.generation == 1)
        #expect(elector.observedLeader == "me")
        #expect(lease.acquires == 3)
        elector.stop()
        #expect(!elector.isLeading)
        #expect(recorder.events == ["leader:other", "leader:me", "started:1", "stopped"])
        #expect(lease.log == ["acquire:1", "release:1"])
        #expect(!recorder.overlapped)
        #expect(recorder.threadCount == 1)
    }

    /// Renewals keep the term across many TTLs.
    @Test func renewalsKeepTheTerm() {
        let lease = FakeLease(ttl: .milliseconds(300))
        let recorder = CallbackRecorder()
        let elector = LeaderElector(lease: lease, logger: logger, callbacks: recorder.callbacks)
        elector.start()
        #expect(eventually { elector.isLeading })
        Thread.sleep(forTimeInterval: 1.2)
        #expect(elector.currentTerm?.generation == 1)
        elector.stop()
        #expect(recorder.events == ["leader:me", "started:1", "stopped"])
    }

    /// Renewals that fail: the elector stops leading once the term's `validUntil` passed, and
    /// not much later (the store's expiry comes a safety margin after it), without releasing.
    @Test(arguments: [FakeLease.Renewal.fail, .hang])
    func failingRenewalsStopLeadingAtValidUntil(_ renewal: FakeLease.Renewal) throws {
        let lease = FakeLease(ttl: .seconds(1))
        defer { lease.unblock() }
        let recorder = CallbackRecorder()
        let elector = LeaderElector(lease: lease, logger: logger, callbacks: recorder.callbacks)
        elector.start()
        #expect(eventually { elector.isLeading })
        lease.setRenewal(renewal)
        #expect(eventually { recorder.stoppedAt != nil })
        let stoppedAt = try #require(recorder.stoppedAt)
        let validUntil = try #require(recorder.validUntil)
        // The last successful renewal may have come after the start; the stop is never before
        // the term ran out, and comes within a generous margin after.
        #expect(stoppedAt >= validUntil)
        #expect(stoppedAt < validUntil + .seconds(1) + .milliseconds(500))
        lease.setRenewal(.succeed)
        lease.unblock()
        elector.stop()
        #expect(!lease.log.contains("release:1"))
    }

    /// A renewal that says the term is lost stops leading at once; the elector campaigns again
    /// and starts a new term (with the next generation).
    @Test func lostTermStopsAndCampaignsAgain() {
        let lease = FakeLease(ttl: .milliseconds(600))
        let recorder = CallbackRecorder()
        let elector = LeaderElector(lease: lease, logger: logger, callbacks: recorder.callbacks)
        elector.start()
        #expect(eventually { elector.isLeading })
        lease.setRenewal(.lose)
        #expect(eventually { recorder.events.contains("stopped") })
        lease.setRenewal(.succeed)
        #expect(eventually { elector.currentTerm?.generation == 2 })
        elector.stop()
        #expect(recorder.events == ["leader:me", "started:1", "stopped", "leader:me", "started:2", "stopped"])
        #expect(lease.log == ["acquire:1", "acquire:2", "release:2"])
        #expect(!recorder.overlapped)
        #expect(recorder.threadCount == 1)
    }

    /// The SQLite store's lease: leads at once with generation 1 and keeps it.
    @Test func localLeaseLeadsAtOnceAndForever() throws {
        let lease = LocalLease(holder: "solo", ttl: .milliseconds(300))
        #expect(lease.status() == nil)
        let recorder = CallbackRecorder()
        let elector = LeaderElector(lease: lease, logger: logger, callbacks: recorder.callbacks)
        elector.start()
        #expect(eventually { elector.isLeading })
        Thread.sleep(forTimeInterval: 0.5)
        #expect(elector.currentTerm?.generation == 1)
        let status = try #require(lease.status())
        #expect(status.holder == "solo" && status.generation == 1 && status.isHeld && status.expiresInMilliseconds == 300)
        #expect(status.acquiredAt != nil)
        elector.stop()
        #expect(recorder.events == ["leader:solo", "started:1", "stopped"])
        #expect(lease.status()?.isHeld == false)
        #expect(lease.acquire()?.generation == 2)
    }

    /// client-go's rhythm: renew every third of the lease, retry every 2/15.
    @Test func configurationFollowsTheTTL() {
        let configuration = LeaderElector.Configuration(ttl: .seconds(15))
        #expect(configuration.renewInterval == .seconds(5))
        #expect(configuration.retryPeriod == .seconds(2))
        #expect(configuration.jitterFactor == 1.2)
    }
}
