public import RegistryStorage
import RegistryResources

/// Applies PostgreSQL migrations with the same rules (and `MigrationError`s) as the SQLite store's migrator: in order of
/// their number, each in its own transaction together with its row in `schema_migrations`
/// (version, name, SHA-256 checksum of the SQL, time applied); refuses a database whose applied
/// migrations were edited or that holds a version newer than the binary knows.
///
/// Replicas starting at once against one database take turns: every transaction first takes
/// the transaction-level advisory lock `advisoryLockKey` (`pg_advisory_xact_lock`, released at
/// COMMIT or ROLLBACK), then reads what is applied, so no migration is applied twice. A
/// migration's SQL runs inside that transaction and must not contain BEGIN or COMMIT; the
/// session's `statement_timeout` is lifted for it, since a migration may rewrite a large table.
public struct PostgresMigrator: Sendable {
    /// The advisory lock the migrator holds while it reads or changes the schema (the ASCII of
    /// `ER-migr`, chosen to stay clear of other applications' keys).
    public static let advisoryLockKey = 0x4552_2D6D_6967_72

    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations
    }

    /// The migrations compiled into the binary (`migrations/postgresql/*.sql`).
    public static func bundled() throws(MigrationError) -> PostgresMigrator {
        PostgresMigrator(migrations: try Migration.parse(RegistryResources.postgreSQLMigrations))
    }

    /// Brings the database up to date; returns the versions this call applied (empty when
    /// another replica or an earlier start had applied them).
    @discardableResult
    public func migrate(_ connection: PostgresConnection) throws(MigrationError) -> [Int] {
        do {
            try connection.transaction {
                try lock(connection)
                try connection.execute(
                    """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,
                        applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                    """)
            }
        } catch {
            throw .failed(name: "schema_migrations", Self.postgresError(error))
        }
        var appliedNow: [Int] = []
        while true {
            var failing = "schema_migrations"
            do {
                let next: Migration? = try connection.transaction {
                    try lock(connection)
                    var applied: [Int: String] = [:]
                    for row in try connection.query("SELECT version, checksum FROM schema_migrations ORDER BY version").rows {
                        applied[try row.int(0)] = try row.text(1)
                    }
                    try check(applied)
                    guard let next = migrations.first(where: { applied[$0.version] == nil }) else { return nil }
                    failing = next.name
                    // A migration may rewrite a large table: the session's statement_timeout (meant
                    // for requests) does not apply to it.
                    try connection.execute("SET LOCAL statement_timeout = 0")
                    try connection.execute(next.sql)
                    try connection.query(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        [.integer(next.version), .text(next.name), .text(next.checksum)])
                    return next
                }
                guard let next else { return appliedNow }
                appliedNow.append(next.version)
            } catch let error as MigrationError {
                throw error
            } catch {
                throw .failed(name: failing, Self.postgresError(error))
            }
        }
    }

    private func lock(_ connection: PostgresConnection) throws(PostgresError) {
        try connection.query("SELECT pg_advisory_xact_lock($1)", [.integer(Self.advisoryLockKey)])
    }

    private func check(_ applied: [Int: String]) throws(MigrationError) {
        let newestKnown = migrations.last?.version ?? 0
        if let newestApplied = applied.keys.max(), newestApplied > newestKnown {
            throw .databaseNewerThanBinary(databaseVersion: newestApplied, binaryVersion: newestKnown)
        }
        for migration in migrations {
            if let recorded = applied[migration.version], recorded != migration.checksum {
                throw .edited(name: migration.name, recorded: recorded, current: migration.checksum)
            }
        }
    }

    private static func postgresError(_ error: any Error) -> PostgresError {
        error as? PostgresError ?? PostgresError(kind: .other, message: "\(error)")
    }
}
