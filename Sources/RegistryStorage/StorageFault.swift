/// A failure of the database itself rather than of the request: what kind of failure (so the
/// API can answer 503 or 507 and readiness can say why) and the database's own words.
public struct StorageFault: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        /// Another process holds the database lock (SQLITE_BUSY, SQLITE_LOCKED).
        case busy
        /// The disk or the file-size limit is full (SQLITE_FULL).
        case diskFull
        /// The file, its directory or the file system is read-only (SQLITE_READONLY).
        case readOnly
        /// The operating system failed a read or a write (SQLITE_IOERR).
        case ioError
        /// The file is damaged or not a database (SQLITE_CORRUPT, SQLITE_NOTADB).
        case corrupt
        /// The file cannot be opened (SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_AUTH).
        case cannotOpen
        /// An fsync of the WAL failed (`WALSync`): commits since the last good one may be
        /// visible but are not durable, and no write is acknowledged until the server restarts.
        case notDurable
        /// No usable connection to the database server now (PostgreSQL: the server down or
        /// unreachable, refusing the login, shutting down or out of connections).
        case unavailable
        /// Anything else: a bug rather than a condition of the machine.
        case `internal`
    }

    public var reason: Reason
    public var message: String

    public init(reason: Reason, message: String) {
        self.reason = reason
        self.message = message
    }

    /// Classifies a failed SQLite call by its primary result code (https://sqlite.org/rescode.html).
    init(_ error: SQLiteError) {
        switch error.primaryCode {
        case 5, 6: reason = .busy
        case 13: reason = .diskFull
        case 8: reason = .readOnly
        case 10: reason = .ioError
        case 11, 26: reason = .corrupt
        case 14, 3, 23: reason = .cannotOpen
        default: reason = .internal
        }
        message = error.description
    }

    /// Whether the fault is a condition of the machine that makes the database unusable for
    /// writes until someone acts (as opposed to a passing lock or a bug).
    public var isCondition: Bool { [.diskFull, .readOnly, .ioError, .corrupt, .cannotOpen, .notDurable, .unavailable].contains(reason) }

    /// What a person reads in a problem document or in `/readyz`.
    public var summary: String {
        switch reason {
        case .busy: "the database is busy"
        case .diskFull: "the disk holding the database is full"
        case .readOnly: "the database cannot be written (read-only file, directory or file system)"
        case .ioError: "the database file could not be read or written (I/O error)"
        case .corrupt: "the database file is damaged"
        case .cannotOpen: "the database file cannot be opened"
        case .notDurable: "the database's writes could not be made durable (an fsync of the WAL failed)"
        case .unavailable: "no usable connection to the database server"
        case .internal: "the database failed"
        }
    }

    public var description: String { "\(summary): \(message)" }
}
