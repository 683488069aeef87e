import Foundation
import RegistryCore
import Testing

@testable import RegistryStorage

/// The audit log and histories stay within their bounds; history pages through `afterID`.
@Suite struct StoreRetentionTests {
    private func store(now: @escaping @Sendable () -> Date = { Date() }) throws -> ServiceStore {
        try freshStore(now: now)
    }

    private func refused(_ time: String, count: Int = 1) -> AuditEntry {
        AuditEntry(
            time: time, actor: "anonymous", action: "createService", namespace: nil, name: nil, revisionBefore: nil, revisionAfter: nil,
            outcome: .denied, status: 401, requestID: "r", detail: nil, count: count)
    }

    @Test func auditLinesOlderThanTheCutoffAreDeletedInBatches() throws {
        let store = try store()
        try store.appendAudit(
            (0..<25).map { refused("2020-01-01T00:00:\(String(format: "%02d", $0))Z") } + [refused("2030-01-01T00:00:00Z", count: 7)])
        #expect(try store.pruneAudit(olderThan: "2025-01-01T00:00:00Z", batch: 10) == 10)
        #expect(try store.pruneAudit(olderThan: "2025-01-01T00:00:00Z", batch: 10) == 10)
        #expect(try store.pruneAudit(olderThan: "2025-01-01T00:00:00Z", batch: 10) == 5)
        #expect(try store.pruneAudit(olderThan: "2025-01-01T00:00:00Z", batch: 10) == 0)
        let left = try store.audit(AuditQuery(limit: 100))
        #expect(left.map(\.time) == ["2030-01-01T00:00:00Z"])
        #expect(left.first?.count == 7)
    }

    /// A refusal's detail quotes what the client sent, NUL included (a JSON "\u0000"): it is
    /// kept whole and the same on both stores (PostgreSQL text cannot hold NUL; SQLite's text
    /// binding stopped at it), written as the JSON escape `\u0000`.
    @Test func auditTextWithNULIsKeptWholeOnBothStores() throws {
        let store = try store()
        var entry = refused("2030-01-01T00:00:00Z")
        entry.detail = "annotations[a\u{0}b]: key \"a\u{0}b\" is invalid"
        entry.action = "PATCH /x\u{0}y"
        try store.appendAudit([entry])
        let line = try #require(try store.audit(AuditQuery(limit: 10)).first)
        #expect(line.detail == #"annotations[a\u0000b]: key "a\u0000b" is invalid"#)
        #expect(line.action == #"PATCH /x\u0000y"#)
    }

    /// Push state lives as long as its service: deleted with it, never recorded for a service
    /// deleted (or re-created) while the push ran, and pruned when an older version left some.
    @Test func pushStateGoesWithItsService() throws {
        let store = try store()
        let audit = AuditContext(actor: "alice", requestID: "r", action: "pushService")
        func push(_ uid: String, cluster: String = "prod") throws {
            try store.recordPush(
                namespace: "default", name: "web",
                record: PushRecord(cluster: cluster, uid: uid, revision: 1, succeeded: true, objects: [PushedObject(kind: "Service", name: "web")]),
                audit: audit, status: 200, detail: nil)
        }
        let first = try store.create(sample("web"))
        try push(first.record.uid)
        #expect(try store.pushRecords(namespace: "default", name: "web").map(\.cluster) == ["prod"])
        try store.delete(namespace: "default", name: "web")
        #expect(try store.pushRecords(namespace: "default", name: "web").isEmpty)
        // A push that finishes after the deletion is audited and leaves no state.
        try push(first.record.uid, cluster: "staging")
        #expect(try store.pushRecords(namespace: "default", name: "web").isEmpty)
        #expect(try store.audit(AuditQuery(action: "pushService", limit: 10)).count == 2)
        // Nor does one for the deleted service once the name is taken again.
        let second = try store.create(sample("web"))
        try push(first.record.uid)
        #expect(try store.pushRecords(namespace: "default", name: "web").isEmpty)
        try push(second.record.uid)
        #expect(try store.pushRecords(namespace: "default", name: "web").map(\.uid) == [second.record.uid])
        // Rows an older version left for services that are gone are pruned in batches.
        try store.write { connection in
            for index in 0..<5 {
                try connection.prepare(
                    "INSERT INTO push_state (namespace, name, cluster, uid, revision, time, outcome, objects) VALUES (?, ?, 'prod', 'u', 1, 't', 'success', '[]')"
                ).bind(.text("default"), .text("gone-\(index)")).run()
            }
        }
        #expect(try store.pruneOrphanedPushState(batch: 3) == 3)
        #expect(try store.pruneOrphanedPushState(batch: 3) == 2)
        #expect(try store.pruneOrphanedPushState(batch: 3) == 0)
        #expect(try store.pushRecords(namespace: "default", name: "web").map(\.uid) == [second.record.uid])
    }

    /// Creates `name` and updates it until it has `count` revisions (its description changed).
    private func createWithRevisions(_ store: ServiceStore, _ name: String, count: Int) throws {
        _ = try store.create(sample(name))
        for revision in 2...count {
            _ = try store.update(namespace: "default", name: name) { current in
                var service = try #require(current).service
                service.description = "revision \(revision)"
                return service
            }
        }
    }

    @Test func historyKeepsTheNewestRevisionsOfEachService() throws {
        let store = try store()
        for name in ["a", "b"] {
            try createWithRevisions(store, name, count: 10)
        }
        #expect(try store.revisions(namespace: "default", name: "a").entries.count == 10)
        var deleted = 0
        while case let count = try store.pruneHistory(keep: 3, batch: 4), count > 0 { deleted += count }
        #expect(deleted == 14)
        for name in ["a", "b"] {
            #expect(try store.revisions(namespace: "default", name: name).entries.map(\.revision) == [8, 9, 10])
        }
        #expect(try store.pruneHistory(keep: 3, batch: 4) == 0)
    }

    /// More services over the limit than one write takes (`servicesPerWrite`): one call prunes
    /// them all, a batch's worth, in several short writes.
    @Test func oneCallPrunesManyServicesInSeveralWrites() throws {
        let store = try store()
        let names = (0..<(ServiceStore.servicesPerWrite + 8)).map { "s\($0)" }
        for name in names {
            try createWithRevisions(store, name, count: 4)
        }
        #expect(try store.pruneHistory(keep: 2, batch: 1_000) == 2 * names.count)
        for name in names {
            #expect(try store.revisions(namespace: "default", name: name).entries.map(\.revision) == [3, 4])
        }
        #expect(try store.pruneHistory(keep: 2, batch: 1_000) == 0)
    }

    @Test func historyPagesCarryTheRevisionBeforeThem() throws {
        let store = try store()
        _ = try store.create(sample("a"))
        for index in 0..<4 {
            _ = try store.update(namespace: "default", name: "a") { current in
                var service = try #require(current).service
                service.description = "d\(index)"
                return service
            }
        }
        let first = try store.revisions(namespace: "default", name: "a", limit: 2)
        #expect(first.entries.map(\.revision) == [1, 2])
        #expect(first.previous == nil)
        let second = try store.revisions(namespace: "default", name: "a", afterID: try #require(first.entries.last).id, limit: 2)
        #expect(second.entries.map(\.revision) == [3, 4])
        #expect(second.previous?.revision == 2)
        let last = try store.revisions(namespace: "default", name: "a", afterID: try #require(second.entries.last).id, limit: 2)
        #expect(last.entries.map(\.revision) == [5])
    }
}
