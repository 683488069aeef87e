import Foundation
import Logging
import RegistryCore
import RegistryResources
import RegistryStorage
import Testing

@testable import RegistryAPI

/// The aggregation of refused requests into audit lines, with the clock given.
@Suite struct RefusalAggregatorTests {
    private func store() throws -> ServiceStore {
        let directory = FileManager.default.temporaryDirectory.appending(path: "refusals-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try ServiceStore(path: directory.appending(path: "r.sqlite").path(), migrations: try Migration.parse(RegistryResources.migrations))
    }

    private func refusal(_ name: String) -> AuditEntry {
        AuditEntry(
            actor: "anonymous", action: "getService", namespace: nil, name: nil, revisionBefore: nil, revisionAfter: nil, outcome: .denied,
            status: 401, requestID: name, detail: "no token", sourceAddress: "127.0.0.1")
    }

    /// Counts of a minute flushed after the minute turned go to that minute's line: one line
    /// per key and minute, also across the turn of the minute.
    @Test func theMinuteJustOverKeepsItsLine() throws {
        let store = try store()
        let aggregator = RefusalAggregator(store: store, logger: Logger(label: "test"))
        let minute = Date(timeIntervalSince1970: 1_799_999_940)
        aggregator.record(refusal("a"), at: minute.addingTimeInterval(10))
        aggregator.flush()
        aggregator.record(refusal("b"), at: minute.addingTimeInterval(59))
        // The next minute's first refusal arrives before the flush.
        aggregator.record(refusal("c"), at: minute.addingTimeInterval(61))
        aggregator.flush()
        aggregator.record(refusal("d"), at: minute.addingTimeInterval(62))
        aggregator.flush()
        let lines = try store.audit(AuditQuery(limit: 100))
        #expect(lines.count == 2, "\(lines.map { ($0.time, $0.count) })")
        #expect(lines.map(\.count) == [2, 2])
        #expect(Set(lines.map(\.time)).count == 2)
    }

    /// One client's distinct refusals beyond its share of a minute fold into one line that still
    /// names it; other clients keep their own lines.
    @Test func oneClientCannotUseUpTheMinute() throws {
        let store = try store()
        let aggregator = RefusalAggregator(store: store, logger: Logger(label: "test"))
        let now = Date(timeIntervalSince1970: 1_799_999_945)
        for index in 0..<50 {
            var entry = refusal("r\(index)")
            (entry.actor, entry.action, entry.namespace, entry.name, entry.status) = ("watcher", "deleteService", "team", "svc-\(index)", 403)
            aggregator.record(entry, at: now)
        }
        var other = refusal("o")
        other.sourceAddress = "127.0.0.2"
        aggregator.record(other, at: now)
        aggregator.flush()
        let lines = try store.audit(AuditQuery(limit: 1_000))
        let watcher = lines.filter { $0.actor == "watcher" }
        #expect(watcher.filter { $0.action == "deleteService" }.count == RefusalAggregator.maxLinesPerClientPerMinute)
        let folded = try #require(watcher.first { $0.action == "*" })
        #expect(folded.count == 50 - RefusalAggregator.maxLinesPerClientPerMinute)
        #expect(folded.name == nil && folded.sourceAddress == "127.0.0.1")
        #expect(lines.contains { $0.actor == "anonymous" && $0.sourceAddress == "127.0.0.2" })
        #expect(!lines.contains { $0.actor == "*" })
    }
}
