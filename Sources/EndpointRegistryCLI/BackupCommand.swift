import ArgumentParser
import Foundation
import PostgresStorage
import RegistryStorage

/// `backup`: a consistent copy of the SQLite database, made while the server runs.
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the SQLite database to a new file, consistently, while the server may be running.",
        discussion: """
            Uses SQLite's online backup API on one snapshot of the database: the server's writes \
            go on during the copy and are not in it. The copy is written under a temporary name \
            in the output's directory, checked with PRAGMA integrity_check, fsynced and then \
            renamed to --output; an existing file is not replaced without --force. Prints the \
            counts of services, revisions and audit lines in the copy. A PostgreSQL database is \
            backed up with pg_dump instead (see README.md, "Backup and restore"). Exit statuses: \
            0 copied and verified, 1 failed (nothing is left at --output), 64 wrong usage.
            """)

    @Option(help: "The SQLite database file (default: ENDPOINT_REGISTRY_DATABASE, else ./data/registry.sqlite, as serve).")
    var database: String?

    @Option(help: "The backup file to write; its directory must exist.")
    var output: String

    @Flag(help: "Replace an existing --output file (and remove a stale -wal, -shm or -journal beside it).")
    var force = false

    func run() throws {
        let path = database ?? ProcessInfo.processInfo.environment["ENDPOINT_REGISTRY_DATABASE"] ?? "./data/registry.sqlite"
        // The URL is not echoed: it may hold a password.
        let kind: PostgresConnectionSettings.DatabaseKind
        do {
            kind = try PostgresConnectionSettings.kind(of: path)
        } catch {
            throw ValidationError("--database: \(error.description)")
        }
        if kind == .postgreSQL {
            throw ValidationError(
                "backup copies an SQLite database; back a PostgreSQL database up with pg_dump (pg_dump -Fc -f registry.dump \"$URL\") and restore it with pg_restore (see README.md, \"Backup and restore\")"
            )
        }
        do {
            let summary = try SQLiteBackup.copy(database: path, to: output, overwrite: force)
            Console.out(
                """
                backed up \(path) to \(summary.output): \(summary.pages) pages (\(summary.bytes) bytes), schema version \(summary.schemaVersion), integrity_check ok
                services: \(summary.services)
                revisions: \(summary.revisions)
                audit lines: \(summary.auditLines)

                """)
        } catch {
            Console.error("error: \(error.message)")
            throw ExitCode(1)
        }
    }
}
