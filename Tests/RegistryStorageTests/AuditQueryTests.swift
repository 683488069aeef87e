import Foundation
import RegistryCore
import Synchronization
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

    /// SQLite reads one service's lines through `audit_log_targets` (up to
    /// `audit_state.targets_through`) and the log's end after it, merged in id order without a
    /// sort, rather than scanning the whole log (its planner uses no index for a term
    /// `?2 IS NULL OR namespace = ?2`); the other filters scan in id order from the last id seen.
    @Test(.enabled(if: TestStore.current == .sqlite, "SQLite's query plans: the SQLite pass runs it"))
    func linesOfOneServiceAreReadThroughTheirIndex() throws {
        let store = try freshStore()
        let connection = try store.database.connect(readOnly: true)
        func plan(byTarget: Bool) throws -> String {
            let statement = try connection.prepare("EXPLAIN QUERY PLAN " + ServiceStore.auditSQL(byTarget: byTarget))
            try statement.bind(.integer(0), .text("default"), .text("a"), .null, .null, .null)
            if byTarget { try statement.bind(at: 7, .integer(100)) }
            var details: [String] = []
            while try statement.step() { details.append(statement.text(3)) }
            connection.resetStatements()
            return details.joined(separator: "; ")
        }
        let byTarget = try plan(byTarget: true)
        #expect(byTarget.contains("SEARCH t USING PRIMARY KEY (namespace=? AND name=? AND id>?)"), "\(byTarget)")
        #expect(byTarget.contains("SEARCH a USING INTEGER PRIMARY KEY (rowid>?)"), "\(byTarget)")
        #expect(!byTarget.contains("TEMP B-TREE") && !byTarget.contains("SCAN"), "\(byTarget)")
        let scan = try plan(byTarget: false)
        #expect(scan.contains("USING INTEGER PRIMARY KEY (rowid>?)"), "\(scan)")
    }

    /// The lines of one service, some moved into `audit_log_targets` (`indexAuditTargets`) and
    /// some added since, come once each in id order, a page at a time across the two, alone or
    /// with the other filters; a move takes only what came since the last one.
    @Test func linesOfOneServiceComeFromBothSidesOfTheMove() throws {
        let store = try freshStore()
        let addresses = EndpointAddressList([EndpointAddress(ip: "10.6.0.1")])
        func round(_ round: Int) throws {
            for name in ["a", "b"] {
                let audit = AuditContext(actor: round % 2 == 0 ? "bob" : "alice", requestID: "r\(round)\(name)", action: "update")
                _ = try store.update(namespace: "default", name: name, audit: audit) { _ in
                    ExternalService(name: name, description: "round \(round)", ports: [ServicePort(port: 80)], addresses: addresses)
                }
            }
        }
        for number in 1...3 { try round(number) }
        #expect(try store.indexAuditTargets() == 6)
        #expect(try store.indexAuditTargets() == 0)
        for number in 4...6 { try round(number) }
        let expected = (1...6).map { "r\($0)a" }
        let all = try store.audit(AuditQuery(namespace: "default", name: "a"))
        #expect(all.map(\.requestID) == expected)
        #expect(all.map(\.id) == all.map(\.id).sorted())
        var paged: [String] = []
        var after: Int?
        while case let page = try store.audit(AuditQuery(namespace: "default", name: "a", afterID: after, limit: 2)), !page.isEmpty {
            paged += page.map(\.requestID)
            after = page.last?.id
        }
        #expect(paged == expected)
        #expect(try store.audit(AuditQuery(namespace: "default", name: "a", actor: "bob")).map(\.requestID) == ["r2a", "r4a", "r6a"])
        #expect(try store.audit(AuditQuery(namespace: "default", name: "a", afterID: all[3].id)).map(\.requestID) == ["r5a", "r6a"])
        #expect(try store.indexAuditTargets() == 6)
        #expect(try store.audit(AuditQuery(namespace: "default", name: "a")).map(\.requestID) == expected)
    }

    /// Retention deletes lines with their entries in `audit_log_targets`, and once the log is
    /// empty `audit_state.targets_through` comes back to 0: SQLite numbers the next lines from
    /// 1 again, and they are found (not taken for lines moved already).
    @Test func retentionTakesTheMovedEntriesAlongAndTheLogStartsOver() throws {
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        let store = try freshStore(now: { clock.withLock { $0 } })
        func update(_ requestID: String) throws {
            _ = try store.update(namespace: "default", name: "a", audit: AuditContext(actor: "alice", requestID: requestID, action: "update")) {
                _ in
                ExternalService(name: "a", description: requestID, ports: [ServicePort(port: 80)], addresses: [EndpointAddress(ip: "10.6.0.3")])
            }
        }
        for number in 1...4 { try update("old\(number)") }
        #expect(try store.indexAuditTargets() == 4)
        func count(_ sql: String) throws -> Int {
            let connection = try store.database.connect(readOnly: true)
            let statement = try connection.prepare(sql)
            _ = try statement.step()
            return statement.int(0)
        }
        #expect(try count("SELECT count(*) FROM audit_log_targets") == 4)
        #expect(try store.pruneAudit(olderThan: "2100-01-01T00:00:00Z", batch: 3) == 3)
        #expect(try count("SELECT count(*) FROM audit_log_targets") == 1)
        #expect(try count("SELECT targets_through FROM audit_state") == 4)
        #expect(try store.pruneAudit(olderThan: "2100-01-01T00:00:00Z", batch: 3) == 1)
        #expect(try count("SELECT count(*) FROM audit_log_targets") == 0)
        #expect(try count("SELECT targets_through FROM audit_state") == 0)
        for number in 1...2 { try update("new\(number)") }
        #expect(try store.audit(AuditQuery(namespace: "default", name: "a")).map(\.requestID) == ["new1", "new2"])
        #expect(try store.indexAuditTargets() == 2)
        #expect(try store.audit(AuditQuery(namespace: "default", name: "a")).map(\.requestID) == ["new1", "new2"])
    }

    /// The writer moves the lines by itself every `auditIndexingWrites` writes, between group
    /// commits: the lines left at the log's end are at most those of that many writes.
    @Test func theWriterMovesTheLinesEveryFewThousandWrites() throws {
        let store = try freshStore()
        _ = try store.create(ExternalService(name: "q", ports: [ServicePort(port: 80)], addresses: [EndpointAddress(ip: "10.6.0.4")]))
        let writes = ServiceStore.auditIndexingWrites + 100
        #expect(queueDescriptionUpdates(of: "q", count: writes, on: store).count == writes)
        let connection = try store.database.connect(readOnly: true)
        let statement = try connection.prepare(
            "SELECT (SELECT count(*) FROM audit_log_targets), (SELECT count(*) FROM audit_log WHERE id > (SELECT targets_through FROM audit_state))")
        _ = try statement.step()
        let (moved, left) = (statement.int(0), statement.int(1))
        connection.resetStatements()
        #expect(moved >= ServiceStore.auditIndexingWrites && left <= ServiceStore.auditIndexingWrites && moved + left == writes + 1)
        #expect(try store.audit(AuditQuery(namespace: "default", name: "q", limit: writes + 10)).count == writes + 1)
    }

    /// The lines a store left at the log's end when it stopped (fewer writes than a move needs)
    /// are moved when a store opens the database again; a write of many lines (aggregated
    /// refusals) counts each of them towards the next move.
    @Test func linesAreMovedAtOpenAndCountedPerLine() throws {
        let database = try TestDatabase.fresh()
        let store = try database.open()
        for round in 1...3 {
            _ = try store.update(namespace: "default", name: "a", audit: AuditContext(actor: "alice", requestID: "o\(round)", action: "update")) {
                _ in
                ExternalService(name: "a", description: "\(round)", ports: [ServicePort(port: 80)], addresses: [EndpointAddress(ip: "10.6.0.6")])
            }
        }
        func counts(_ store: ServiceStore) throws -> (moved: Int, left: Int) {
            let connection = try store.database.connect(readOnly: true)
            let statement = try connection.prepare(
                "SELECT (SELECT count(*) FROM audit_log_targets), (SELECT count(*) FROM audit_log WHERE id > (SELECT targets_through FROM audit_state))"
            )
            _ = try statement.step()
            defer { connection.resetStatements() }
            return (statement.int(0), statement.int(1))
        }
        #expect(try counts(store) == (moved: 0, left: 3))
        let reopened = try database.open()
        #expect(try counts(reopened) == (moved: 3, left: 0))
        let refusals = (0..<(ServiceStore.auditIndexingWrites + 10)).map { index in
            AuditEntry(
                actor: "anonymous", action: "replaceService", namespace: "default", name: "r\(index)", revisionBefore: nil, revisionAfter: nil,
                outcome: .denied, status: 401, requestID: "d\(index)", detail: nil)
        }
        try reopened.appendAudit(refusals)
        #expect(try counts(reopened) == (moved: 3 + refusals.count, left: 0))
        #expect(try reopened.audit(AuditQuery(namespace: "default", name: "r7")).map(\.requestID) == ["d7"])
    }

    /// Migration 0017 moves the lines already in the log into `audit_log_targets` (lines without
    /// a target stay out) and starts `audit_state` at the newest line: the lines of a service
    /// read the same after it, and the next lines come after that mark.
    @Test func theMigrationMovesTheLinesAlreadyInTheLog() throws {
        let database = try TestDatabase.fresh()
        let store = try database.open()
        for name in ["a", "b", "a"] {
            _ = try store.update(namespace: "default", name: name, audit: AuditContext(actor: "alice", requestID: "m-\(name)", action: "update")) {
                _ in
                ExternalService(name: name, ports: [ServicePort(port: 80)], addresses: [EndpointAddress(ip: "10.6.0.5")])
            }
        }
        try store.appendAudit([
            AuditEntry(
                actor: "anonymous", action: "*", namespace: nil, name: nil, revisionBefore: nil, revisionAfter: nil, outcome: .denied, status: 401,
                requestID: "r-none", detail: nil)
        ])
        let connection = try store.database.connect(readOnly: false)
        func count(_ sql: String) throws -> Int {
            let statement = try connection.prepare(sql)
            _ = try statement.step()
            defer { connection.resetStatements() }
            return statement.int(0)
        }
        // As the database was before 0017, then the migration's SQL again.
        try connection.execute("DROP TABLE audit_log_targets")
        try connection.execute("DROP TABLE audit_state")
        try connection.execute("CREATE INDEX audit_log_by_target ON audit_log (namespace, name, id)")
        let migration = try #require(try database.schemaMigrations().first { $0.version == 17 })
        try connection.execute(migration.sql)
        #expect(try count("SELECT count(*) FROM audit_log") == 4)
        #expect(try count("SELECT count(*) FROM audit_log_targets") == 3)
        #expect(try count("SELECT targets_through FROM audit_state") == count("SELECT max(id) FROM audit_log"))
        _ = try store.update(namespace: "default", name: "a", audit: AuditContext(actor: "alice", requestID: "m-after", action: "update")) { _ in
            ExternalService(name: "a", description: "after", ports: [ServicePort(port: 80)], addresses: [EndpointAddress(ip: "10.6.0.5")])
        }
        #expect(try store.audit(AuditQuery(namespace: "default", name: "a")).map(\.requestID) == ["m-a", "m-a", "m-after"])
        #expect(try store.indexAuditTargets() == 1)
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
