/// The embedded store: one SQLite file in WAL mode, used by this process alone.
struct SQLiteDatabase: SQLDatabase {
    /// The database file.
    let path: String

    func connect(readOnly: Bool) throws -> any SQLConnection {
        let connection = try SQLiteConnection(path: path, readOnly: readOnly)
        if readOnly { try connection.execute("PRAGMA query_only=ON") }
        return connection
    }

    /// The server holds an exclusive `flock` on the file (`ExclusiveFileLock`), so no other
    /// process writes it; tools such as `backup` only read it.
    var isShared: Bool { false }

    var description: String { path }
}
