import Foundation
import Liveness
import Logging
import RegistryCore
import RegistryStorage
import Synchronization

/// Keeps the health checker's state and the DNS answers in the store (`StoredLiveness`) while
/// this replica leads (issue 16), so that a new leader continues where the old one stopped
/// instead of starting every address over from `unknown`, and followers show the same.
///
/// `resume()` (when leading starts, after the registrations are loaded into the checker and
/// before it probes) restores the stored snapshots and deletes those of services with neither
/// a health check nor a name to resolve (not when that load failed: a late load,
/// `loadingLate`, restores the services it brings, and the stale rows wait for the next
/// term). From then on, every service whose health changed (the checker's `onChange`: an
/// address crossed a threshold, the fail-open condition flipped, the check or the addresses
/// changed, the service was deleted) or whose resolved addresses
/// changed is written on one serial background queue, batched (what changed meanwhile goes in
/// the next transaction), never on an HTTP thread. The writes are fenced: after the lease is
/// lost they are refused, which is logged at notice level. `pause()` (leading stopped) writes
/// what is pending, then stops writing. A write that fails otherwise (the database is
/// unreachable, a statement timed out) is logged and its services are written again after a
/// backoff (`firstRetryDelay`, doubled after each failure up to `maxRetryDelay`; one retry
/// waits at a time), or sooner with the next change: a verdict that stays the same still
/// reaches the store once it can be written, instead of leaving the followers and the next
/// leader with an older one. Probe results that change no state (a refreshed `lastCheck`, a
/// count of consecutive results below a threshold) are not written by themselves: they go with
/// the service's next change.
final class HealthStatePersister: Sendable {
    private struct State {
        var leading = false
        var pending: Set<ServiceKey> = []
        var scheduled = false
    }

    /// Writes a batch: per service, its snapshot or nil to delete it (`ServiceStore.saveHealthStates`).
    typealias Save = @Sendable ([ServiceKey: [UInt8]?]) throws -> Void

    private let store: ServiceStore
    private let save: Save
    private let liveness: HealthChecker
    private let dns: DNSRefresher
    private let logger: Logger
    private let state = Mutex(State())
    private let queue: DispatchQueue
    private let retries: RetryTimer
    /// `pause()` waits for the queue (a late load stops at its next page).
    private let pausing = Atomic<Bool>(false)
    /// Services written per transaction at most.
    static let batchSize = 500

    /// `save`: how a batch is written (default: `store.saveHealthStates`; tests give a failing
    /// one). `firstRetryDelay`, `maxRetryDelay`: the backoff after failed writes (1 s doubling
    /// up to 30 s).
    init(
        store: ServiceStore, liveness: HealthChecker, dns: DNSRefresher, logger: Logger, save: Save? = nil,
        firstRetryDelay: Duration = .seconds(1), maxRetryDelay: Duration = .seconds(30)
    ) {
        self.store = store
        self.save = save ?? { try store.saveHealthStates($0) }
        self.liveness = liveness
        self.dns = dns
        self.logger = logger
        let queue = DispatchQueue(label: "health-state-persister")
        self.queue = queue
        self.retries = RetryTimer(queue: queue, first: firstRetryDelay, maximum: maxRetryDelay)
    }

    /// Restores the stored snapshots into the checker, deletes the stored snapshots of
    /// services it does not check (only when `registrationsLoaded`: otherwise the checker
    /// lacks services that are still registered), then writes changes from now on.
    func resume(registrationsLoaded: Bool = true) {
        // On the queue: a late load (`loadingLate`) runs wholly before or after.
        queue.sync { restoreAndStart(registrationsLoaded: registrationsLoaded) }
    }

    private func restoreAndStart(registrationsLoaded: Bool) {
        do {
            let stored = try store.allHealthStates()
            let restored = StoredLiveness.restore(stored, liveness: liveness, dns: dns, logger: logger)
            if !stored.isEmpty {
                logger.info("health state restored", metadata: ["services": "\(restored.count)", "stored": "\(stored.count)"])
            }
            let tracked = StoredLiveness.tracked(liveness: liveness, dns: dns)
            let stale = registrationsLoaded ? stored.keys.filter { !tracked.contains($0) } : []
            if !stale.isEmpty {
                var deletions: [ServiceKey: [UInt8]?] = [:]
                for key in stale { deletions[key] = .some(nil) }
                try store.saveHealthStates(deletions)
            }
        } catch StoreError.fenced(let reason) {
            logger.notice("stored health state not cleaned up: no longer leading", metadata: ["reason": "\(reason)"])
        } catch {
            logger.error("stored health state not restored; health checks start from unknown", metadata: ["error": "\(error)"])
        }
        state.withLock { $0.leading = true }
    }

    /// What `loadingLate` did.
    struct LateLoad {
        /// The services the load brought into the checker (also when it failed partway).
        var brought: Set<ServiceKey> = []
        /// Those of them whose stored verdicts were restored (only while leading).
        var restored: Set<ServiceKey> = []
        /// The load's error, if it failed.
        var failure: StoreError?
    }

    /// Runs `load` (registrations loaded into the checker late: the load before `resume()`
    /// failed) on the writer's queue and, while leading, restores the stored snapshots of the
    /// services it brought — also when it failed partway — before any write of theirs: they
    /// continue from the last leader's verdicts instead of overwriting them with `unknown`.
    /// `load` is handed a test to call between pages: true once `pause()` waits, so that
    /// losing the lease or shutting down does not wait for a whole load.
    func loadingLate(_ load: (_ stopping: () -> Bool) throws(StoreError) -> Void) -> LateLoad {
        queue.sync { () -> LateLoad in
            var result = LateLoad()
            let before = StoredLiveness.tracked(liveness: liveness, dns: dns)
            do throws(StoreError) {
                try load { pausing.load(ordering: .sequentiallyConsistent) }
            } catch {
                result.failure = error
            }
            result.brought = StoredLiveness.tracked(liveness: liveness, dns: dns).subtracting(before)
            guard !result.brought.isEmpty, state.withLock({ $0.leading }) else { return result }
            do {
                result.restored = StoredLiveness.restore(
                    try store.healthStates(of: result.brought), liveness: liveness, dns: dns, logger: logger)
            } catch {
                logger.error("stored health state not restored; these health checks start from unknown", metadata: ["error": "\(error)"])
            }
            return result
        }
    }

    /// Stops writing (this replica no longer leads), after writing what is pending: call it once
    /// the probes have stopped, so that a replica handing the lease over (a shutdown) stores its
    /// last verdicts; after an involuntary loss of the lease that write is refused (fenced).
    /// Once it returns nothing more is written (a write queued meanwhile, or a retry, finds
    /// this replica not leading) until `resume()`.
    func pause() {
        pausing.store(true, ordering: .sequentiallyConsistent)
        defer { pausing.store(false, ordering: .sequentiallyConsistent) }
        queue.sync {
            flush()
            state.withLock {
                $0.leading = false
                $0.pending.removeAll()
            }
        }
    }

    /// The checker's change notification: queue `keys` for the next write.
    func changed(_ keys: [ServiceKey]) {
        let schedule = state.withLock { state -> Bool in
            guard state.leading else { return false }
            state.pending.formUnion(keys)
            guard !state.scheduled else { return false }
            state.scheduled = true
            return true
        }
        if schedule { queue.async { [self] in flush() } }
    }

    /// Writes what is pending (on `queue`), in batches of `batchSize` services.
    private func flush() {
        // Services whose write failed: written again after the backoff (or with the next change).
        var failed: Set<ServiceKey> = []
        var wrote = false
        while true {
            let keys: [ServiceKey] = state.withLock { state in
                guard state.leading, !state.pending.isEmpty else {
                    state.scheduled = false
                    return []
                }
                let batch = Array(state.pending.prefix(HealthStatePersister.batchSize))
                state.pending.subtract(batch)
                return batch
            }
            guard !keys.isEmpty else { break }
            var snapshots: [ServiceKey: [UInt8]?] = [:]
            for key in keys { snapshots[key] = .some(StoredLiveness.snapshot(of: key, liveness: liveness, dns: dns)) }
            do {
                try save(snapshots)
                wrote = true
            } catch StoreError.fenced(let reason) {
                logger.notice("health state not stored: no longer leading", metadata: ["services": "\(keys.count)", "reason": "\(reason)"])
            } catch {
                logger.error("health state not stored; retrying", metadata: ["services": "\(keys.count)", "error": "\(error)"])
                failed.formUnion(keys)
            }
        }
        if failed.isEmpty {
            if wrote { retries.succeeded() }
            return
        }
        // Queued again (unless leading stopped meanwhile) and written by the retry, or sooner
        // by the next change.
        let queued = state.withLock { state in
            if state.leading { state.pending.formUnion(failed) }
            return state.leading
        }
        if queued { retries.failed { [weak self] in self?.changed([]) } }
    }
}
