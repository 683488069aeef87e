import Foundation
import Logging
import RegistryStorage
import Synchronization

/// Counts refused and failed requests in memory and writes them to the audit log as one line per
/// (actor, action, target, outcome, status, minute) with their number, every few seconds, so
/// that a flood of bad requests costs a bounded number of durable writes instead of one each.
///
/// Bounds: at most `maxKeys` distinct lines wait between two flushes; further ones are counted
/// in a single overflow line (actor `*`, action `*`), so memory stays bounded too.
final class RefusalAggregator: Sendable {
    struct Key: Hashable, Sendable {
        var actor: String
        var action: String
        var namespace: String?
        var name: String?
        var outcome: AuditEntry.Outcome
        var status: Int
        /// `2026-12-01T10:42:00Z`: the minute the requests arrived in.
        var minute: String
    }

    struct Tally: Sendable {
        var count: Int
        var lastRequestID: String
        var detail: String?
    }

    static let maxKeys = 10_000

    private let pending = Mutex<[Key: Tally]>([:])
    private let store: ServiceStore
    private let logger: Logger

    init(store: ServiceStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Counts one refused or failed request.
    func record(_ entry: AuditEntry, at date: Date = Date()) {
        var key = Key(
            actor: entry.actor, action: entry.action, namespace: entry.namespace, name: entry.name, outcome: entry.outcome, status: entry.status,
            minute: Self.minute(date))
        pending.withLock { tallies in
            if tallies[key] == nil, tallies.count >= Self.maxKeys {
                key = Key(actor: "*", action: "*", namespace: nil, name: nil, outcome: entry.outcome, status: entry.status, minute: key.minute)
            }
            tallies[key, default: Tally(count: 0, lastRequestID: entry.requestID, detail: nil)].count += 1
            tallies[key]?.lastRequestID = entry.requestID
            tallies[key]?.detail = key.actor == "*" ? "more distinct refusals than the audit aggregates per flush" : entry.detail
        }
    }

    /// Writes what was counted since the last flush, in one transaction. On failure the counts
    /// are logged (they are not lost silently) and dropped.
    func flush() {
        let tallies = pending.withLock { tallies in
            defer { tallies.removeAll(keepingCapacity: true) }
            return tallies
        }
        guard !tallies.isEmpty else { return }
        let entries = tallies.sorted { ($0.key.minute, $0.key.actor) < ($1.key.minute, $1.key.actor) }.map { key, tally in
            AuditEntry(
                time: key.minute, actor: key.actor, action: key.action, namespace: key.namespace, name: key.name, revisionBefore: nil,
                revisionAfter: nil, outcome: key.outcome, status: key.status, requestID: tally.lastRequestID, detail: tally.detail,
                count: tally.count)
        }
        do {
            try store.appendAudit(entries)
        } catch {
            logger.error(
                "could not write refused requests to the audit log",
                metadata: ["error": "\(error)", "lines": "\(entries.count)", "requests": "\(entries.reduce(0) { $0 + $1.count })"])
        }
    }

    private static func minute(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970)
        return Date(timeIntervalSince1970: TimeInterval(seconds - seconds % 60)).formatted(.iso8601)
    }
}
