import Foundation

/// What `SQLiteBackup.copy` wrote: the file, its size and what it holds (counted in the copy,
/// and equal to the same counts in the snapshot of the database it was copied from).
public struct SQLiteBackupSummary: Sendable, Equatable {
    /// The backup file (the `output` given).
    public var output: String
    /// Database pages copied.
    public var pages: Int
    /// Size of the backup file in bytes.
    public var bytes: Int
    /// Rows of `services`: the registered services.
    public var services: Int
    /// Rows of `service_revisions`: every kept revision of every service (the history).
    public var revisions: Int
    /// Rows of `audit_log`.
    public var auditLines: Int
    /// The newest schema migration recorded in the copy (`schema_migrations`).
    public var schemaVersion: Int
}

/// Why a backup was not made. Nothing is left at the output path when one fails (the partial
/// copy under a temporary name is removed).
public struct SQLiteBackupError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        /// There is no database file at the given path (or it is not a regular file).
        case databaseMissing
        /// The file is not an Endpoint Registry database (no `services` or `schema_migrations`).
        case notARegistryDatabase
        /// The output (or a `-wal`/`-journal` beside it) exists and overwriting was not asked for.
        case outputExists
        /// The output is the database itself, a directory, or served by a running server.
        case outputRefused
        /// The output's directory is missing or not a directory.
        case outputDirectory
        /// SQLite failed (reading the database, writing the copy).
        case sqlite
        /// The copy failed `PRAGMA integrity_check` or its counts differ from the database's.
        case verification
        /// The operating system failed a file operation (fsync, rename, ...).
        case io
    }

    public var reason: Reason
    public var message: String

    public init(reason: Reason, message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { message }
}

/// A consistent copy of a live SQLite database through SQLite's online backup API
/// (`sqlite3_backup_init`/`_step`/`_finish`, https://sqlite.org/backup.html), safe while a
/// server writes to the same file.
///
/// The database is only read, through SQLite, on a read-only connection: nothing here takes the
/// server's exclusive `flock` (`ExclusiveFileLock`), so a backup runs beside `serve`.
///
/// **Consistency without blocking writers.** The copy reads one snapshot: a read transaction
/// is opened on the source first and kept for every `sqlite3_backup_step`. In WAL mode (the
/// server's) a reader blocks neither readers nor writers, so the server's writes go on during
/// the copy; they are simply not in it. (Steps without that read transaction would each see the
/// newest state, and SQLite restarts a backup from the first page whenever another connection
/// has written between two steps: under a steady stream of writes it would never finish.) The
/// only cost to the server is that its WAL cannot be checkpointed past the snapshot until the
/// copy ends, so the WAL grows by what is written meanwhile; should it reach the server's
/// ceiling (64 MiB, `WALCheckpointer.ceilingBytes`) writes wait for the backup, within the busy
/// timeout. The copy proceeds `pagesPerStep` pages at a time.
///
/// **Publishing.** The copy is written to a temporary file in the output's directory, switched
/// to a self-contained rollback-journal file (`PRAGMA journal_mode=DELETE`, so that it needs no
/// `-wal` beside it), checked with `PRAGMA integrity_check`, its counts compared with the
/// snapshot's, fsynced, and only then moved to `output` (a hard link that fails if `output`
/// appeared meanwhile, or `rename(2)` when overwriting), and the directory fsynced.
public enum SQLiteBackup {
    /// Copies the database at `database` to `output`.
    ///
    /// - Parameters:
    ///   - overwrite: replace an existing `output` (and remove a stale `-wal`, `-shm` or
    ///     `-journal` beside it, which SQLite would otherwise apply to the new file). The
    ///     database itself, a directory, and a file a server holds open (its `flock`) are never
    ///     replaced.
    ///   - pagesPerStep: pages copied by each `sqlite3_backup_step` (at least 1).
    /// - Throws: `SQLiteBackupError`, whose `reason` says what failed and whose message names
    ///   the file.
    public static func copy(
        database: String, to output: String, overwrite: Bool = false, pagesPerStep: Int = 1024
    ) throws(SQLiteBackupError) -> SQLiteBackupSummary {
        var sourceStatus = stat()
        guard stat(database, &sourceStatus) == 0, (sourceStatus.st_mode & S_IFMT) == S_IFREG else {
            throw SQLiteBackupError(reason: .databaseMissing, message: "no database file at \(database)")
        }
        let outputURL = URL(fileURLWithPath: output)
        let directory = outputURL.deletingLastPathComponent().path
        var directoryStatus = stat()
        guard stat(directory, &directoryStatus) == 0, (directoryStatus.st_mode & S_IFMT) == S_IFDIR else {
            throw SQLiteBackupError(reason: .outputDirectory, message: "the directory of \(output) does not exist")
        }
        try checkOutput(output, database: sourceStatus, overwrite: overwrite)

        let source = try SQLiteConnection(backupPath: database, readOnly: true)
        // One snapshot for the whole copy (see the type's documentation).
        try source.run("BEGIN")
        // (On a failure, closing the connection ends the transaction.)
        let expected = try Counts(source, file: database)

        let temporary = outputURL.deletingLastPathComponent()
            .appending(path: ".\(outputURL.lastPathComponent).partial-\(getpid())-\(UUID().uuidString.prefix(8))").path
        var published = false
        defer {
            if !published { for suffix in ["", "-journal", "-wal", "-shm"] { unlink(temporary + suffix) } }
        }
        let pages: Int
        let counts: Counts
        do {
            let copy = try SQLiteConnection(backupPath: temporary, readOnly: false)
            pages = try copy.backupStep("the backup of \(database) failed") { () throws(SQLiteError) -> Int in
                try copy.backup(from: source, pagesPerStep: pagesPerStep)
            }
            try source.run("COMMIT")
            // The copy's header says WAL like the database's; make it one self-contained file.
            try copy.run("PRAGMA journal_mode=DELETE")
            let problems = try copy.lines("PRAGMA integrity_check")
            guard problems == ["ok"] else {
                throw SQLiteBackupError(
                    reason: .verification,
                    message: "the copy of \(database) fails PRAGMA integrity_check: \(problems.prefix(3).joined(separator: "; "))")
            }
            counts = try Counts(copy, file: temporary)
            guard counts == expected else {
                throw SQLiteBackupError(
                    reason: .verification,
                    message: "the copy of \(database) holds \(counts) where the database held \(expected)")
            }
            try copy.backupStep("cannot close") { () throws(SQLiteError) in try copy.close() }
        }
        try fsyncPath(temporary, what: "the copy")
        try publish(temporary, as: output, overwrite: overwrite)
        published = true
        try fsyncPath(directory, what: "the directory of \(output)")
        var written = stat()
        let bytes = stat(output, &written) == 0 ? Int(written.st_size) : 0
        return SQLiteBackupSummary(
            output: output, pages: pages, bytes: bytes, services: counts.services, revisions: counts.revisions,
            auditLines: counts.auditLines, schemaVersion: counts.schemaVersion)
    }

    /// Refuses an output that is the database itself, a directory, a file a server serves, or
    /// (unless `overwrite`) an existing file or stale journal.
    private static func checkOutput(_ output: String, database: stat, overwrite: Bool) throws(SQLiteBackupError) {
        var status = stat()
        if stat(output, &status) == 0 {
            if status.st_dev == database.st_dev && status.st_ino == database.st_ino {
                throw SQLiteBackupError(reason: .outputRefused, message: "\(output) is the database itself")
            }
            if (status.st_mode & S_IFMT) == S_IFDIR {
                throw SQLiteBackupError(reason: .outputRefused, message: "\(output) is a directory; name the backup file")
            }
            if !overwrite {
                throw SQLiteBackupError(reason: .outputExists, message: "\(output) exists; give --force to replace it")
            }
            // A server's exclusive lock (ExclusiveFileLock) on it: another registry's database.
            let descriptor = open(output, O_RDONLY | O_CLOEXEC)
            if descriptor >= 0 {
                let held = flock(descriptor, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK
                close(descriptor)
                if held {
                    throw SQLiteBackupError(reason: .outputRefused, message: "\(output) is served by a running server; it is not replaced")
                }
            }
        }
        for suffix in ["-wal", "-journal"] where access(output + suffix, F_OK) == 0 {
            guard overwrite else {
                throw SQLiteBackupError(
                    reason: .outputExists, message: "\(output + suffix) exists (SQLite would apply it to the backup); give --force to remove it")
            }
        }
    }

    /// Moves the finished copy to `output`: without `overwrite` a hard link, which fails if
    /// `output` exists (created since the check), then the temporary name is removed.
    private static func publish(_ temporary: String, as output: String, overwrite: Bool) throws(SQLiteBackupError) {
        if overwrite {
            for suffix in ["-wal", "-journal", "-shm"] where unlink(output + suffix) != 0 && errno != ENOENT {
                throw SQLiteBackupError(reason: .io, message: "cannot remove \(output + suffix): \(String(cString: strerror(errno)))")
            }
            guard rename(temporary, output) == 0 else {
                throw SQLiteBackupError(reason: .io, message: "cannot rename the copy to \(output): \(String(cString: strerror(errno)))")
            }
            return
        }
        if link(temporary, output) == 0 {
            unlink(temporary)
            return
        }
        let linkError = errno
        if linkError == EEXIST {
            throw SQLiteBackupError(reason: .outputExists, message: "\(output) exists; give --force to replace it")
        }
        // File systems without hard links: rename, after checking again that nothing is there.
        guard linkError == EPERM || linkError == ENOTSUP || linkError == EOPNOTSUPP, access(output, F_OK) != 0 else {
            throw SQLiteBackupError(reason: .io, message: "cannot write \(output): \(String(cString: strerror(linkError)))")
        }
        guard rename(temporary, output) == 0 else {
            throw SQLiteBackupError(reason: .io, message: "cannot rename the copy to \(output): \(String(cString: strerror(errno)))")
        }
    }

    private static func fsyncPath(_ path: String, what: String) throws(SQLiteBackupError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw SQLiteBackupError(reason: .io, message: "cannot open \(what) to fsync it: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else {
            throw SQLiteBackupError(reason: .io, message: "cannot fsync \(what): \(String(cString: strerror(errno)))")
        }
    }
}

/// The rows a backup reports, read in one transaction.
private struct Counts: Equatable, CustomStringConvertible {
    var services: Int
    var revisions: Int
    var auditLines: Int
    var schemaVersion: Int

    init(_ database: SQLiteConnection, file: String) throws(SQLiteBackupError) {
        let tables = Set(try database.lines("SELECT name FROM sqlite_schema WHERE type = 'table'"))
        guard tables.isSuperset(of: ["services", "service_revisions", "audit_log", "schema_migrations"]) else {
            throw SQLiteBackupError(
                reason: .notARegistryDatabase, message: "\(file) is not an Endpoint Registry database (it has no services or schema_migrations table)"
            )
        }
        services = try database.integer("SELECT count(*) FROM services")
        revisions = try database.integer("SELECT count(*) FROM service_revisions")
        auditLines = try database.integer("SELECT count(*) FROM audit_log")
        schemaVersion = try database.integer("SELECT coalesce(max(version), 0) FROM schema_migrations")
    }

    var description: String {
        "\(services) services, \(revisions) revisions, \(auditLines) audit lines (schema version \(schemaVersion))"
    }
}

/// The backup's few calls on `SQLiteConnection`, failing with `SQLiteBackupError` (reason
/// `.sqlite`, naming the file).
extension SQLiteConnection {
    fileprivate convenience init(backupPath path: String, readOnly: Bool) throws(SQLiteBackupError) {
        do {
            try self.init(path: path, readOnly: readOnly)
        } catch {
            throw SQLiteBackupError(reason: .sqlite, message: "cannot open \(path): \(error.message)")
        }
    }

    /// Runs `body`, naming `what` and the file in its error.
    fileprivate func backupStep<T>(_ what: String, _ body: () throws(SQLiteError) -> T) throws(SQLiteBackupError) -> T {
        do {
            return try body()
        } catch {
            throw SQLiteBackupError(reason: .sqlite, message: "\(what) (\(path)): SQLite error \(error.code): \(error.message)")
        }
    }

    fileprivate func run(_ sql: String) throws(SQLiteBackupError) {
        try backupStep(sql) { () throws(SQLiteError) in try execute(sql) }
    }

    /// The first column of every row of `sql`, as text.
    fileprivate func lines(_ sql: String) throws(SQLiteBackupError) -> [String] {
        try backupStep(sql) { () throws(SQLiteError) -> [String] in
            let query = try statement(sql)
            defer { query.reset() }
            var rows: [String] = []
            while try query.step() { rows.append(query.text(0)) }
            return rows
        }
    }

    fileprivate func integer(_ sql: String) throws(SQLiteBackupError) -> Int {
        guard let line = try lines(sql).first, let value = Int(line) else {
            throw SQLiteBackupError(reason: .sqlite, message: "\(sql) (\(path)) returned no number")
        }
        return value
    }
}
