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
/// a health check nor a name to resolve. From then on, every service whose health changed (the
/// checker's `onChange`: an address crossed a threshold, the fail-open condition flipped, the
/// check or the addresses changed, the service was deleted) or whose resolved addresses
/// changed is written on one serial background queue, batched (what changed meanwhile goes in
/// the next transaction), never on an HTTP thread. The writes are fenced: after the lease is
/// lost they are refused, which is logged at notice level. `pause()` (leading stopped) writes
/// what is pending, then stops writing. A write that fails otherwise is logged and retried
/// with the next change. Probe results that change no state (a refreshed `lastCheck`, a count
/// of consecutive results below a threshold) are not written by themselves: they go with the
/// service's next change.
final class HealthStatePersister: Sendable {
    private struct State {
        var leading = false
        var pending: Set<ServiceKey> = []
        var scheduled = false
    }

    private let store: ServiceStore
    private let liveness: HealthChecker
    private let dns: DNSRefresher
    private let logger: Logger
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "health-state-persister")
    /// Services written per transaction at most.
    static let batchSize = 500

    init(store: ServiceStore, liveness: HealthChecker, dns: DNSRefresher, logger: Logger) {
        self.store = store
        self.liveness = liveness
        self.dns = dns
        self.logger = logger
    }

    /// Restores the stored snapshots into the checker, deletes the stored snapshots of
    /// services it does not check, then writes changes from now on.
    func resume() {
        do {
            let stored = try store.allHealthStates()
            let restored = StoredLiveness.restore(stored, liveness: liveness, dns: dns, logger: logger)
            if !stored.isEmpty {
                logger.info("health state restored", metadata: ["services": "\(restored.count)", "stored": "\(stored.count)"])
            }
            let tracked = StoredLiveness.tracked(liveness: liveness, dns: dns)
            let stale = stored.keys.filter { !tracked.contains($0) }
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

    /// Stops writing (this replica no longer leads), after writing what is pending: call it once
    /// the probes have stopped, so that a replica handing the lease over (a shutdown) stores its
    /// last verdicts; after an involuntary loss of the lease that write is refused (fenced).
    func pause() {
        queue.sync { flush() }
        state.withLock {
            $0.leading = false
            $0.pending.removeAll()
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
        // Services whose write failed: written again with the next change.
        var failed: Set<ServiceKey> = []
        while true {
            let keys: [ServiceKey] = state.withLock { state in
                guard state.leading, !state.pending.isEmpty else {
                    state.scheduled = false
                    if state.leading { state.pending.formUnion(failed) }
                    return []
                }
                let batch = Array(state.pending.prefix(HealthStatePersister.batchSize))
                state.pending.subtract(batch)
                return batch
            }
            guard !keys.isEmpty else { return }
            var snapshots: [ServiceKey: [UInt8]?] = [:]
            for key in keys { snapshots[key] = .some(StoredLiveness.snapshot(of: key, liveness: liveness, dns: dns)) }
            do {
                try store.saveHealthStates(snapshots)
            } catch StoreError.fenced(let reason) {
                logger.notice("health state not stored: no longer leading", metadata: ["services": "\(keys.count)", "reason": "\(reason)"])
            } catch {
                logger.error("health state not stored", metadata: ["services": "\(keys.count)", "error": "\(error)"])
                failed.formUnion(keys)
            }
        }
    }
}
