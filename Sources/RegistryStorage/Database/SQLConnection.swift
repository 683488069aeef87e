/// The storage protocol: the one store logic (`ServiceStore` and its audit log, history, watch
/// log, push and reconcile state) runs on any database that implements these three protocols,
/// so SQLite and PostgreSQL keep the same revisions, ETags, If-Match decisions, pagination and
/// audit-in-the-same-transaction semantics by construction.
///
/// The store's SQL is the common subset of SQLite and PostgreSQL (row values, `ON CONFLICT …
/// DO UPDATE`, `RETURNING`, sub-selects with aliases), with parameters written `?` (next) or
/// `?N` (the N-th, 1-based) as in SQLite; an implementation translates them to its own form.
/// The few operations whose SQL differs are requirements of `SQLConnection` (`beginWrite`,
/// `beginRead`, `probeWrite`, `sizeInBytes`).

/// A value bound to a statement parameter.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int)
    case text(String)
    case blob([UInt8])
}

/// A failure of the database itself, classified for the API (503, 507) and readiness.
public protocol DatabaseError: Error {
    var storageFault: StorageFault { get }
}

/// A prepared statement of one connection. Not thread-safe: used by the thread that holds its
/// connection. Columns are 0-based; a NULL column reads as 0, "" or `[]`; a boolean column
/// (PostgreSQL's `t`/`f`) reads as 1 or 0 through `int`.
public protocol SQLStatement: AnyObject {
    /// Ends the current run and clears the bindings, to run the statement again.
    func reset()
    /// Binds one parameter (1-based `index`).
    func bind(at index: Int32, _ value: SQLValue) throws
    /// Runs the statement on the first call and advances to the next row; false when done.
    func step() throws -> Bool
    func int(_ column: Int32) -> Int
    func text(_ column: Int32) -> String
    func blob(_ column: Int32) -> [UInt8]
    /// The column's value as stored, for copying rows of any table (`StoreCopy`): `.null`,
    /// `.integer` for an integer (and a boolean, as 1 or 0), `.blob` for bytes (SQLite: a BLOB,
    /// or text in a column declared BLOB; PostgreSQL: `bytea`), `.text` for anything else.
    func value(_ column: Int32) -> SQLValue
    /// The names of the result's columns, in order; known once the statement has run (`step`).
    var columnNames: [String] { get }
}

extension SQLStatement {
    /// Binds parameters 1…n in order.
    @discardableResult
    public func bind(_ values: SQLValue...) throws -> Self {
        for (offset, value) in values.enumerated() { try bind(at: Int32(offset + 1), value) }
        return self
    }

    /// Runs a statement that returns no rows (or whose rows are not needed).
    public func run() throws {
        while try step() {}
    }
}

/// One connection to the database, used by one thread at a time (its owner, a pool or the
/// writer's lock, makes sure of that).
public protocol SQLConnection: AnyObject {
    /// Runs one or more statements without parameters that return no rows (`COMMIT`,
    /// `SAVEPOINT write`, `ROLLBACK TO write`, …).
    func execute(_ sql: String) throws
    /// A statement for `sql`, ready to bind; may be cached per connection and reset before reuse.
    func prepare(_ sql: String) throws -> any SQLStatement
    /// Ends every statement left mid-result (owners call it when they hand a connection back).
    func resetStatements()
    /// True while a transaction is open (the database may roll one back on its own after some
    /// errors; the group commit checks this to know whether the batch is gone).
    var isInTransaction: Bool { get }
    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { get }
    /// A number that moves whenever the open transaction may have been changed: by a row a
    /// statement inserted, updated or deleted, a counter advanced (`increment`), or any
    /// statement `execute` ran; nil when the connection cannot tell. The group commit reads it
    /// before a write and after that write failed, to know whether there is anything to undo
    /// (`ServiceStore.commit`). SQLite: `sqlite3_total_changes64`, which counts the rows of
    /// completed statements only (a statement that fails is undone by SQLite itself) plus the
    /// changes it does not count; PostgreSQL: the rows of every statement other than a
    /// `SELECT`, and every failed statement (which fails the whole transaction there).
    /// Write bodies must therefore not use SQLite's `OR FAIL` (it keeps a failed statement's
    /// partial changes) nor, on PostgreSQL, a statement whose command tag is `SELECT` but which
    /// writes (`WITH … UPDATE … SELECT`, a writing function): their changes would not move the mark.
    var changeMark: Int? { get }
    /// Starts the transaction of a write and takes the database's write lock at once, so that
    /// writers run one after the other and never fail half-way on a lock (SQLite's `BEGIN
    /// IMMEDIATE`; PostgreSQL: the row of the global resource version, `FOR UPDATE`, which every
    /// replica's writes take first).
    func beginWrite() throws
    /// Starts a read transaction: several statements see one snapshot (ended with `COMMIT`).
    func beginRead() throws
    /// Inside a write transaction: a real write that changes nothing, to learn whether the
    /// database takes writes now (readiness).
    func probeWrite() throws
    /// The database's size on disk in bytes (SQLite: the file and its WAL).
    func sizeInBytes() throws -> Int
    /// Inside a write transaction: adds one to `counter`'s column in the row it selects, and
    /// returns the new value; nil when no row matches. The default is one `UPDATE … RETURNING`
    /// (PostgreSQL: one round trip); SQLite runs an UPDATE and a SELECT instead, because its
    /// `RETURNING` collects the row in a temporary b-tree opened and closed on every run (8 %
    /// of a create's commit time).
    func increment(_ counter: SQLCounter) throws -> Int?
    /// Runs `sql`, an `INSERT` of one row into a table whose `id` is generated, with `values`
    /// bound, and returns that row's `id`. The default appends `RETURNING id` (PostgreSQL: one
    /// round trip); SQLite reads `sqlite3_last_insert_rowid` instead, because its `RETURNING`
    /// collects the row in a temporary b-tree (see `increment`).
    func insertReturningID(_ sql: String, _ values: [SQLValue]) throws -> Int
    /// The names of the database's tables (SQLite: of the main schema, without SQLite's own
    /// `sqlite_…` tables; PostgreSQL: the base tables of the current schema), sorted.
    func tableNames() throws -> [String]
    /// After rows were inserted with explicit values of `table`'s generated key (`StoreCopy`):
    /// the next generated value follows the largest stored one (PostgreSQL: `setval` of each
    /// identity or serial column's sequence; SQLite: nothing to do, since an `INTEGER PRIMARY
    /// KEY` without `AUTOINCREMENT` takes the largest rowid + 1 by itself).
    func advanceGeneratedKeys(of table: String) throws
}

/// Where a store's connections come from.
public protocol SQLDatabase: Sendable, CustomStringConvertible {
    /// A new connection; `readOnly` for the readers' pool (a reader never writes).
    func connect(readOnly: Bool) throws -> any SQLConnection
    /// True when other processes may write the same database at the same time (PostgreSQL with
    /// several replicas): the store then caches no current documents and follows the changes
    /// the others commit through the watch log (see `ServiceStore.followSharedChanges`).
    var isShared: Bool { get }
    /// The most read connections the store's readers' pool opens at once (nil: as many as
    /// there are concurrent readers, which the server's threads bound). A reader that finds
    /// them all in use waits (see `ConnectionPool`).
    var maximumReadConnections: Int? { get }
}

extension SQLConnection {
    public func increment(_ counter: SQLCounter) throws -> Int? {
        let statement = try prepare(counter.updateReturning)
        defer { statement.reset() }
        return try statement.step() ? statement.int(0) : nil
    }

    public func insertReturningID(_ sql: String, _ values: [SQLValue]) throws -> Int {
        let statement = try prepare(sql + " RETURNING id")
        defer { statement.reset() }
        for (index, value) in values.enumerated() { try statement.bind(at: Int32(index + 1), value) }
        guard try statement.step() else {
            throw StoreError.fault(StorageFault(reason: .internal, message: "an INSERT returned no id: \(sql)"))
        }
        return statement.int(0)
    }
}

/// An integer column of one row that writes advance by one (`SQLConnection.increment`), with
/// the SQL of its statements written once rather than on every write.
public struct SQLCounter: Sendable {
    /// `UPDATE table SET column = column + 1 WHERE condition`.
    public let update: String
    /// The same `UPDATE`, `RETURNING column`.
    public let updateReturning: String
    /// `SELECT column FROM table WHERE condition`.
    public let select: String
    /// `UPDATE table SET column = ?1 WHERE condition`: a value kept in memory written back
    /// (SQLite's `increment` writes a transaction's last value once, before `COMMIT`).
    public let assign: String

    /// `condition` is SQL without parameters that selects the row.
    public init(_ column: String, of table: String, where condition: String) {
        update = "UPDATE \(table) SET \(column) = \(column) + 1 WHERE \(condition)"
        updateReturning = update + " RETURNING \(column)"
        select = "SELECT \(column) FROM \(table) WHERE \(condition)"
        assign = "UPDATE \(table) SET \(column) = ?1 WHERE \(condition)"
    }
}

extension SQLDatabase {
    public var maximumReadConnections: Int? { nil }
}
