import TestSupport
import Dispatch
import Foundation
import RegistryResources
import Synchronization
import Testing

@testable import PostgresStorage
@testable import RegistryStorage

@Suite struct PostgresMigrationTests {
    @Test func appliesEveryMigrationToAFreshDatabaseOnce() throws {
        let connection = try PostgresConnection(settings: try TestPostgres.shared().createDatabase())
        let migrator = try PostgresMigrator.bundled()
        #expect(try migrator.migrate(connection) == migrator.migrations.map(\.version))
        let recorded = try connection.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version").rows
        #expect(try recorded.map { try $0.int(0) } == migrator.migrations.map(\.version))
        #expect(try recorded.map { try $0.text(2) } == migrator.migrations.map(\.checksum))
        let tables = try connection.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name"
        ).rows.map { try $0.text(0) }
        #expect(
            tables == [
                "audit_log", "audit_log_targets", "audit_state", "health_state", "leader_lease", "push_state", "reconcile_state", "schema_migrations",
                "service_document_parts",
                "service_revisions", "services",
                "watch_events", "watch_state",
            ])
        // Again: nothing to do, nothing changed.
        #expect(try migrator.migrate(connection) == [])
        #expect(try connection.query("SELECT count(*) FROM schema_migrations").rows[0].int(0) == migrator.migrations.count)
    }

    /// Three replicas starting at once: each version is applied by exactly one of them.
    @Test func replicasStartingAtOnceApplyEachMigrationOnce() throws {
        let settings = try TestPostgres.shared().createDatabase()
        let migrator = try PostgresMigrator.bundled()
        let applied = Mutex<[[Int]]>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            do {
                let connection = try PostgresConnection(settings: settings)
                let versions = try migrator.migrate(connection)
                applied.withLock { $0.append(versions) }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(applied.withLock { $0.flatMap { $0 }.sorted() } == migrator.migrations.map(\.version))
    }

    @Test func refusesAnAppliedMigrationThatWasEdited() throws {
        let connection = try PostgresConnection(settings: try TestPostgres.shared().createDatabase())
        var migrations = try PostgresMigrator.bundled().migrations
        try PostgresMigrator(migrations: migrations).migrate(connection)
        migrations[0].sql += "\n-- edited\n"
        let error = try #require(throws: MigrationError.self) { try PostgresMigrator(migrations: migrations).migrate(connection) }
        guard case .edited(let name, _, _) = error else {
            Issue.record("expected .edited, got \(error)")
            return
        }
        #expect(name == migrations[0].name)
        #expect(error.description.contains("was changed after it was applied"))
    }

    @Test func refusesADatabaseNewerThanTheBinary() throws {
        let connection = try PostgresConnection(settings: try TestPostgres.shared().createDatabase())
        let migrator = try PostgresMigrator.bundled()
        try migrator.migrate(connection)
        let newest = try #require(migrator.migrations.last?.version)
        try connection.query(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, 'from_the_future.sql', 'x')", [.integer(newest + 1)])
        let error = try #require(throws: MigrationError.self) { try migrator.migrate(connection) }
        guard case .databaseNewerThanBinary(let databaseVersion, let binaryVersion) = error else {
            Issue.record("expected .databaseNewerThanBinary, got \(error)")
            return
        }
        #expect(databaseVersion == newest + 1 && binaryVersion == newest)
    }

    /// A failing migration leaves nothing behind: neither its first statements nor its record.
    @Test func rollsBackAFailedMigrationWhole() throws {
        let connection = try PostgresConnection(settings: try TestPostgres.shared().createDatabase())
        let migrations = try Migration.parse([
            ("0001_good.sql", "CREATE TABLE a (n bigint);"),
            ("0002_bad.sql", "CREATE TABLE b (n bigint); INSERT INTO b VALUES ('not a number');"),
        ])
        let error = try #require(throws: MigrationError.self) { try PostgresMigrator(migrations: migrations).migrate(connection) }
        guard case .failed(let name, let cause) = error else {
            Issue.record("expected .failed, got \(error)")
            return
        }
        #expect(name == "0002_bad.sql")
        #expect((cause as? PostgresError)?.sqlState == "22P02")
        #expect(try connection.query("SELECT version FROM schema_migrations").rows.map { try $0.int(0) } == [1])
        #expect(try connection.query("SELECT to_regclass('b') IS NULL").rows[0].bool(0))
    }

    /// A migration may take longer than the statement timeout meant for requests.
    @Test func aSlowMigrationIsNotCutOffByTheStatementTimeout() throws {
        var settings = try TestPostgres.shared().createDatabase()
        settings.statementTimeout = .milliseconds(100)
        let connection = try PostgresConnection(settings: settings)
        let migrations = try Migration.parse([("0001_slow.sql", "SELECT pg_sleep(0.4); CREATE TABLE slow (n bigint);")])
        #expect(try PostgresMigrator(migrations: migrations).migrate(connection) == [1])
        #expect(throws: PostgresError.self) { try connection.query("SELECT pg_sleep(0.4)") }
    }

    /// The PostgreSQL schema has the tables and columns (names, order, NOT NULL) of the SQLite
    /// schema, numbered alike; `leader_lease` is PostgreSQL's own.
    @Test func matchesTheSQLiteSchema() throws {
        let postgreSQL = try PostgresMigrator.bundled().migrations
        let sqlite = try Migration.parse(RegistryResources.migrations)
        for migration in sqlite {
            let twin = postgreSQL.first { $0.version == migration.version }
            #expect(twin?.name == migration.name, "no PostgreSQL twin of \(migration.name)")
        }

        let path = FileManager.default.temporaryDirectory.appending(path: "pg-schema-\(UUID().uuidString).sqlite").path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sqliteConnection = try SQLiteConnection(path: path)
        try Migrator(migrations: sqlite).migrate(sqliteConnection, now: "2026-01-01T00:00:00Z")
        var sqliteColumns: [String: [String]] = [:]
        let tables = try sqliteConnection.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations') AND name NOT LIKE 'sqlite_%'")
        var tableNames: [String] = []
        while try tables.step() { tableNames.append(tables.text(0)) }
        for table in tableNames {
            let columns = try sqliteConnection.prepare("SELECT name, \"notnull\", pk FROM pragma_table_info('\(table)') ORDER BY cid")
            while try columns.step() {
                let notNull = columns.int(1) == 1 || columns.int(2) > 0
                sqliteColumns[table, default: []].append("\(columns.text(0))\(notNull ? " NOT NULL" : "")")
            }
        }

        let connection = try PostgresConnection(settings: try TestPostgres.shared().createDatabase())
        try PostgresMigrator(migrations: postgreSQL).migrate(connection)
        var postgreSQLColumns: [String: [String]] = [:]
        for row in try connection.query(
            """
            SELECT table_name, column_name, is_nullable FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name NOT IN ('schema_migrations', 'leader_lease')
            ORDER BY table_name, ordinal_position
            """
        ).rows {
            postgreSQLColumns[try row.text(0), default: []].append("\(try row.text(1))\(try row.text(2) == "NO" ? " NOT NULL" : "")")
        }
        #expect(postgreSQLColumns == sqliteColumns)
    }

    /// The constraints hold as in SQLite: unique (namespace, name) (not uid), revision ≥ 1, the outcome and
    /// state vocabularies, the single watch_state row.
    @Test func enforcesTheSQLiteConstraints() throws {
        let connection = try PostgresConnection(settings: try TestPostgres.shared().createDatabase())
        try PostgresMigrator.bundled().migrate(connection)
        let insertService =
            "INSERT INTO services (namespace, name, uid, revision, created_at, updated_at, document) VALUES ($1, $2, $3, $4, 't', 't', $5)"
        try connection.query(insertService, [.text("default"), .text("a"), .text("u1"), .integer(1), .bytes(Array("{}".utf8))])
        let refused: [(String, [PostgresValue], PostgresError.Kind)] = [
            (insertService, [.text("default"), .text("a"), .text("u2"), .integer(1), .bytes([])], .uniqueViolation),
            (insertService, [.text("default"), .text("c"), .text("u3"), .integer(0), .bytes([])], .constraintViolation),
            (insertService, [.text("default"), .text("d"), .text("u4"), .integer(1), .null], .constraintViolation),
            (
                "INSERT INTO audit_log (time, actor, action, outcome, status, request_id) VALUES ('t', 'a', 'create', 'maybe', 200, 'r')", [],
                .constraintViolation
            ),
            (
                "INSERT INTO reconcile_state (namespace, name, cluster, state, updated_at) VALUES ('d', 'a', 'c', 'asleep', 't')", [],
                .constraintViolation
            ),
            ("INSERT INTO watch_state (id, resource_version, compacted) VALUES (2, 1, 1)", [], .constraintViolation),
        ]
        for (sql, parameters, kind) in refused {
            let error = try #require(throws: PostgresError.self) { try connection.query(sql, parameters) }
            #expect(error.kind == kind, "\(sql) \(parameters)")
        }
        // A uid is not checked for uniqueness since 0013 (as in SQLite): the server draws it.
        try connection.query(insertService, [.text("default"), .text("b"), .text("u1"), .integer(1), .bytes([])])
        // Names sort byte by byte (as in SQLite), whatever the database's locale.
        for name in ["B", "a", "_z"] {
            try connection.query(insertService, [.text("default"), .text(name + "x"), .text("u-" + name), .integer(1), .bytes([])])
        }
        let names = try connection.query("SELECT name FROM services ORDER BY namespace, name").rows.map { try $0.text(0) }
        #expect(names == ["Bx", "_zx", "a", "ax", "b"])
    }
}
