import Foundation
import Logging
import RegistryStorage
import Synchronization

/// Counts refused and failed requests in memory and writes them to the audit log as one line per
/// (actor, source address, action, target, outcome, status, minute) with their number, every few
/// seconds, so that a flood of bad requests costs a bounded number of durable writes instead of
/// one each.
///
/// Bounds, whatever the requests hold: the caller (`RegistryApplication.auditFailure`) keys them
/// by values of bounded size (a route's operationId, a target only when it is a valid
/// Kubernetes name, no target for a request without a known token); `detail` is cut to
/// `maxDetailBytes`; one client (actor and source address) gets at most
/// `maxLinesPerClientPerMinute` distinct lines a minute, its further refusals one line per
/// outcome and status with its actor and address kept (action `*`, no target), so that one
/// client cannot use up the budget of the others; and at most `maxLinesPerMinute` distinct lines
/// are counted in one minute, further ones in a single overflow line per outcome and status
/// (actor `*`, action `*`). So refusals add at most about `maxLinesPerMinute` × 1.5 KiB to the
/// database a minute, and a flood from one client about `maxLinesPerClientPerMinute` lines.
final class RefusalAggregator: Sendable {
    struct Key: Hashable, Sendable {
        var actor: String
        var sourceAddress: String?
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

    /// Who a line is about: one token (or `anonymous`) from one address.
    struct Client: Hashable, Sendable {
        var actor: String
        var sourceAddress: String?
    }

    /// What is waiting for the next flush, and how many distinct lines the current minute has
    /// counted so far (flushed ones included), in all and per client.
    private struct State: Sendable {
        var tallies: [Key: Tally] = [:]
        var minute = ""
        /// The minute before `minute`: its lines still take counts (of requests that arrived
        /// in it and were flushed after the minute turned).
        var previousMinute = ""
        var linesThisMinute = 0
        /// Bounded by `maxLinesPerMinute`: a client is counted only when it gets a line.
        var linesPerClient: [Client: Int] = [:]
        /// The audit line each key of the current minute was written to, so that the next
        /// flushes of that minute add to it: one line per key and minute, however many flushes.
        var written: [Key: Int] = [:]
    }

    static let maxLinesPerMinute = 1_000
    static let maxLinesPerClientPerMinute = 20
    /// Bytes of a line's `detail` kept (UTF-8, cut at a character boundary, `…` appended).
    static let maxDetailBytes = 1_024

    private let pending = Mutex(State())
    /// Held through a flush (writes included), so that two flushes (the periodic one and one
    /// before `/v1/audit` is read) do not both insert a line for the same key.
    private let flushing = Mutex(())
    private let store: ServiceStore
    private let logger: Logger

    init(store: ServiceStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Counts one refused or failed request.
    func record(_ entry: AuditEntry, at date: Date = Date()) {
        let minute = Self.minute(date)
        var key = Key(
            actor: entry.actor, sourceAddress: entry.sourceAddress, action: entry.action, namespace: entry.namespace, name: entry.name,
            outcome: entry.outcome, status: entry.status, minute: minute)
        pending.withLock { state in
            // Only forward: a request whose thread read the clock just before the minute
            // turned is counted in its minute without starting that minute's count again.
            if minute > state.minute {
                state.previousMinute = state.minute
                state.minute = minute
                state.linesThisMinute = 0
                state.linesPerClient.removeAll(keepingCapacity: true)
            }
            func isNew(_ key: Key) -> Bool { state.tallies[key] == nil && state.written[key] == nil }
            let client = Client(actor: entry.actor, sourceAddress: entry.sourceAddress)
            var detail = entry.detail
            if isNew(key), state.linesPerClient[client, default: 0] >= Self.maxLinesPerClientPerMinute {
                key = Key(
                    actor: entry.actor, sourceAddress: entry.sourceAddress, action: "*", namespace: nil, name: nil, outcome: entry.outcome,
                    status: entry.status, minute: minute)
                detail =
                    "more distinct refusals from this client in this minute than the audit log keeps lines for (\(Self.maxLinesPerClientPerMinute))"
            }
            if isNew(key) {
                if state.linesThisMinute >= Self.maxLinesPerMinute {
                    key = Key(
                        actor: "*", sourceAddress: nil, action: "*", namespace: nil, name: nil, outcome: entry.outcome, status: entry.status,
                        minute: minute)
                    detail = "more distinct refusals in this minute than the audit log keeps lines for"
                }
                if isNew(key) {
                    state.linesThisMinute += 1
                    if key.actor != "*" { state.linesPerClient[client, default: 0] += 1 }
                }
            }
            state.tallies[key, default: Tally(count: 0, lastRequestID: entry.requestID, detail: nil)].count += 1
            state.tallies[key]?.lastRequestID = entry.requestID
            state.tallies[key]?.detail = detail.map(Self.truncated)
        }
    }

    /// `text` cut to at most `maxDetailBytes` UTF-8 bytes at a character boundary, with `…`.
    static func truncated(_ text: String) -> String {
        guard text.utf8.count > maxDetailBytes else { return text }
        var kept = ""
        var bytes = 0
        for character in text {
            bytes += character.utf8.count
            if bytes > maxDetailBytes - 3 { break }
            kept.append(character)
        }
        return kept + "…"
    }

    /// Writes what was counted since the last flush, in one transaction: a key already written
    /// in this minute adds its count to that line, others get a new line. On failure the
    /// counts are logged (they are not lost silently) and dropped.
    func flush() {
        flushing.withLock { _ in
            let (tallies, lines) = pending.withLock { state in
                defer { state.tallies.removeAll(keepingCapacity: true) }
                // Lines of minutes before the last two get no more counts (the one just over
                // still does: its last counts may be flushed after the minute turned).
                state.written = state.written.filter { $0.key.minute >= state.previousMinute }
                return (state.tallies, state.written)
            }
            guard !tallies.isEmpty else { return }
            let sorted = tallies.sorted { ($0.key.minute, $0.key.actor) < ($1.key.minute, $1.key.actor) }
            let keys = sorted.map(\.key)
            let entries = sorted.map { key, tally in
                AuditEntry(
                    id: lines[key] ?? 0, time: key.minute, actor: key.actor, action: key.action, namespace: key.namespace, name: key.name,
                    revisionBefore: nil, revisionAfter: nil, outcome: key.outcome, status: key.status, requestID: tally.lastRequestID,
                    detail: tally.detail, count: tally.count, sourceAddress: key.sourceAddress)
            }
            do {
                let ids = try store.accumulateAudit(entries)
                pending.withLock { state in
                    for (key, id) in zip(keys, ids) where key.minute >= state.previousMinute { state.written[key] = id }
                }
            } catch {
                logger.error(
                    "could not write refused requests to the audit log",
                    metadata: ["error": "\(error)", "lines": "\(entries.count)", "requests": "\(entries.reduce(0) { $0 + $1.count })"])
            }
        }
    }

    private static func minute(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970)
        return Date(timeIntervalSince1970: TimeInterval(seconds - seconds % 60)).formatted(.iso8601)
    }
}
