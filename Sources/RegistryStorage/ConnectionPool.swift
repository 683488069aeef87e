import Synchronization

/// Lets one connection travel between threads inside a lock or a pool.
/// Why @unchecked Sendable is safe: a box is only ever reachable through `ConnectionPool`
/// (checked out to one caller at a time) or the writer's `Mutex`, never by two threads at once.
final class ConnectionBox: @unchecked Sendable {
    let connection: any SQLConnection
    init(_ connection: any SQLConnection) { self.connection = connection }
}

/// Read connections, one per concurrent reader: SQLite's WAL (and PostgreSQL's MVCC) lets
/// readers run in parallel with each other and with the writer, and each caller gets a
/// connection no one else is using. The pool holds at most as many connections as there were
/// readers at once, which the server's worker and background threads bound.
final class ConnectionPool: Sendable {
    private let idle = Mutex<[ConnectionBox]>([])
    private let open: @Sendable () throws -> any SQLConnection

    init(open: @escaping @Sendable () throws -> any SQLConnection) {
        self.open = open
    }

    /// Closes the connections no one is using (at shutdown; a later reader opens a new one).
    func closeIdle() {
        idle.withLock { $0.removeAll() }
    }

    func with<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        let box = try idle.withLock { $0.popLast() } ?? ConnectionBox(open())
        defer {
            box.connection.resetStatements()
            idle.withLock { $0.append(box) }
        }
        return try body(box.connection)
    }
}
