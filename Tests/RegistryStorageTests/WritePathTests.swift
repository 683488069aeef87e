import Foundation
import RegistryCore
import TestSupport
import Testing

@testable import RegistryStorage

/// A service of `count` addresses (10.x.y.z, one port).
func largeService(_ name: String, count: Int) -> ExternalService {
    var service = ExternalService(
        namespace: "default", name: name, ports: [ServicePort(port: 80)],
        addresses: EndpointAddressList((0..<count).map { EndpointAddress(ip: "10.\($0 / 62_500).\($0 / 250 % 250).\($0 % 250 + 1)") }))
    service.normalize()
    return service
}

/// A transform of `default/big` that adds or removes one address, as the address routes do
/// (and at `index` 20 also changes a label: another field, still a small patch).
func oneAddressChange(_ index: Int) -> @Sendable (ServiceRecord?) throws -> ExternalService {
    { current in
        guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "big") }
        if index % 3 == 2 {
            service.addresses.remove(at: (index * 37) % service.addresses.count)
        } else {
            service.insertNormalized(EndpointAddress(ip: "10.200.\(index / 250).\(index % 250 + 1)"))
        }
        if index == 20 { service.labels["changed"] = "yes" }
        return service
    }
}

/// The read-modify-write path of a large service: revisions, entity tags and stored documents
/// stay exact whatever the writer remembers of earlier writes (kept, rolled back or refused).
@Suite struct WritePathTests {
    private static func adding(_ ip: String) -> @Sendable (ServiceRecord?) throws -> ExternalService {
        { current in
            guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "big") }
            if service.addresses.contains(where: { $0.ip == ip }) { return service }
            service.addresses.append(EndpointAddress(ip: ip))
            service.normalize()
            return service
        }
    }

    private static func removing(_ ip: String) -> @Sendable (ServiceRecord?) throws -> ExternalService {
        { current in
            guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "big") }
            service.addresses.removeAll { $0.ip == ip }
            return service
        }
    }

    /// Byte equality, without printing both documents when it fails.
    private static func same(_ lhs: [UInt8]?, _ rhs: [UInt8]?) -> Bool { lhs == rhs }

    /// What a fresh process reads: the stored document, decoded without any cache.
    private static func reread(_ database: TestDatabase) throws -> (record: ServiceRecord?, document: StoredDocument?) {
        let store = try database.open()
        return (try store.record(namespace: "default", name: "big"), try store.document(namespace: "default", name: "big"))
    }

    @Test(arguments: TestStore.durabilities)
    func addAndRemoveOnALargeServiceKeepRevisionsAndETagsExact(durability: Durability) throws {
        let database = try TestDatabase.fresh()
        let store = try database.open(durability: durability)
        let (created, _) = try store.create(largeService("big", count: 2_000))

        let added = try store.update(namespace: "default", name: "big", Self.adding("192.0.2.10"))
        #expect(added.changed && added.record.revision == 2 && added.record.uid == created.uid)
        #expect(added.record.etag == ServiceRecord.etag(revision: 2, uid: created.uid))
        #expect(added.record.service.addresses.count == 2_001)
        var fresh = try Self.reread(database)
        #expect(fresh.record == added.record)
        #expect(Self.same(fresh.document?.document, added.document))
        #expect(fresh.document?.etag == added.record.etag)

        // Adding it again changes nothing: same revision, same document.
        let again = try store.update(namespace: "default", name: "big", Self.adding("192.0.2.10"))
        #expect(!again.changed && again.record.revision == 2 && Self.same(again.document, added.document))

        // A dry run that would add another address leaves revision 2 stored; the real change
        // that then reaches revision 3 is a different one, and it is the one kept.
        let dry = try store.update(namespace: "default", name: "big", dryRun: true, Self.adding("192.0.2.11"))
        #expect(dry.record.revision == 3 && dry.record.service.addresses.count == 2_002)
        #expect(try store.document(namespace: "default", name: "big")?.revision == 2)
        // A refused change (the transform throws) keeps nothing either.
        #expect(throws: StoreError.self) {
            _ = try store.update(namespace: "default", name: "big") { _ in throw StoreError.notFound(namespace: "default", name: "big") }
        }
        let removed = try store.update(namespace: "default", name: "big", Self.removing("10.0.0.1"))
        #expect(removed.changed && removed.record.revision == 3)
        #expect(removed.record.service.addresses.count == 2_000)
        #expect(!removed.record.service.addresses.contains { $0.ip == "192.0.2.11" })
        #expect(removed.record.service.addresses.contains { $0.ip == "192.0.2.10" })

        // The next read-modify-write starts from revision 3 as stored, not from the dry run.
        let next = try store.update(namespace: "default", name: "big", Self.adding("192.0.2.12"))
        #expect(next.record.revision == 4)
        #expect(!next.record.service.addresses.contains { $0.ip == "192.0.2.11" })
        #expect(!next.record.service.addresses.contains { $0.ip == "10.0.0.1" })
        fresh = try Self.reread(database)
        #expect(fresh.record == next.record)
        #expect(Self.same(fresh.document?.document, next.document))

        // Deleted and created again: a new uid, revision 1, nothing of the old registration.
        try store.delete(namespace: "default", name: "big")
        let recreated = try store.create(largeService("big", count: 3))
        let after = try store.update(namespace: "default", name: "big", Self.adding("192.0.2.13"))
        #expect(after.record.uid == recreated.record.uid && after.record.uid != created.uid)
        #expect(after.record.revision == 2 && after.record.service.addresses.count == 4)

        // History: one entry per committed revision, each with the document then served.
        let history = try store.revisions(namespace: "default", name: "big").entries
        #expect(history.map(\.revision) == [1, 2, 3, 4, 4, 1, 2])
        #expect(Self.same(history[1].document, added.document))
        #expect(Self.same(history[3].document, next.document))
        #expect(history[4].document == nil ? true : false)
    }

    /// Migration 0013: `services.uid` is not an index any more (each random uid cost a create a
    /// random page of it); the names stay unique, and on SQLite, where the table is made again,
    /// every row comes through the migration as it was, id included.
    @Test func uidsAreNotIndexedAndTheRebuildKeepsEveryRow() throws {
        let database = try TestDatabase.fresh()
        let store = try database.open()
        let addresses = EndpointAddressList((1...3).map { EndpointAddress(ip: "10.4.0.\($0)") })
        for name in ["a", "b", "c"] {
            _ = try store.create(ExternalService(name: name, labels: ["app": name], ports: [ServicePort(port: 80)], addresses: addresses))
        }
        try store.delete(namespace: "default", name: "b")
        let connection = try store.database.connect(readOnly: false)
        func rows() throws -> [[SQLValue]] {
            let statement = try connection.prepare(
                "SELECT id, namespace, name, uid, revision, created_at, updated_at, labels, document, address_count FROM services ORDER BY id")
            var rows: [[SQLValue]] = []
            while try statement.step() { rows.append((0..<10).map { statement.value(Int32($0)) }) }
            connection.resetStatements()
            return rows
        }
        let before = try rows()
        #expect(before.count == 2)
        // Another row with the same uid is stored: nothing checks it.
        try connection.execute(
            """
            INSERT INTO services (namespace, name, uid, revision, created_at, updated_at, labels, document, address_count)
            SELECT namespace, 'copy', uid, revision, created_at, updated_at, labels, document, address_count FROM services WHERE name = 'a'
            """)
        try connection.execute("DELETE FROM services WHERE name = 'copy'")
        if case .sqlite = database {
            let migration = try #require(try database.schemaMigrations().first { $0.version == 13 })
            try connection.execute(migration.sql)
            #expect(try rows() == before)
        }
        #expect(throws: StoreError.self) {
            _ = try store.create(ExternalService(name: "a", ports: [ServicePort(port: 80)], addresses: addresses))
        }
        #expect(try store.record(namespace: "default", name: "c")?.service.labels == ["app": "c"])
    }

    /// Migration 0014 (SQLite): the rows a write adds besides the service (its audit line, its
    /// watch event) and the reconciler's states are checked without a temporary b-tree per
    /// row (an `IN` list of three or more constants is one, `OpenEphemeral` in `EXPLAIN`); the
    /// same values are allowed and refused, and the rebuild keeps every row.
    @Test func checkConstraintsNeedNoTemporaryTableAndTheRebuildKeepsEveryRow() throws {
        let database = try TestDatabase.fresh()
        guard case .sqlite = database else { return }  // PostgreSQL's twin changes nothing (MigrationTests checks its constraints)
        let store = try database.open()
        let addresses = EndpointAddressList((1...3).map { EndpointAddress(ip: "10.5.0.\($0)") })
        for name in ["a", "b"] {
            _ = try store.create(ExternalService(name: name, ports: [ServicePort(port: 80)], addresses: addresses))
        }
        try store.delete(namespace: "default", name: "b")
        let connection = try store.database.connect(readOnly: false)
        try connection.execute(
            """
            INSERT INTO reconcile_state (namespace, name, cluster, source, state, attempts, updated_at)
            VALUES ('default', 'a', 'prod', 'push', 'failing', 3, 't')
            """)
        let written = [
            "INSERT INTO audit_log (time, actor, action, outcome, status, request_id) VALUES (?, ?, ?, ?, ?, ?)",
            "INSERT INTO watch_events (resource_version, type, namespace, name, labels, time, document) VALUES (?, ?, ?, ?, ?, ?, ?)",
            "INSERT INTO reconcile_state (namespace, name, cluster, state, updated_at) VALUES (?, ?, ?, ?, ?)",
            "UPDATE reconcile_state SET state = ? WHERE namespace = ? AND name = ? AND cluster = ?",
        ]
        for sql in written {
            let explain = try connection.prepare("EXPLAIN " + sql)
            var opcodes: [String] = []
            while try explain.step() { opcodes.append(explain.text(1)) }
            connection.resetStatements()
            #expect(!opcodes.isEmpty && !opcodes.contains("OpenEphemeral"), "\(sql)")
        }
        func rows(_ table: String, _ columns: Int) throws -> [[SQLValue]] {
            let statement = try connection.prepare("SELECT * FROM \(table) ORDER BY rowid")
            var rows: [[SQLValue]] = []
            while try statement.step() { rows.append((0..<columns).map { statement.value(Int32($0)) }) }
            connection.resetStatements()
            return rows
        }
        let tables = [("audit_log", 14), ("watch_events", 10), ("reconcile_state", 12)]
        let before = try tables.map { try rows($0.0, $0.1) }
        #expect(before.map(\.count) == [3, 3, 1])
        let migration = try #require(try database.schemaMigrations().first { $0.version == 14 })
        // In one transaction, as `Migrator` runs it; then the later migrations (their columns),
        // once the tables, columns and indexes they create are gone, as they were when migration 14 ran.
        try connection.execute("DROP TABLE audit_log_targets; DROP TABLE audit_state")
        try connection.execute(
            """
            DROP INDEX service_revisions_patches; DROP INDEX service_revisions_by_service;
            ALTER TABLE service_revisions DROP COLUMN previous_id; ALTER TABLE watch_events DROP COLUMN revision_id;
            CREATE INDEX service_revisions_by_service ON service_revisions (namespace, name, id)
            """)
        try connection.execute("BEGIN IMMEDIATE")
        try connection.execute(migration.sql)
        try connection.execute("COMMIT")
        for later in try database.schemaMigrations().filter({ $0.version > 14 }).sorted(by: { $0.version < $1.version }) {
            try connection.execute(later.sql)
        }
        #expect(try tables.map { try rows($0.0, $0.1) } == before)
        let refused = [
            "INSERT INTO audit_log (time, actor, action, outcome, status, request_id) VALUES ('t', 'a', 'create', 'maybe', 200, 'r')",
            "INSERT INTO watch_events (resource_version, type, namespace, name, labels, time, document) VALUES (99, 'CHANGED', 'd', 'a', '{}', 't', x'')",
            "INSERT INTO reconcile_state (namespace, name, cluster, state, updated_at) VALUES ('d', 'a', 'c', 'asleep', 't')",
            "UPDATE reconcile_state SET state = 'Synced'",
        ]
        for sql in refused {
            #expect(throws: (any Error).self, "\(sql)") { try connection.execute(sql) }
        }
        for state in ["synced", "pending", "drifted", "failing", "deleting"] {
            try connection.execute("UPDATE reconcile_state SET state = '\(state)'")
        }
        #expect(try store.record(namespace: "default", name: "a")?.revision == 1)
        _ = try store.create(ExternalService(name: "c", ports: [ServicePort(port: 80)], addresses: addresses))
        #expect(try rows("watch_events", 10).count == 4)
    }

    @Test func uidsAreRandomVersion4UUIDsInLowerCase() {
        let uids = (0..<200).map { _ in ServiceStore.newUID() }
        #expect(Set(uids).count == uids.count)
        for uid in uids {
            let parts = uid.split(separator: "-").map(\.count)
            #expect(parts == [8, 4, 4, 4, 12])
            #expect(uid == uid.lowercased())
            #expect(Array(uid)[14] == "4")
            #expect("89ab".contains(Array(uid)[19]))
            #expect(uid.utf8.allSatisfy { Array("0123456789abcdef-".utf8).contains($0) })
        }
    }

    /// Timestamps are written without Foundation's format style: the same text, for times
    /// spread over 1970–2200 (leap years, month and year ends), fractions of a second included.
    @Test func timestampsAreFoundationsISO8601Text() {
        var generator = SystemRandomNumberGenerator()
        var dates = [0, 951_782_400, 951_868_799.999, 4_107_542_400, 1_767_225_599.5, 1_709_164_800, -0.5].map(Date.init(timeIntervalSince1970:))
        dates += (0..<5000).map { _ in Date(timeIntervalSince1970: Double.random(in: 0..<7_258_118_400, using: &generator)) }
        for date in dates {
            #expect(ServiceStore.timestamp(date) == date.formatted(.iso8601), "\(date.timeIntervalSince1970)")
        }
    }

    /// A checkpoint is due once `threshold` pages of the WAL are not copied yet, not whenever
    /// the WAL is that long: under a steady stream of commits the WAL rarely starts over, and
    /// a trigger on its length ran a checkpoint (two fsyncs) after every commit.
    @Test func checkpointIsDueOnPagesNotYetCopied() {
        #expect(!WALCheckpointer.isDue(pages: 999, after: (0, 0), threshold: 1_000))
        #expect(WALCheckpointer.isDue(pages: 1_000, after: (0, 0), threshold: 1_000))
        // The last checkpoint copied 1,400 of 1,400 pages: 600 more are not enough, 1,000 are.
        #expect(!WALCheckpointer.isDue(pages: 2_000, after: (1_400, 1_400), threshold: 1_000))
        #expect(WALCheckpointer.isDue(pages: 2_400, after: (1_400, 1_400), threshold: 1_000))
        // It could copy only 200 (a reader kept an old snapshot): due again at once.
        #expect(WALCheckpointer.isDue(pages: 1_401, after: (1_400, 200), threshold: 1_000))
        // The WAL started over (shorter than at the checkpoint): all its pages are new.
        #expect(!WALCheckpointer.isDue(pages: 900, after: (1_400, 1_400), threshold: 1_000))
        #expect(WALCheckpointer.isDue(pages: 1_200, after: (1_400, 1_400), threshold: 1_000))
    }

    /// The WAL's bounds are bytes, turned into pages of the database's own size: a file of
    /// 4 KiB pages checkpoints at 4,000 and makes writers wait at 16,384, as before files got
    /// 8 KiB pages (2,000 and 8,192).
    @Test func walBoundsAreBytesWhateverThePageSize() {
        #expect(WALCheckpointer.bounds(pageSize: 4_096) == (4_000, 16_384))
        #expect(WALCheckpointer.bounds(pageSize: 8_192) == (2_000, 8_192))
        #expect(WALCheckpointer.bounds(pageSize: 65_536) == (250, 1_024))
        // A threshold given in pages is kept; the ceiling is never below it.
        #expect(WALCheckpointer.bounds(pageSize: 8_192, threshold: 500) == (500, 8_192))
        #expect(WALCheckpointer.bounds(pageSize: 8_192, threshold: 10_000) == (10_000, 10_000))
    }

    /// A database file the store creates gets 8 KiB pages; an existing file keeps its own page
    /// size (SQLite cannot change it once the file has tables) and is served as before.
    @Test(.enabled(if: TestStore.current == .sqlite, "SQLite's page size: the SQLite pass runs it"))
    func newFilesGetEightKiBPagesAndOldFilesKeepTheirs() throws {
        func pageSize(_ path: String) throws -> Int {
            let connection = try SQLiteConnection(path: path, readOnly: true)
            defer { try? connection.close() }
            return try connection.pageSize()
        }
        let created = try temporaryDatabase()
        do {
            let store = try ServiceStore(path: created, migrations: try projectMigrations())
            _ = try store.create(largeService("new", count: 300))
            try store.checkpoint()
        }
        #expect(try pageSize(created) == 8_192)
        let old = try temporaryDatabase()
        do {
            // A file made with SQLite's default page size, as by a server before this one.
            let connection = try SQLiteConnection(path: old)
            try connection.execute("PRAGMA page_size=4096; PRAGMA journal_mode=WAL; CREATE TABLE before (x)")
            try connection.close()
        }
        let store = try ServiceStore(path: old, migrations: try projectMigrations())
        _ = try store.create(largeService("kept", count: 300))
        #expect(try store.record(namespace: "default", name: "kept")?.service.addresses.count == 300)
        #expect(try store.integrityCheck() == ["ok"])
        #expect(try pageSize(old) == 4_096)
    }

    /// A writing connection keeps its savepoints' sub-journals in memory (`temp_store=MEMORY`):
    /// on a file, each page a write changes cost two more `pwrite` calls once the sub-journal
    /// passed 64 KiB. A read-only connection keeps SQLite's default.
    @Test func writingConnectionsKeepSubJournalsInMemory() throws {
        let path = try temporaryDatabase()
        let writer = try SQLiteConnection(path: path)
        let statement = try writer.prepare("PRAGMA temp_store")
        #expect(try statement.step())
        #expect(statement.int(0) == 2)
        statement.reset()
        try writer.execute("CREATE TABLE t (x)")
        let reader = try SQLiteConnection(path: path, readOnly: true)
        let readerStatement = try reader.prepare("PRAGMA temp_store")
        #expect(try readerStatement.step())
        #expect(readerStatement.int(0) == 0)
    }

    /// SQLite's memory statistics are off (they take a process-wide mutex around every
    /// allocation SQLite makes): with them on, an open connection that ran a query counts bytes.
    @Test func sqliteMemoryStatisticsAreOff() throws {
        let connection = try SQLiteConnection(path: try temporaryDatabase())
        try connection.execute("CREATE TABLE t (x); INSERT INTO t VALUES (randomblob(10000))")
        #expect(SQLiteConnection.memoryUsedAsCounted == 0)
    }

    /// Checkpoints run on their own thread once the WAL passes the threshold (no commit runs
    /// one: SQLite's automatic checkpoint is off on the writer).
    @Test(.enabled(if: TestStore.current == .sqlite, "SQLite's WAL checkpoints: the SQLite pass runs it"))
    func checkpointsRunInTheBackground() throws {
        let path = try temporaryDatabase()
        let store = try ServiceStore(path: path, durability: .normal, migrations: try projectMigrations(), checkpointThreshold: 500)
        #expect(store.checkpointsRun == 0)
        #expect(try store.integrityCheck() == ["ok"])
        // ~40 KiB per document, written twice (service and history): past 500 pages of 8 KiB.
        for index in 0..<80 { _ = try store.create(largeService("big-\(index)", count: 1_500)) }
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while (store.checkpointsRun ?? 0) == 0 && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect((store.checkpointsRun ?? 0) > 0)
        for index in 0..<80 { _ = try store.create(largeService("more-\(index)", count: 1_500)) }
        // What was written stays readable from a new connection, and the checkpointed file
        // holds it all once the WAL is folded in at the end.
        #expect(try store.record(namespace: "default", name: "more-79")?.service.addresses.count == 1_500)
        try store.checkpoint()
        #expect(ServiceStore.fileSize(path + "-wal") == 0)
        #expect(try store.count() == 160)
    }
}
