import Crypto
import Foundation

/// Why `StoreCopy.copy` copied nothing. The destination's transaction was rolled back: the
/// destination is as it was (its schema migrated, no rows).
public struct StoreCopyError: Error, Sendable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        /// The source is not an Endpoint Registry database (no `schema_migrations` or `services`).
        case notARegistryDatabase
        /// A database's applied migrations are not this binary's for its store: older, newer,
        /// or one of them edited.
        case schemaVersion
        /// The databases' tables or columns are not the ones the copy knows.
        case schemaMismatch
        /// The destination holds rows (only a freshly migrated database is copied into).
        case destinationNotEmpty
        /// A database failed: connecting, reading or writing.
        case database
        /// After the copy, a table's row count or digest in the destination differs from the
        /// source's.
        case verification
    }

    public var reason: Reason
    public var message: String

    public init(reason: Reason, message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { message }
}

/// What `StoreCopy.copy` copied of one table.
public struct CopiedTable: Sendable, Equatable {
    public var name: String
    /// Rows copied; the destination holds as many.
    public var rows: Int
    /// SHA-256 (hex) of every row of the table in key order (each value with its type), the same
    /// in the source's snapshot and in the destination.
    public var digest: String
}

/// What `StoreCopy.copy` did.
public struct StoreCopySummary: Sendable {
    /// The tables, in the order they were copied.
    public var tables: [CopiedTable]
    /// The newest migration applied to the source and to the destination (each equal to this
    /// binary's newest for its store; PostgreSQL's numbering has versions of its own, such as
    /// its `leader_lease`).
    public var sourceSchemaVersion: Int
    public var destinationSchemaVersion: Int
}

/// Copies every row of the schema both stores share from one database to another, SQLite or
/// PostgreSQL either way (`endpoint-registry migrate-store`), preserving every value, keys and
/// generated ids included, so that the destination serves the same services, ETags, history,
/// audit log, push and reconcile state and watch log.
///
/// - **The source is only read**, in one read transaction (SQLite: a WAL snapshot, which blocks
///   neither a server writing the file nor its readers; PostgreSQL: `REPEATABLE READ READ
///   ONLY`): what is copied is one consistent state; writes committed meanwhile are not in it.
/// - **The destination is written in one transaction** that first takes the store's write lock
///   (`SQLConnection.beginWrite`) and is committed only after the verification, so it ends up
///   with all of it or, on any failure, none of it. It must be empty: a freshly migrated schema
///   with no rows but those its migrations insert (the first rows of `watch_state` and
///   `audit_state`).
/// - **Schemas**: each database's applied migrations (`schema_migrations`: versions and
///   checksums) must be exactly this binary's for its store, and the tables present in both
///   (but `schema_migrations`) exactly `tableNames`, with the same columns. Tables of one store
///   alone (PostgreSQL's `leader_lease`) are not copied.
/// - **Generated keys**: after each table, `SQLConnection.advanceGeneratedKeys` moves the
///   destination's sequences past the largest id copied.
/// - **Verification**, before the commit: per table, the row count and a SHA-256 over every
///   row (read back from the destination in the same key order) equal the source's. For
///   `services` this covers the (namespace, name, uid, revision) set and the documents, byte
///   for byte.
///
/// Rows are read in pages of `pageRows` in key order and inserted in multi-row statements of at
/// most `batchRows` rows or about `batchBytes` bytes, so memory stays bounded by a page.
public enum StoreCopy {
    /// A table of the shared schema: its name, the columns that order its rows (its primary
    /// key), and the rows its migrations insert (a condition), which an empty database holds.
    struct Table: Sendable {
        let name: String
        let key: [String]
        let seeded: String?
    }

    /// The tables both stores share, in dependency order: the services first, then the tables
    /// whose rows name a service or a revision (the schema declares no foreign keys; the order
    /// is the one a reader of the data expects). Keep in step with `migrations/`: a table
    /// added there and not here makes every copy refuse (`schemaMismatch`).
    static let tables: [Table] = [
        Table(name: "services", key: ["id"], seeded: nil),
        Table(name: "service_document_parts", key: ["namespace", "name", "revision"], seeded: nil),
        Table(name: "service_revisions", key: ["id"], seeded: nil),
        Table(name: "watch_state", key: ["id"], seeded: "id = 1 AND resource_version = 1 AND compacted = 1"),
        Table(name: "watch_events", key: ["resource_version"], seeded: nil),
        Table(name: "audit_log", key: ["id"], seeded: nil),
        Table(name: "audit_log_targets", key: ["namespace", "name", "id"], seeded: nil),
        Table(name: "audit_state", key: ["id"], seeded: "id = 1 AND targets_through = 0"),
        Table(name: "push_state", key: ["namespace", "name", "cluster"], seeded: nil),
        Table(name: "reconcile_state", key: ["namespace", "name", "cluster"], seeded: nil),
        Table(name: "health_state", key: ["namespace", "name"], seeded: nil),
    ]

    /// The names of the tables copied, in the order they are copied.
    public static var tableNames: [String] { tables.map(\.name) }

    static let pageRows = 256
    static let batchRows = 128
    static let batchBytes = 4 << 20

    /// An identifier quoted for SQL (the same in SQLite and PostgreSQL).
    public static func quoted(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Copies `source` into `destination` (see the type's documentation).
    ///
    /// - Parameters:
    ///   - sourceMigrations, destinationMigrations: this binary's migrations for each
    ///     database's store (`migrations/` for SQLite, `migrations/postgresql/` for PostgreSQL).
    ///     The destination's schema is expected to be migrated already (`SQLiteDatabase.open`,
    ///     `PostgresDatabase.open`); the source's is never changed.
    /// - Throws: `StoreCopyError`; the destination then holds nothing of the source.
    public static func copy(
        from source: any SQLDatabase, sourceMigrations: [Migration], to destination: any SQLDatabase, destinationMigrations: [Migration]
    ) throws(StoreCopyError) -> StoreCopySummary {
        let reader: any SQLConnection
        let writer: any SQLConnection
        do {
            reader = try source.connect(readOnly: true)
        } catch {
            throw StoreCopyError(reason: .database, message: "cannot open \(source): \(error)")
        }
        do {
            writer = try destination.connect(readOnly: false)
        } catch {
            throw StoreCopyError(reason: .database, message: "cannot open \(destination): \(error)")
        }
        do {
            try reader.beginRead()
        } catch {
            throw StoreCopyError(reason: .database, message: "cannot start a read transaction on \(source): \(error)")
        }
        defer {
            reader.resetStatements()
            try? reader.execute("COMMIT")  // a read transaction: ending it cannot lose anything
        }
        let sourceTables = try databaseStep(source, "cannot list the tables") { try Set(reader.tableNames()) }
        guard sourceTables.isSuperset(of: ["schema_migrations", "services"]) else {
            throw StoreCopyError(
                reason: .notARegistryDatabase,
                message: "\(source) is not an Endpoint Registry database (it has no services or schema_migrations table)")
        }
        let sourceVersion = try checkSchema(reader, of: source, role: "source", migrations: sourceMigrations)

        do {
            try writer.beginWrite()
        } catch {
            throw StoreCopyError(reason: .database, message: "cannot start a write transaction on \(destination): \(error)")
        }
        var committed = false
        defer {
            if !committed {
                writer.resetStatements()
                try? writer.execute("ROLLBACK")  // after a failure that is being reported; nothing was committed
            }
        }
        let destinationTables = try databaseStep(destination, "cannot list the tables") { try Set(writer.tableNames()) }
        guard destinationTables.contains("schema_migrations") else {
            throw StoreCopyError(reason: .schemaVersion, message: "\(destination) has no schema_migrations table: its schema was not migrated")
        }
        let destinationVersion = try checkSchema(writer, of: destination, role: "destination", migrations: destinationMigrations)
        try checkTables(source: sourceTables, sourceName: "\(source)", destination: destinationTables, destinationName: "\(destination)")
        try checkEmpty(writer, destination)

        var copied: [CopiedTable] = []
        for table in tables {
            let columns = try matchingColumns(table, reader: reader, source: source, writer: writer, destination: destination)
            let (rows, digest) = try copyRows(table, columns: columns, from: reader, source, to: writer, destination)
            let (destinationRows, destinationDigest) = try databaseStep(destination, "cannot read \(table.name) back") {
                try read(table, columns: columns, from: writer) { _ in }
            }
            guard destinationRows == rows, destinationDigest == digest else {
                throw StoreCopyError(
                    reason: .verification,
                    message:
                        "\(table.name) differs after the copy: \(rows) rows (SHA-256 \(digest.prefix(16))…) in \(source), \(destinationRows) (SHA-256 \(destinationDigest.prefix(16))…) in \(destination); nothing was committed"
                )
            }
            copied.append(CopiedTable(name: table.name, rows: rows, digest: digest))
        }
        try databaseStep(destination, "cannot commit") {
            writer.resetStatements()
            try writer.execute("COMMIT")
        }
        committed = true
        return StoreCopySummary(tables: copied, sourceSchemaVersion: sourceVersion, destinationSchemaVersion: destinationVersion)
    }

    /// Runs `body`, reporting a database failure as `.database` with `what` and the database.
    private static func databaseStep<T>(_ database: any SQLDatabase, _ what: String, _ body: () throws -> T) throws(StoreCopyError) -> T {
        do {
            return try body()
        } catch let error as StoreCopyError {
            throw error
        } catch {
            throw StoreCopyError(reason: .database, message: "\(what) (\(database)): \(error)")
        }
    }

    /// Checks that the applied migrations are exactly `migrations` (versions and checksums);
    /// returns the newest version.
    private static func checkSchema(
        _ connection: any SQLConnection, of database: any SQLDatabase, role: String, migrations: [Migration]
    ) throws(StoreCopyError) -> Int {
        let applied = try databaseStep(database, "cannot read schema_migrations") {
            let statement = try connection.prepare("SELECT version, checksum FROM schema_migrations ORDER BY version")
            var applied: [(version: Int, checksum: String)] = []
            while try statement.step() { applied.append((statement.int(0), statement.text(1))) }
            connection.resetStatements()
            return applied
        }
        let newestApplied = applied.last?.version ?? 0
        let newestKnown = migrations.last?.version ?? 0
        if newestApplied > newestKnown {
            throw StoreCopyError(
                reason: .schemaVersion,
                message:
                    "the \(role) \(database) has schema version \(newestApplied), newer than this binary knows (\(newestKnown)); run the migrate-store of the endpoint-registry version that serves it"
            )
        }
        let recorded = Dictionary(applied.map { ($0.version, $0.checksum) }, uniquingKeysWith: { first, _ in first })
        if let missing = migrations.first(where: { recorded[$0.version] == nil }) {
            throw StoreCopyError(
                reason: .schemaVersion,
                message:
                    "the \(role) \(database) has schema version \(newestApplied), older than this binary's (\(newestKnown); \(missing.name) is not applied): start this version's endpoint-registry serve on it once (it migrates at start), or run the migrate-store of the version that serves it"
            )
        }
        let known = Set(migrations.map(\.version))
        if let unknown = applied.first(where: { !known.contains($0.version) }) {
            throw StoreCopyError(
                reason: .schemaVersion, message: "the \(role) \(database) has migration \(unknown.version) applied, which this binary does not know")
        }
        if let edited = migrations.first(where: { recorded[$0.version] != $0.checksum }) {
            throw StoreCopyError(
                reason: .schemaVersion,
                message:
                    "the \(role) \(database) recorded migration \(edited.name) with another checksum than this binary's: it was migrated by a build with other migrations"
            )
        }
        return newestApplied
    }

    /// The tables present in both databases (but `schema_migrations`) must be exactly `tables`.
    private static func checkTables(
        source: Set<String>, sourceName: String, destination: Set<String>, destinationName: String
    ) throws(StoreCopyError) {
        let known = Set(tableNames)
        let shared = source.intersection(destination).subtracting(["schema_migrations"])
        if let unknown = shared.subtracting(known).sorted().first {
            throw StoreCopyError(
                reason: .schemaMismatch,
                message: "table \(unknown) exists in both databases but this binary's migrate-store does not know it; nothing was copied")
        }
        for name in tableNames {
            for (tables, database) in [(source, sourceName), (destination, destinationName)] where !tables.contains(name) {
                throw StoreCopyError(reason: .schemaMismatch, message: "\(database) has no table \(name)")
            }
        }
    }

    /// Refuses a destination holding any row but those its migrations insert.
    private static func checkEmpty(_ writer: any SQLConnection, _ destination: any SQLDatabase) throws(StoreCopyError) {
        var occupied: [String] = []
        for table in tables {
            let count = try databaseStep(destination, "cannot count the rows of \(table.name)") {
                let statement = try writer.prepare(
                    "SELECT count(*) FROM \(quoted(table.name))" + (table.seeded.map { " WHERE NOT (\($0))" } ?? ""))
                _ = try statement.step()
                defer { statement.reset() }
                return statement.int(0)
            }
            if count > 0 { occupied.append("\(table.name): \(count) row\(count == 1 ? "" : "s")") }
        }
        guard occupied.isEmpty else {
            throw StoreCopyError(
                reason: .destinationNotEmpty,
                message:
                    "the destination \(destination) is not empty (\(occupied.joined(separator: ", "))); migrate-store copies only into a new database (PostgreSQL: CREATE DATABASE; SQLite: a new file) and never merges"
            )
        }
    }

    /// The source's columns of `table`, in its order, after checking that the destination's
    /// table has the same ones.
    private static func matchingColumns(
        _ table: Table, reader: any SQLConnection, source: any SQLDatabase, writer: any SQLConnection, destination: any SQLDatabase
    ) throws(StoreCopyError) -> [String] {
        func columns(_ connection: any SQLConnection, _ database: any SQLDatabase) throws(StoreCopyError) -> [String] {
            try databaseStep(database, "cannot read the columns of \(table.name)") {
                let statement = try connection.prepare("SELECT * FROM \(quoted(table.name)) LIMIT 0")
                _ = try statement.step()
                defer { statement.reset() }
                return statement.columnNames
            }
        }
        let sourceColumns = try columns(reader, source)
        let destinationColumns = try columns(writer, destination)
        guard Set(sourceColumns) == Set(destinationColumns), sourceColumns.count == destinationColumns.count else {
            throw StoreCopyError(
                reason: .schemaMismatch,
                message:
                    "table \(table.name) has the columns \(sourceColumns.joined(separator: ", ")) in \(source) but \(destinationColumns.joined(separator: ", ")) in \(destination)"
            )
        }
        for key in table.key where !sourceColumns.contains(key) {
            throw StoreCopyError(reason: .schemaMismatch, message: "table \(table.name) has no column \(key) in \(source)")
        }
        return sourceColumns
    }

    /// Reads every row of `table` in key order, a page at a time, handing each page to `body`;
    /// returns the rows read and their digest.
    static func read(
        _ table: Table, columns: [String], from connection: any SQLConnection, _ body: ([[SQLValue]]) throws -> Void
    ) throws -> (rows: Int, digest: String) {
        let list = columns.map(quoted).joined(separator: ", ")
        let order = table.key.map(quoted).joined(separator: ", ")
        let keyPositions = table.key.compactMap { columns.firstIndex(of: $0) }
        let first = "SELECT \(list) FROM \(quoted(table.name)) ORDER BY \(order) LIMIT ?"
        let next =
            "SELECT \(list) FROM \(quoted(table.name)) WHERE (\(order)) > (\(table.key.map { _ in "?" }.joined(separator: ", "))) ORDER BY \(order) LIMIT ?"
        var hasher = SHA256()
        var count = 0
        var last: [SQLValue]?
        while true {
            let statement = try connection.prepare(last == nil ? first : next)
            var index: Int32 = 1
            if let last {
                for position in keyPositions {
                    try statement.bind(at: index, last[position])
                    index += 1
                }
            }
            try statement.bind(at: index, .integer(pageRows))
            var page: [[SQLValue]] = []
            while try statement.step() {
                page.append((0..<Int32(columns.count)).map { statement.value($0) })
            }
            statement.reset()
            for row in page { hash(row, into: &hasher) }
            count += page.count
            if !page.isEmpty { try body(page) }
            guard page.count == pageRows else { break }
            last = page.last
        }
        return (count, hasher.finalize().map { String(format: "%02x", $0) }.joined())
    }

    /// Feeds one row to the digest: each value as a type tag, then its length and bytes (an
    /// integer as 8 bytes, big-endian), so that no two different rows feed the same bytes.
    private static func hash(_ row: [SQLValue], into hasher: inout SHA256) {
        func length(_ count: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(count).bigEndian) { Array($0) } }
        for value in row {
            switch value {
            case .null: hasher.update(data: [0])
            case .integer(let number): hasher.update(data: [1] + withUnsafeBytes(of: Int64(number).bigEndian) { Array($0) })
            case .text(let text):
                hasher.update(data: [2] + length(text.utf8.count))
                hasher.update(data: Array(text.utf8))
            case .blob(let bytes):
                hasher.update(data: [3] + length(bytes.count))
                hasher.update(data: bytes)
            }
        }
    }

    /// Copies the rows of `table` (after deleting the rows its migrations inserted in the
    /// destination) and advances the destination's generated keys; returns the source's count
    /// and digest.
    private static func copyRows(
        _ table: Table, columns: [String], from reader: any SQLConnection, _ source: any SQLDatabase, to writer: any SQLConnection,
        _ destination: any SQLDatabase
    ) throws(StoreCopyError) -> (rows: Int, digest: String) {
        if table.seeded != nil {
            try databaseStep(destination, "cannot clear \(table.name)") { try writer.prepare("DELETE FROM \(quoted(table.name))").run() }
        }
        let list = columns.map(quoted).joined(separator: ", ")
        let tuple = "(" + columns.map { _ in "?" }.joined(separator: ", ") + ")"
        var batch: [[SQLValue]] = []
        var batchSize = 0
        func flush() throws(StoreCopyError) {
            guard !batch.isEmpty else { return }
            try databaseStep(destination, "cannot insert into \(table.name)") {
                let insert = try writer.prepare(
                    "INSERT INTO \(quoted(table.name)) (\(list)) VALUES " + Array(repeating: tuple, count: batch.count).joined(separator: ", "))
                var index: Int32 = 1
                for row in batch {
                    for value in row {
                        try insert.bind(at: index, value)
                        index += 1
                    }
                }
                try insert.run()
                insert.reset()
            }
            batch.removeAll(keepingCapacity: true)
            batchSize = 0
        }
        do {
            let result = try read(table, columns: columns, from: reader) { page in
                for row in page {
                    batch.append(row)
                    batchSize += row.reduce(0) { size, value in
                        switch value {
                        case .null, .integer: size + 8
                        case .text(let text): size + text.utf8.count
                        case .blob(let bytes): size + bytes.count
                        }
                    }
                    if batch.count >= batchRows || batchSize >= batchBytes { try flush() }
                }
            }
            try flush()
            try databaseStep(destination, "cannot advance the generated keys of \(table.name)") { try writer.advanceGeneratedKeys(of: table.name) }
            return result
        } catch let error as StoreCopyError {
            throw error
        } catch {
            throw StoreCopyError(reason: .database, message: "cannot read \(table.name) (\(source)): \(error)")
        }
    }
}
