import Foundation
import RegistryCore
import TestSupport
import Testing

@testable import RegistryStorage

@Suite struct AuditQueryTests {
    /// The audit lines of one service, among other services' and other actors', come in id
    /// order, a page at a time (`afterID`), alone or with the other filters.
    @Test func linesOfOneServicePageInIDOrder() throws {
        let store = try freshStore()
        let addresses = EndpointAddressList([EndpointAddress(ip: "10.6.0.1")])
        for round in 1...3 {
            for name in ["a", "b"] {
                let audit = AuditContext(actor: round == 2 ? "bob" : "alice", requestID: "r\(round)\(name)", action: "update")
                _ = try store.update(namespace: "default", name: name, audit: audit) { _ in
                    ExternalService(name: name, description: "round \(round)", ports: [ServicePort(port: 80)], addresses: addresses)
                }
            }
        }
        let all = try store.audit(AuditQuery(namespace: "default", name: "a"))
        #expect(all.map(\.requestID) == ["r1a", "r2a", "r3a"])
        #expect(all.map(\.id) == all.map(\.id).sorted())
        let first = try store.audit(AuditQuery(namespace: "default", name: "a", limit: 2))
        #expect(first.map(\.requestID) == ["r1a", "r2a"])
        let next = try store.audit(AuditQuery(namespace: "default", name: "a", afterID: first.last?.id, limit: 2))
        #expect(next.map(\.requestID) == ["r3a"])
        #expect(try store.audit(AuditQuery(namespace: "default", name: "a", actor: "bob")).map(\.requestID) == ["r2a"])
        #expect(try store.audit(AuditQuery(namespace: "default", name: "c")).isEmpty)
        #expect(try store.audit(AuditQuery(namespace: "other", name: "a")).isEmpty)
        #expect(try store.audit(AuditQuery(name: "b")).map(\.requestID) == ["r1b", "r2b", "r3b"])
        #expect(try store.audit(AuditQuery(namespace: "default", actor: "bob")).map(\.requestID) == ["r2a", "r2b"])
    }

    /// SQLite reads one service's lines through `audit_log_by_target` rather than scanning the
    /// whole log (its planner uses no index for a term `?2 IS NULL OR namespace = ?2`); the
    /// other filters scan in id order from the last id seen.
    @Test(.enabled(if: TestStore.current == .sqlite, "SQLite's query plans: the SQLite pass runs it"))
    func linesOfOneServiceAreReadThroughTheirIndex() throws {
        let store = try freshStore()
        let connection = try store.database.connect(readOnly: true)
        func plan(byTarget: Bool) throws -> String {
            let statement = try connection.prepare("EXPLAIN QUERY PLAN " + ServiceStore.auditSQL(byTarget: byTarget))
            try statement.bind(.integer(0), .text("default"), .text("a"), .null, .null, .null)
            var details: [String] = []
            while try statement.step() { details.append(statement.text(3)) }
            connection.resetStatements()
            return details.joined(separator: "; ")
        }
        let byTarget = try plan(byTarget: true)
        #expect(byTarget.contains("USING INDEX audit_log_by_target (namespace=? AND name=? AND id>?)"), "\(byTarget)")
        #expect(!byTarget.contains("TEMP B-TREE"), "\(byTarget)")
        let scan = try plan(byTarget: false)
        #expect(scan.contains("USING INTEGER PRIMARY KEY (rowid>?)"), "\(scan)")
    }

    /// Migration 0016 (SQLite) drops `watch_events_by_time`, which no query reads: the watch
    /// log is pruned in resource-version order, and the plan of that pruning is the same scan.
    @Test(.enabled(if: TestStore.current == .sqlite, "SQLite's indexes: the SQLite pass runs it"))
    func watchEventsHaveNoIndexByTime() throws {
        let store = try freshStore()
        let connection = try store.database.connect(readOnly: true)
        let indexes = try connection.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'watch_events'")
        var names: [String] = []
        while try indexes.step() { names.append(indexes.text(0)) }
        connection.resetStatements()
        #expect(!names.contains("watch_events_by_time"))
        _ = try store.create(ExternalService(name: "a", ports: [ServicePort(port: 80)], addresses: [EndpointAddress(ip: "10.6.0.2")]))
        #expect(try store.pruneWatchEvents(keep: 0, olderThan: "9999", batch: 10) == 1)
    }
}
