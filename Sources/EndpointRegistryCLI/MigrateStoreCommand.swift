import ArgumentParser
import Foundation
import PostgresStorage
import RegistryResources
import RegistryStorage

/// `migrate-store`: copies a whole registry from one store to another (SQLite to PostgreSQL, or
/// back), verified.
struct MigrateStore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-store",
        abstract: "Copy every service, its history, the audit log and all state from one database to another (SQLite or PostgreSQL).",
        discussion: """
            Reads --from in one read transaction (one consistent snapshot; an SQLite file may be \
            served meanwhile, its server's later writes are not copied) and writes --to in one \
            transaction: services, service_document_parts, service_revisions, watch_state, watch_events, audit_log, \
            audit_log_targets, audit_state, push_state, reconcile_state and health_state, with their ids, then moves \
            PostgreSQL's id \
            sequences past the largest id. Before committing it verifies every table: the row \
            count and a SHA-256 over every row equal in both databases. --to is created and \
            migrated if needed and must be empty (no services, no history, no audit lines); \
            both databases must have exactly this binary's migrations applied. A PostgreSQL \
            password comes from --database-password-file, ENDPOINT_REGISTRY_DATABASE_PASSWORD_FILE \
            or PGPASSWORD (or libpq's password file), never from the command line, and is never \
            printed. Prints the rows of each table and a final "verified" line. Exit statuses: \
            0 copied and verified, 1 failed (nothing was committed to --to), 64 wrong usage.
            """)

    @Option(help: "The database to copy: an SQLite file, or a postgres:// or postgresql:// URL. Only read.")
    var from: String

    @Option(
        help:
            "The empty database to copy into: an SQLite file (created if missing; its directory must exist), or a postgres:// or postgresql:// URL of an existing database."
    )
    var to: String

    @Option(
        help: ArgumentHelp(
            "PostgreSQL: a file holding only the password (default: ENDPOINT_REGISTRY_DATABASE_PASSWORD_FILE, else PGPASSWORD).",
            valueName: "path"))
    var databasePasswordFile: String?

    /// A side of the copy: an SQLite file or a PostgreSQL database.
    private enum Location {
        case sqlite(String)
        case postgreSQL(PostgresConnectionSettings)

        var description: String {
            switch self {
            case .sqlite(let path): path
            case .postgreSQL(let settings): settings.description
            }
        }
    }

    private func location(_ raw: String, option: String, passwordFile: String?) throws -> Location {
        let kind: PostgresConnectionSettings.DatabaseKind
        do {
            kind = try PostgresConnectionSettings.kind(of: raw)
        } catch {
            throw ValidationError("\(option): \(error.description)")
        }
        guard kind == .postgreSQL else {
            guard !raw.isEmpty else { throw ValidationError("\(option) is empty") }
            return .sqlite(raw)
        }
        do {
            // The parse error never contains the password.
            var settings = try PostgresConnectionSettings(url: raw, passwordFile: passwordFile)
            // The copy's one transaction waits on the other database between its statements.
            settings.idleInTransactionTimeout = nil
            return .postgreSQL(settings)
        } catch {
            throw ValidationError("\(option): \(error.description)")
        }
    }

    func run() throws {
        let passwordFile = databasePasswordFile ?? ProcessInfo.processInfo.environment["ENDPOINT_REGISTRY_DATABASE_PASSWORD_FILE"]
        if let passwordFile, !FileManager.default.isReadableFile(atPath: passwordFile) {
            throw ValidationError("--database-password-file: \(passwordFile) is not a readable file")
        }
        let source = try location(from, option: "--from", passwordFile: passwordFile)
        let destination = try location(to, option: "--to", passwordFile: passwordFile)
        if from == to {
            throw ValidationError("--from and --to name the same database")
        }
        if case .sqlite(let sourcePath) = source, case .sqlite(let destinationPath) = destination, Self.sameFile(sourcePath, destinationPath) {
            throw ValidationError("--from and --to name the same database file")
        }

        let sqliteMigrations: [Migration]
        let postgreSQLMigrations: [Migration]
        do {
            sqliteMigrations = try Migration.parse(RegistryResources.migrations)
            postgreSQLMigrations = try Migration.parse(RegistryResources.postgreSQLMigrations)
        } catch {
            Console.error("error: this binary's migrations are unusable: \(error)")
            throw ExitCode(1)
        }
        func migrations(_ location: Location) -> [Migration] {
            if case .sqlite = location { sqliteMigrations } else { postgreSQLMigrations }
        }

        // The source, only read.
        let sourceDatabase: any SQLDatabase
        switch source {
        case .sqlite(let path):
            var status = stat()
            guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
                Console.error("error: no database file at \(path)")
                throw ExitCode(1)
            }
            sourceDatabase = SQLiteDatabase(existing: path)
        case .postgreSQL(let settings):
            sourceDatabase = PostgresDatabase(existing: settings)
        }

        // The destination, created and migrated if needed; an SQLite file is held with the
        // server's lock so that no server serves it during the copy.
        var createdFile: String?
        let destinationDatabase: any SQLDatabase
        do {
            switch destination {
            case .sqlite(let path):
                let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                    Console.error("error: the directory of \(path) does not exist")
                    throw ExitCode(1)
                }
                if !FileManager.default.fileExists(atPath: path) { createdFile = path }
                destinationDatabase = try SQLiteDatabase.open(path: path, migrations: sqliteMigrations, exclusive: true)
            case .postgreSQL(let settings):
                destinationDatabase = try PostgresDatabase.open(settings: settings, migrations: postgreSQLMigrations)
            }
        } catch let error as StoreError {
            Self.removeCreated(createdFile)
            Console.error("error: cannot open the destination \(destination.description): \(error)")
            throw ExitCode(1)
        }

        let summary: StoreCopySummary
        do {
            summary = try StoreCopy.copy(
                from: sourceDatabase, sourceMigrations: migrations(source), to: destinationDatabase,
                destinationMigrations: migrations(destination))
        } catch {
            Self.removeCreated(createdFile)
            Console.error("error: \(error.message)")
            throw ExitCode(1)
        }
        var lines = [
            "copied \(source.description) (schema version \(summary.sourceSchemaVersion)) to \(destination.description) (schema version \(summary.destinationSchemaVersion))"
        ]
        for table in summary.tables {
            lines.append("\(table.name): \(table.rows) row\(table.rows == 1 ? "" : "s") copied (sha256 \(table.digest.prefix(16)))")
        }
        let rows = summary.tables.reduce(0) { $0 + $1.rows }
        lines.append(
            "verified: \(summary.tables.count) tables, \(rows) rows; the row count and SHA-256 of every table are equal in both databases")
        Console.out(lines.joined(separator: "\n") + "\n")
    }

    /// True when both paths name one existing file.
    private static func sameFile(_ first: String, _ second: String) -> Bool {
        var one = stat()
        var other = stat()
        return stat(first, &one) == 0 && stat(second, &other) == 0 && one.st_dev == other.st_dev && one.st_ino == other.st_ino
    }

    /// Removes an SQLite file this run created (and its -wal and -shm) after a failure, so that
    /// a failed copy leaves nothing behind.
    private static func removeCreated(_ path: String?) {
        guard let path else { return }
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) }
    }
}
