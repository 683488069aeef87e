import Foundation
import Liveness
import Logging
import RegistryCore
import RegistryStorage
import Synchronization

/// Shows the leader's health verdicts on a replica that does not lead (issue 16: non-leaders
/// "serve the API and read state from the store"): while following, a thread reads every
/// `interval` the health snapshots the leader stored since the last pass (`health_state`, by
/// health version) and restores them into this replica's health checker, which holds the
/// registrations but does not probe. `GET …/health`, `status` and the manifests asked through
/// the API then show the same verdicts on every replica, at most about `interval` plus the
/// leader's write behind. A service whose registration changed here is read again in the next
/// pass (its snapshot may have been stored before this replica knew its new addresses).
///
/// Not following while leading: `leadingChanged(true)` stops the thread (the leader's own
/// probes and `HealthStatePersister` take over); `start()` does nothing until
/// `leadingChanged(false)`.
final class HealthStateFollower: Sendable {
    private struct State {
        var leading = false
        var closed = false
        var thread: PeriodicThread?
        var pending: Set<ServiceKey> = []
    }

    private let store: ServiceStore
    private let liveness: HealthChecker
    private let dns: DNSRefresher
    private let logger: Logger
    private let interval: Duration
    private let state = Mutex(State())
    /// Held while stored verdicts are restored and while leading starts, so that a replica that
    /// starts leading gets no older verdict restored after its own start. Not `state`: restoring
    /// tells the checker's subscribers, `changed(_:)` among them.
    private let restoring = Mutex(())

    /// `interval`: how often the stored verdicts are read (default 1 s).
    init(store: ServiceStore, liveness: HealthChecker, dns: DNSRefresher, logger: Logger, interval: Duration = .seconds(1)) {
        self.store = store
        self.liveness = liveness
        self.dns = dns
        self.logger = logger
        self.interval = interval
    }

    /// Whether `start()` would do something: neither leading, nor following, nor closed.
    var mayStart: Bool { state.withLock { !$0.leading && !$0.closed && $0.thread == nil } }

    /// Starts following (the first pass at once reads every stored snapshot), unless this
    /// replica leads or follows already.
    func start() {
        state.withLock { state in
            guard !state.leading, !state.closed, state.thread == nil else { return }
            state.thread = PeriodicThread(name: "health-state-follower", interval: interval, immediately: true, state: 0) {
                [weak self] version in
                guard let self else { return false }
                return self.pass(after: &version)
            }
        }
    }

    /// This replica started (true) or stopped (false) leading.
    func leadingChanged(_ leading: Bool) {
        restoring.withLock { _ in
            state.withLock { state in
                state.leading = leading
                guard leading else { return }
                state.thread?.stop()
                state.thread = nil
                state.pending.removeAll()
            }
        }
    }

    /// Stops following for good (shutdown).
    func close() {
        state.withLock { state in
            state.closed = true
            state.thread?.stop()
            state.thread = nil
        }
    }

    /// The checker's change notification: these services' snapshots are read again.
    func changed(_ keys: [ServiceKey]) {
        state.withLock { state in
            if state.thread != nil { state.pending.formUnion(keys) }
        }
    }

    /// One pass: restores the snapshots stored after `version` and those of the services
    /// changed here, and moves `version` on. False once following stopped (ends the thread).
    private func pass(after version: inout Int) -> Bool {
        let pending = state.withLock { state -> Set<ServiceKey>? in
            guard state.thread != nil else { return nil }
            defer { state.pending.removeAll() }
            return state.pending
        }
        guard let pending else { return false }
        do {
            var (snapshots, newest) = try store.healthStates(after: version)
            let missing = pending.filter { snapshots[$0] == nil }
            if !missing.isEmpty { snapshots.merge(try store.healthStates(of: missing)) { stored, _ in stored } }
            return restoring.withLock { _ in
                guard state.withLock({ $0.thread != nil }) else { return false }
                if !snapshots.isEmpty { StoredLiveness.restore(snapshots, liveness: liveness, dns: dns, logger: logger) }
                version = newest
                return true
            }
        } catch {
            // The database cannot be read now (it answers 503 meanwhile): the next pass tries again.
            logger.debug("stored health state not read", metadata: ["error": "\(error)"])
            state.withLock { $0.pending.formUnion(pending) }
            return true
        }
    }
}
