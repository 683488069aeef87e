import Foundation
import Logging
import RegistryStorage
import Synchronization

/// Keeps the audit log, the service histories and the watch change log within their bounds:
/// audit lines older than `auditRetentionDays`, history revisions beyond the newest
/// `historyLimit` per service (those a kept watch event names stay until it goes), and watch events beyond the newest `watchHistoryEvents` or older
/// than `watchHistoryMinutes`, and push state of services that no longer exist are deleted in the background, in batches of
/// `batchSize` so that a writer never waits long, and the refusal aggregator is flushed. Runs on a thread of its own; `stop()` ends it.
///
/// Flushing the refusals of this replica's requests runs on every replica; the pruning is
/// background work that only the leader does (issue 16): `startPruning()` and
/// `stopPruning()` turn it on and off, any number of times.
final class Retention: Sendable {
    struct Policy: Sendable {
        var auditRetentionDays: Int
        var historyLimit: Int
        /// Watch events kept at most (the newest), and the most minutes one is kept.
        var watchHistoryEvents = 10_000
        var watchHistoryMinutes = 60
        var batchSize = 500
        /// Seconds between two passes.
        var interval: Duration = .seconds(60)
        /// Seconds between two flushes of the refusal aggregator.
        var flushInterval: Duration = .seconds(5)
    }

    private let store: ServiceStore
    private let policy: Policy
    private let aggregator: RefusalAggregator
    private let logger: Logger
    private enum State { case idle, running, stopped }
    private let state = Mutex(State.idle)
    private let finished = DispatchSemaphore(value: 0)
    private var isStopped: Bool { state.withLock { $0 == .stopped } }
    /// Whether passes run (this replica leads), and whether one is running now.
    private let pruning = Mutex((enabled: false, passing: false))
    /// Whether a pass goes on with its next batch: not once stopped, nor once pruning was
    /// turned off during a scheduled pass (a direct `runOnce()` goes on).
    private var mayContinue: Bool { !isStopped && pruning.withLock { !$0.passing || $0.enabled } }

    init(store: ServiceStore, policy: Policy, aggregator: RefusalAggregator, logger: Logger) {
        self.store = store
        self.policy = policy
        self.aggregator = aggregator
        self.logger = logger
    }

    func start() {
        guard
            state.withLock({ state in
                defer { if state == .idle { state = .running } }
                return state == .idle
            })
        else { return }
        Thread.detachNewThread { [self] in
            var lastPass = ContinuousClock.now - policy.interval
            while !isStopped {
                aggregator.flush()
                if ContinuousClock.now - lastPass >= policy.interval, beginPass() {
                    lastPass = ContinuousClock.now
                    runOnce()
                    pruning.withLock { $0.passing = false }
                }
                sleep(policy.flushInterval)
            }
            aggregator.flush()
            finished.signal()
        }
    }

    /// Starts pruning: the first pass comes at once, the next every `interval`.
    func startPruning() {
        pruning.withLock { $0.enabled = true }
    }

    /// Stops pruning after the batch in progress (and waits for it); flushing goes on.
    func stopPruning() {
        pruning.withLock { $0.enabled = false }
        while pruning.withLock({ $0.passing }) { Thread.sleep(forTimeInterval: 0.01) }
    }

    /// Marks a pass as running if pruning is on.
    private func beginPass() -> Bool {
        pruning.withLock { state in
            guard state.enabled else { return false }
            state.passing = true
            return true
        }
    }

    /// One full pass: prunes until nothing is left to prune. Returns the lines, revisions,
    /// events and push states (of services that no longer exist) deleted.
    @discardableResult
    func runOnce(now: Date = Date()) -> (audit: Int, history: Int, watchEvents: Int, pushStates: Int) {
        let cutoff = now.addingTimeInterval(-Double(policy.auditRetentionDays) * 86_400).formatted(.iso8601)
        let watchCutoff = now.addingTimeInterval(-Double(policy.watchHistoryMinutes) * 60).formatted(.iso8601)
        var deleted = (audit: 0, history: 0, watchEvents: 0, pushStates: 0)
        // Each log on its own: one that fails (a damaged history chain, say) does not keep the
        // others from being pruned.
        func attempt(_ what: String, _ body: () throws -> Void) {
            do {
                try body()
            } catch {
                logger.error("retention of the \(what) failed; it is tried again in the next pass", metadata: ["error": "\(error)"])
            }
        }
        attempt("audit log") {
            while mayContinue {
                let count = try store.pruneAudit(olderThan: cutoff, batch: policy.batchSize)
                deleted.audit += count
                if count < policy.batchSize { break }
            }
        }
        attempt("history") {
            while mayContinue {
                // Revisions taken out of the histories (deleted, or kept only for the watch
                // log's events): go on until none is left.
                let count = try store.pruneHistory(keep: policy.historyLimit, batch: policy.batchSize)
                deleted.history += count
                if count == 0 || deleted.history >= 100 * policy.batchSize { break }
            }
        }
        attempt("watch log") {
            while mayContinue {
                let count = try store.pruneWatchEvents(keep: policy.watchHistoryEvents, olderThan: watchCutoff, batch: policy.batchSize)
                deleted.watchEvents += count
                if count < policy.batchSize { break }
            }
        }
        attempt("push state") {
            while mayContinue {
                let count = try store.pruneOrphanedPushState(batch: policy.batchSize)
                deleted.pushStates += count
                if count < policy.batchSize { break }
            }
        }
        if deleted.audit > 0 || deleted.history > 0 || deleted.watchEvents > 0 || deleted.pushStates > 0 {
            logger.info(
                "retention",
                metadata: [
                    "auditLinesDeleted": "\(deleted.audit)", "revisionsDeleted": "\(deleted.history)", "watchEventsDeleted": "\(deleted.watchEvents)",
                    "pushStatesDeleted": "\(deleted.pushStates)",
                ])
        }
        return deleted
    }

    /// Ends the thread after its current step and a last flush of the aggregator.
    func stop() {
        let wasRunning = state.withLock { state in
            defer { state = .stopped }
            return state == .running
        }
        if wasRunning { finished.wait() }
    }

    private func sleep(_ duration: Duration) {
        let end = ContinuousClock.now + duration
        while !isStopped, ContinuousClock.now < end {
            Thread.sleep(forTimeInterval: 0.1)
        }
    }
}
