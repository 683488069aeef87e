import Foundation

/// The embedded store: one SQLite file in WAL mode, used by one server process alone.
public struct SQLiteDatabase: SQLDatabase {
    /// The database file.
    public let path: String
    /// The server's exclusive lock on the file (`ExclusiveFileLock`), held while this value and
    /// its copies live, when `open` was asked to take it.
    private let lock: ExclusiveFileLock?

    /// The file at `path` as it is: nothing is opened, created or migrated. Reading it takes no
    /// lock that would stop a server serving it (as `SQLiteBackup`), so a tool may read a
    /// database while it is served.
    public init(existing path: String) {
        self.path = path
        lock = nil
    }

    /// Opens (creating it if missing, with `SQLiteConnection.newFilePageSize`-byte pages) the
    /// database at `path` in WAL mode and brings its schema up to date, as a server does at
    /// start. With `exclusive`, holds the server's exclusive `flock` (see `ExclusiveFileLock`)
    /// while the returned value lives: no server serves the file meanwhile, and one serving it
    /// already makes this fail.
    ///
    /// - Throws: `StoreError.fault` when the file cannot be opened or locked (`.busy`: a server
    ///   serves it), `StoreError.migration` when its schema cannot be brought up to date or is
    ///   newer than this binary.
    public static func open(path: String, migrations: [Migration], exclusive: Bool) throws(StoreError) -> SQLiteDatabase {
        let lock: ExclusiveFileLock?
        do {
            lock = exclusive ? try ExclusiveFileLock(path: path) : nil
        } catch {
            throw .fault(error)
        }
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(path: path)
            try connection.enableWAL()
        } catch {
            throw .fault(error.storageFault)
        }
        do {
            try Migrator(migrations: migrations).migrate(connection, now: ServiceStore.timestamp(Date()))
        } catch {
            if case .failed(_, let failure as any DatabaseError) = error, failure.storageFault.isCondition { throw .fault(failure.storageFault) }
            throw .migration(error)
        }
        return SQLiteDatabase(path: path, lock: lock)
    }

    private init(path: String, lock: ExclusiveFileLock?) {
        self.path = path
        self.lock = lock
    }

    public func connect(readOnly: Bool) throws -> any SQLConnection {
        let connection = try SQLiteConnection(path: path, readOnly: readOnly)
        if readOnly { try connection.execute("PRAGMA query_only=ON") }
        return connection
    }

    /// The server holds an exclusive `flock` on the file (`ExclusiveFileLock`), so no other
    /// process writes it; tools such as `backup` only read it.
    public var isShared: Bool { false }

    public var description: String { path }
}
