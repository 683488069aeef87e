import Crypto

/// Why the schema could not be brought up to date, in either store (SQLite's `Migrator`,
/// PostgreSQL's `PostgresMigrator`: the same rules and the same cases).
public enum MigrationError: Error, Sendable, CustomStringConvertible {
    case badFileName(String)
    case databaseNewerThanBinary(databaseVersion: Int, binaryVersion: Int)
    case edited(name: String, recorded: String, current: String)
    /// The migration's SQL failed and its transaction was rolled back: the store's error
    /// (`SQLiteError`, `PostgresError`).
    case failed(name: String, any Error)

    public var description: String {
        switch self {
        case .badFileName(let name):
            "migration file \(name) must be named NNNN_description.sql with a unique number"
        case .databaseNewerThanBinary(let databaseVersion, let binaryVersion):
            "the database has schema version \(databaseVersion), newer than this binary knows (\(binaryVersion)); run a newer endpoint-registry or restore a backup"
        case .edited(let name, let recorded, let current):
            "migration \(name) was changed after it was applied to this database (checksum \(recorded.prefix(12))… recorded, \(current.prefix(12))… now); add a new migration instead of editing an applied one"
        case .failed(let name, let error):
            "migration \(name) failed and was rolled back: \(error)"
        }
    }
}

/// A numbered SQL migration.
public struct Migration: Sendable {
    public var version: Int
    public var name: String
    public var sql: String

    /// SHA-256 of the SQL text, hex encoded.
    public var checksum: String {
        SHA256.hash(data: Array(sql.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// Parses `NNNN_description.sql` files into migrations ordered by number.
    public static func parse(_ files: [(name: String, sql: String)]) throws(MigrationError) -> [Migration] {
        var migrations: [Migration] = []
        for file in files {
            guard file.name.hasSuffix(".sql"), let underscore = file.name.firstIndex(of: "_"),
                let version = Int(file.name[..<underscore]), version > 0
            else { throw .badFileName(file.name) }
            migrations.append(Migration(version: version, name: file.name, sql: file.sql))
        }
        migrations.sort { $0.version < $1.version }
        for (previous, next) in zip(migrations, migrations.dropFirst()) where previous.version == next.version {
            throw .badFileName(next.name)
        }
        return migrations
    }
}

/// Applies migrations in order, each in its own transaction, recording version and checksum in
/// `schema_migrations`. Refuses a database that is newer than the binary or whose applied
/// migrations were edited.
struct Migrator {
    let migrations: [Migration]

    func migrate(_ connection: SQLiteConnection, now: String) throws(MigrationError) {
        do {
            try connection.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)
                """)
        } catch {
            throw .failed(name: "schema_migrations", error)
        }
        var applied: [Int: (name: String, checksum: String)] = [:]
        do {
            let rows = try connection.prepare("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
            while try rows.step() { applied[rows.int(0)] = (rows.text(1), rows.text(2)) }
        } catch {
            throw .failed(name: "schema_migrations", error)
        }
        let newestKnown = migrations.last?.version ?? 0
        if let newestApplied = applied.keys.max(), newestApplied > newestKnown {
            throw .databaseNewerThanBinary(databaseVersion: newestApplied, binaryVersion: newestKnown)
        }
        for migration in migrations {
            if let recorded = applied[migration.version] {
                guard recorded.checksum == migration.checksum else {
                    throw .edited(name: migration.name, recorded: recorded.checksum, current: migration.checksum)
                }
                continue
            }
            do {
                try connection.execute("BEGIN IMMEDIATE")
                try connection.execute(migration.sql)
                try connection.prepare("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)")
                    .bind(.integer(migration.version), .text(migration.name), .text(migration.checksum), .text(now)).run()
                try connection.execute("COMMIT")
            } catch {
                try? connection.execute("ROLLBACK")
                throw .failed(name: migration.name, error)
            }
        }
    }
}
