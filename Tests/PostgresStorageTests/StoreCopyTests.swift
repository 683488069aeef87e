import Foundation
import RegistryCore
import RegistryResources
import TestSupport
import Testing

@testable import PostgresStorage
@testable import RegistryStorage

/// `StoreCopy` (`migrate-store`): an SQLite store filled through `ServiceStore` is copied into a
/// fresh PostgreSQL database, which then serves the same documents, ETags, history, audit log,
/// push and reconcile state and watch log; and back.
@Suite struct StoreCopyTests {
    private static func sqliteMigrations() throws -> [Migration] { try Migration.parse(RegistryResources.migrations) }
    private static func postgreSQLMigrations() throws -> [Migration] { try Migration.parse(RegistryResources.postgreSQLMigrations) }

    private static func temporaryPath() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appending(path: "store-copy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appending(path: "registry.sqlite").path()
    }

    private static func freshPostgreSQL() throws -> PostgresDatabase {
        try PostgresDatabase.open(settings: try TestPostgres.shared().createDatabase(), migrations: try postgreSQLMigrations())
    }

    private static let audit = AuditContext(actor: "alice", requestID: "req-1", action: "updateService")

    /// An SQLite store with services (one with a history of patches, one in another namespace,
    /// one deleted and one re-created), audit lines of every outcome, push and reconcile state.
    private static func filledSQLiteStore() throws -> ServiceStore {
        let store = try ServiceStore(path: try temporaryPath(), migrations: try sqliteMigrations())
        let addresses = (1...60).map { EndpointAddress(ip: "10.1.0.\($0)") }
        _ = try store.create(
            ExternalService(name: "big", labels: ["app": "big"], ports: [ServicePort(port: 443)], addresses: EndpointAddressList(addresses)),
            audit: audit)
        // One address at a time, as the address routes do: the history keeps patches.
        for index in 1...12 {
            _ = try store.update(namespace: "default", name: "big", audit: audit) { current in
                guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "big") }
                service.insertNormalized(EndpointAddress(ip: "10.2.0.\(index)"))
                return service
            }
        }
        _ = try store.create(
            ExternalService(
                namespace: "team-b", name: "db", labels: ["tier": "data", "ünïcode": "ja"], ports: [ServicePort(port: 5432)],
                addresses: [EndpointAddress(ip: "192.0.2.10"), EndpointAddress(ip: "2001:db8::1")]))
        _ = try store.create(ExternalService(name: "gone", ports: [ServicePort(port: 80)], addresses: [EndpointAddress(ip: "10.9.0.1")]))
        _ = try store.update(namespace: "default", name: "gone") { current in
            guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "gone") }
            service.labels["about-to"] = "go"
            return service
        }
        try store.delete(namespace: "default", name: "gone", audit: audit)
        _ = try store.create(ExternalService(name: "again", ports: [ServicePort(port: 80)]))
        try store.delete(namespace: "default", name: "again")
        _ = try store.create(ExternalService(name: "again", ports: [ServicePort(port: 81)]))
        try store.appendAudit([
            AuditEntry(
                actor: "mallory", action: "deleteService", namespace: "team-b", name: "db", revisionBefore: nil, revisionAfter: nil,
                outcome: .denied, status: 403, requestID: "req-9", detail: "not allowed", count: 4),
            AuditEntry(
                actor: "bob", action: "listServices", namespace: nil, name: nil, revisionBefore: nil, revisionAfter: nil, outcome: .failure,
                status: 503, requestID: "req-10", detail: nil),
        ])
        // More audit lines than a page (`StoreCopy.pageRows`) and an insert batch hold.
        try store.appendAudit(
            (0..<600).map { index in
                AuditEntry(
                    actor: "bot-\(index % 7)", action: "getService", namespace: "default", name: "n\(index)", revisionBefore: nil,
                    revisionAfter: nil, outcome: .denied, status: 403, requestID: "bulk-\(index)", detail: index % 2 == 0 ? nil : "d\(index)")
            })
        let big = try #require(try store.record(namespace: "default", name: "big"))
        try store.recordPush(
            namespace: "default", name: "big",
            record: PushRecord(
                cluster: "prod", uid: big.uid, revision: big.revision, succeeded: true,
                objects: [PushedObject(kind: "Service", name: "big"), PushedObject(kind: "EndpointSlice", name: "big-1")]),
            audit: AuditContext(actor: "alice", requestID: "req-2", action: "pushService"), status: 200, detail: nil)
        try store.recordPush(
            namespace: "default", name: "big",
            record: PushRecord(cluster: "staging", uid: big.uid, revision: big.revision, succeeded: false, objects: []),
            audit: AuditContext(actor: "alice", requestID: "req-3", action: "pushService"), status: 502, detail: "connection refused")
        try store.saveReconcileStates([
            ReconcileState(
                namespace: "default", name: "big", cluster: "prod", state: .synced, uid: big.uid, revision: big.revision,
                lastSyncTime: "2026-12-01T09:00:00Z"),
            ReconcileState(
                namespace: "team-b", name: "db", cluster: "prod", source: .push, state: .failing, attempts: 3,
                nextAttemptTime: "2026-12-01T09:05:00Z"),
            ReconcileState(namespace: "default", name: "gone", cluster: "prod", state: .deleting),
        ])
        return store
    }

    /// Everything a store answers, for comparing two stores.
    private struct Answers: Equatable {
        var documents: [String: [String]] = [:]
        var list: [[UInt8]] = []
        var history: [String: [String]] = [:]
        var audit: [AuditEntry] = []
        var pushes: [String: [PushRecord]] = [:]
        var reconcile: [ReconcileState] = []
        var events: [WatchEvent] = []
        var resourceVersion: ResourceVersionState?

        init(_ store: ServiceStore) throws {
            list = try store.list(namespace: nil, selector: .everything, after: nil, limit: nil).documents
            for (namespace, name) in [("default", "big"), ("team-b", "db"), ("default", "gone"), ("default", "again")] {
                let key = "\(namespace)/\(name)"
                if let stored = try store.document(namespace: namespace, name: name) {
                    documents[key] = [stored.etag, stored.uid, "\(stored.revision)", String(decoding: stored.document, as: UTF8.self)]
                }
                history[key] = try store.revisions(namespace: namespace, name: name).entries.map { entry in
                    "\(entry.id) \(entry.uid) \(entry.revision) \(entry.time) \(entry.actor) \(entry.action) \(entry.requestID) "
                        + (entry.document.map { String(decoding: $0, as: UTF8.self) } ?? "deleted")
                }
                pushes[key] = try store.pushRecords(namespace: namespace, name: name)
            }
            audit = try store.audit(AuditQuery(limit: 10_000))
            reconcile = try store.allReconcileStates()
            events = try store.watchEvents(after: 0, limit: 10_000).events
            resourceVersion = try store.resourceVersionState()
        }
    }

    /// Rows of `table` kept as patches, read through a connection of `database`.
    private static func count(_ sql: String, in database: any SQLDatabase) throws -> Int {
        let connection = try database.connect(readOnly: true)
        let statement = try connection.prepare(sql)
        _ = try statement.step()
        return statement.int(0)
    }

    @Test func copiesAnSQLiteStoreIntoPostgreSQLWhichServesTheSame() throws {
        let sqlite = try Self.filledSQLiteStore()
        let expected = try Answers(sqlite)
        #expect(expected.history["default/big"]?.count == 13)
        #expect(try Self.count("SELECT count(patch) FROM service_revisions", in: sqlite.database) > 0, "the history holds patches")

        let postgreSQL = try Self.freshPostgreSQL()
        let summary = try StoreCopy.copy(
            from: SQLiteDatabase(existing: sqlite.path), sourceMigrations: try Self.sqliteMigrations(), to: postgreSQL,
            destinationMigrations: try Self.postgreSQLMigrations())
        #expect(summary.tables.map(\.name) == StoreCopy.tableNames)
        #expect(summary.sourceSchemaVersion == (try Self.sqliteMigrations()).last?.version)
        #expect(summary.destinationSchemaVersion == (try Self.postgreSQLMigrations()).last?.version)
        let rows = Dictionary(uniqueKeysWithValues: summary.tables.map { ($0.name, $0.rows) })
        for table in StoreCopy.tableNames {
            #expect(rows[table] == (try Self.count("SELECT count(*) FROM \(table)", in: sqlite.database)), "\(table)")
        }
        #expect(rows["services"] == 3 && rows["push_state"] == 2 && rows["reconcile_state"] == 3 && rows["watch_state"] == 1)
        #expect(
            try Self.count("SELECT count(patch) FROM service_revisions", in: postgreSQL)
                == (try Self.count("SELECT count(patch) FROM service_revisions", in: sqlite.database)))

        let copy = try ServiceStore(database: postgreSQL)
        let answers = try Answers(copy)
        #expect(answers == expected)

        // The copy goes on from there: new ids follow the copied ones, revisions and ETags go on.
        let auditBefore = try #require(expected.audit.last?.id)
        _ = try copy.create(ExternalService(name: "new", ports: [ServicePort(port: 80)]), audit: Self.audit)
        let updated = try copy.update(namespace: "default", name: "big", audit: Self.audit) { current in
            guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "big") }
            service.insertNormalized(EndpointAddress(ip: "10.3.0.1"))
            return service
        }
        #expect(updated.record.revision == 14)
        let newAudit = try copy.audit(AuditQuery(afterID: auditBefore))
        #expect(newAudit.map(\.action) == ["updateService", "updateService"] && newAudit.allSatisfy { $0.id > auditBefore })
        let history = try copy.revisions(namespace: "default", name: "big").entries
        #expect(history.map(\.revision) == Array(1...14))
        #expect(history.last?.document == updated.document)
        #expect(try copy.resourceVersionState().current == (expected.resourceVersion?.current ?? 0) + 2)
    }

    /// SQLite → PostgreSQL → SQLite: both copies hash every table alike, and the second SQLite
    /// file serves what the first did.
    @Test func copiesPostgreSQLBackIntoSQLiteUnchanged() throws {
        let sqlite = try Self.filledSQLiteStore()
        let expected = try Answers(sqlite)
        let postgreSQL = try Self.freshPostgreSQL()
        let there = try StoreCopy.copy(
            from: SQLiteDatabase(existing: sqlite.path), sourceMigrations: try Self.sqliteMigrations(), to: postgreSQL,
            destinationMigrations: try Self.postgreSQLMigrations())
        let path = try Self.temporaryPath()
        let back = try StoreCopy.copy(
            from: postgreSQL, sourceMigrations: try Self.postgreSQLMigrations(),
            to: try SQLiteDatabase.open(path: path, migrations: try Self.sqliteMigrations(), exclusive: true),
            destinationMigrations: try Self.sqliteMigrations())
        #expect(back.tables == there.tables, "every value kept its type and bytes both ways")
        let restored = try ServiceStore(path: path, migrations: try Self.sqliteMigrations())
        #expect(try Answers(restored) == expected)
    }

    @Test func refusesADestinationThatIsNotEmpty() throws {
        let sqlite = try Self.filledSQLiteStore()
        let postgreSQL = try Self.freshPostgreSQL()
        let other = try ServiceStore(database: postgreSQL)
        _ = try other.create(ExternalService(name: "already-here", ports: [ServicePort(port: 80)]))
        let error = try #require(throws: StoreCopyError.self) {
            try StoreCopy.copy(
                from: SQLiteDatabase(existing: sqlite.path), sourceMigrations: try Self.sqliteMigrations(), to: postgreSQL,
                destinationMigrations: try Self.postgreSQLMigrations())
        }
        #expect(error.reason == .destinationNotEmpty)
        #expect(error.message.contains("is not empty (services: 1 row, service_revisions: 1 row, watch_state: 1 row"), "\(error.message)")
        #expect(error.message.contains("never merges"))
        // Nothing of the source arrived; the destination's own service is still there, alone.
        #expect(try other.count() == 1)
        #expect(try Self.count("SELECT count(*) FROM audit_log", in: postgreSQL) == 1)

        // A second copy into a database the first filled is refused the same way.
        let fresh = try Self.freshPostgreSQL()
        _ = try StoreCopy.copy(
            from: SQLiteDatabase(existing: sqlite.path), sourceMigrations: try Self.sqliteMigrations(), to: fresh,
            destinationMigrations: try Self.postgreSQLMigrations())
        let again = try #require(throws: StoreCopyError.self) {
            try StoreCopy.copy(
                from: SQLiteDatabase(existing: sqlite.path), sourceMigrations: try Self.sqliteMigrations(), to: fresh,
                destinationMigrations: try Self.postgreSQLMigrations())
        }
        #expect(again.reason == .destinationNotEmpty)
    }

    @Test func refusesASourceAtAnotherSchemaVersion() throws {
        let migrations = try Self.sqliteMigrations()
        // (This binary's store code writes the newest schema only: the older file stays empty.)
        let older = try ServiceStore(path: try Self.temporaryPath(), migrations: Array(migrations.dropLast()))
        let postgreSQL = try Self.freshPostgreSQL()
        let error = try #require(throws: StoreCopyError.self) {
            try StoreCopy.copy(
                from: SQLiteDatabase(existing: older.path), sourceMigrations: migrations, to: postgreSQL,
                destinationMigrations: try Self.postgreSQLMigrations())
        }
        #expect(error.reason == .schemaVersion)
        #expect(
            error.message.contains(
                "has schema version \(migrations.dropLast().last?.version ?? 0), older than this binary's (\(migrations.last?.version ?? 0)"),
            "\(error.message)")
        #expect(try Self.count("SELECT count(*) FROM services", in: postgreSQL) == 0)

        // A binary that knows fewer migrations than the source has applied refuses it too.
        let current = try Self.filledSQLiteStore()
        let newer = try #require(throws: StoreCopyError.self) {
            try StoreCopy.copy(
                from: SQLiteDatabase(existing: current.path), sourceMigrations: Array(migrations.dropLast()), to: postgreSQL,
                destinationMigrations: try Self.postgreSQLMigrations())
        }
        #expect(newer.reason == .schemaVersion)
        #expect(newer.message.contains("newer than this binary knows"))
    }

    /// The list of copied tables is the SQLite schema's (but `schema_migrations`): a table added
    /// by a migration must be added to `StoreCopy.tables`, or every copy refuses.
    @Test func copiesEveryTableOfTheSharedSchema() throws {
        let path = try Self.temporaryPath()
        let database = try SQLiteDatabase.open(path: path, migrations: try Self.sqliteMigrations(), exclusive: false)
        let tables = try database.connect(readOnly: true).tableNames()
        #expect(Set(tables).subtracting(["schema_migrations"]) == Set(StoreCopy.tableNames))
        let postgreSQLTables = try Self.freshPostgreSQL().connect(readOnly: true).tableNames()
        #expect(Set(postgreSQLTables).subtracting(["schema_migrations", "leader_lease"]) == Set(StoreCopy.tableNames))
    }

    /// The SQLite destination is held with the server's lock: a file a server serves is refused.
    @Test func refusesAnSQLiteDestinationThatIsServed() throws {
        let path = try Self.temporaryPath()
        let served = try ServiceStore(path: path, migrations: try Self.sqliteMigrations(), exclusive: true)
        let error = try #require(throws: StoreError.self) {
            _ = try SQLiteDatabase.open(path: path, migrations: try Self.sqliteMigrations(), exclusive: true)
        }
        #expect(error.description.contains("another process serves this database"))
        _ = served
    }
}
