import Synchronization

/// Lets one SQLite connection travel between threads inside a lock or a pool.
/// Why @unchecked Sendable is safe: a box is only ever reachable through `ConnectionPool`
/// (checked out to one caller at a time) or the writer's `Mutex`, never by two threads at once.
final class ConnectionBox: @unchecked Sendable {
    let connection: SQLiteConnection
    init(_ connection: SQLiteConnection) { self.connection = connection }
}

/// Read-only connections, one per concurrent reader: WAL lets readers run in parallel with
/// each other and with the writer, and each caller gets a connection no one else is using.
final class ConnectionPool: Sendable {
    private let idle = Mutex<[ConnectionBox]>([])
    private let open: @Sendable () throws(SQLiteError) -> SQLiteConnection

    init(open: @escaping @Sendable () throws(SQLiteError) -> SQLiteConnection) {
        self.open = open
    }

    func with<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        let box = try idle.withLock { $0.popLast() } ?? ConnectionBox(open())
        defer {
            box.connection.resetStatements()
            idle.withLock { $0.append(box) }
        }
        return try body(box.connection)
    }
}
