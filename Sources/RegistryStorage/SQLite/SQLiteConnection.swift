internal import CSQLite
internal import CSQLiteWALWrites
import Foundation

/// A failed SQLite call: the extended result code, SQLite's message and the SQL involved.
public struct SQLiteError: DatabaseError, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String
    public var sql: String?

    /// The primary result code (low 8 bits), e.g. SQLITE_CONSTRAINT.
    public var primaryCode: Int32 { code & 0xFF }

    /// What kind of failure this is, for the API and readiness.
    public var storageFault: StorageFault { StorageFault(self) }

    public var description: String {
        "SQLite error \(code): \(message)" + (sql.map { " (in: \($0.prefix(200)))" } ?? "")
    }
}

/// One SQLite connection. Not thread-safe by design: it is opened in multi-thread mode
/// (SQLITE_OPEN_NOMUTEX, see https://sqlite.org/threadsafe.html) and its owner makes sure only
/// one thread uses it at a time.
final class SQLiteConnection: SQLConnection {
    private let handle: OpaquePointer
    private var statements: [String: SQLiteStatement] = [:]
    /// The counters `increment` advanced in the open transaction, by their `update` SQL: the
    /// last value taken, and whether the row holds it already.
    private var counters: [String: (counter: SQLCounter, value: Int, written: Bool)] = [:]
    /// `counters` as each open `SAVEPOINT write` found them, innermost last: a write rolled back
    /// to its savepoint gives back the values it took (none is stored, none is skipped).
    private var countersAtSavepoints: [[String: (counter: SQLCounter, value: Int, written: Bool)]] = []
    /// Changes `sqlite3_total_changes64` does not count, for `changeMark`: counters advanced in
    /// memory, and statements run through `sqlite3_exec` (`PRAGMA user_version = …`, DDL).
    private var uncountedChanges = 0
    /// The database file.
    let path: String
    /// Most prepared statements kept per connection.
    static let statementCacheLimit = 256

    /// Process-wide SQLite settings, made once before the first connection opens: no memory
    /// statistics (they put a global mutex around every allocation SQLite makes; nothing here
    /// reads them), then the WAL written with one `pwrite` per run of frames instead of two
    /// per frame (`CSQLiteWALWrites`; registering it initializes SQLite, after which memory
    /// statistics can no longer be turned off). Should it fail to register, SQLite's own VFS
    /// writes the WAL as it always does.
    private static let configured: Void = {
        _ = CSQLite_disableMemoryStatistics()
        _ = CSQLiteWALWrites_register()
    }()

    /// `pwrite` calls made for WAL files through `CSQLiteWALWrites` so far on this thread.
    static var walWriteCalls: Int { Int(CSQLiteWALWrites_writeCalls()) }

    /// Bytes SQLite's allocations hold now (`sqlite3_memory_used`): always 0 with the memory
    /// statistics off, which is how the tests see that `configured` took effect.
    static var memoryUsedAsCounted: Int { Int(sqlite3_memory_used()) }

    init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        Self.configured
        self.path = path
        var pointer: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &pointer, flags, nil)
        guard rc == SQLITE_OK, let pointer else {
            let message = pointer.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open database"
            sqlite3_close_v2(pointer)
            throw SQLiteError(code: rc, message: "\(message): \(path)", sql: nil)
        }
        handle = pointer
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, 10_000)
        // A connection that writes keeps its statement sub-journals in memory
        // (https://sqlite.org/tempfiles.html §2.6): a dry run, or a batch replayed after a
        // write failed half-way, runs each write in its own SAVEPOINT, whose sub-journal holds
        // the original of each page the write changes.
        // With the default temp store it spills to a temporary file after 64 KiB, and from
        // then on each such page costs two more `pwrite` calls (measured: about 19 per
        // create, more than the WAL frames themselves). The sub-journal lives only as long as
        // its transaction, which the group commit bounds.
        if !readOnly { try execute("PRAGMA temp_store=MEMORY") }
    }

    /// Whether `close()` closed the handle already.
    private var isClosed = false

    deinit {
        guard !isClosed else { return }
        if walObserver != nil { sqlite3_wal_hook(handle, nil, nil) }
        stepped.removeAll()
        statements.removeAll()
        sqlite3_close_v2(handle)
    }

    /// Closes the connection now, reporting a failure (unlike `deinit`, which closes silently);
    /// the connection must not be used afterwards.
    func close() throws(SQLiteError) {
        guard !isClosed else { return }
        if walObserver != nil { sqlite3_wal_hook(handle, nil, nil) }
        stepped.removeAll()
        statements.removeAll()
        try check(sqlite3_close(handle))
        isClosed = true
    }

    /// Copies `source`'s main database into this connection's through SQLite's online backup
    /// API (https://sqlite.org/backup.html), `pagesPerStep` pages per `sqlite3_backup_step`; a
    /// busy or locked step is tried again (for at most 30 s in all). Returns the pages copied.
    func backup(from source: SQLiteConnection, pagesPerStep: Int) throws(SQLiteError) -> Int {
        guard let backup = sqlite3_backup_init(handle, "main", source.handle, "main") else {
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: nil)
        }
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        var rc: Int32
        repeat {
            rc = sqlite3_backup_step(backup, Int32(clamping: max(1, pagesPerStep)))
            if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 0.01)
                rc = SQLITE_OK
            }
        } while rc == SQLITE_OK
        let pages = Int(sqlite3_backup_pagecount(backup))
        let stepResult = rc
        // Finish reports the step's error on this (the destination) connection.
        let finished = sqlite3_backup_finish(backup)
        guard stepResult == SQLITE_DONE, finished == SQLITE_OK else {
            let code = stepResult == SQLITE_DONE ? finished : stepResult
            throw SQLiteError(
                code: code,
                message: "\(String(cString: sqlite3_errstr(code))) (source: \(String(cString: sqlite3_errmsg(source.handle))))", sql: nil)
        }
        return pages
    }

    /// Kept alive for the WAL hook's context pointer (see `observeWAL`).
    private var walObserver: WALCheckpointer?

    /// After every commit on this connection, tells `observer` how many pages the WAL holds
    /// (`sqlite3_wal_hook`, called on the committing thread once the commit is durable).
    func observeWAL(_ observer: WALCheckpointer) {
        walObserver = observer
        sqlite3_wal_hook(
            handle,
            { context, _, _, pages in
                guard let context else { return SQLITE_OK }
                Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().committed(pages: Int(pages))
                return SQLITE_OK
            }, Unmanaged.passUnretained(observer).toOpaque())
    }

    /// The one funnel that turns a result code into a typed error.
    func check(_ rc: Int32, sql: String? = nil) throws(SQLiteError) {
        guard rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE else {
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
        }
    }

    /// The transaction statements the store runs over and over (every write of a group commit
    /// runs `SAVEPOINT write` and `RELEASE write`): `execute` runs them as cached prepared
    /// statements instead of compiling them again through `sqlite3_exec` each time.
    static let preparedTransactionStatements: Set<String> = [
        "BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK", "SAVEPOINT write", "RELEASE write", "ROLLBACK TO write",
    ]

    /// Runs one or more statements that return no rows.
    func execute(_ sql: String) throws(SQLiteError) {
        if Self.preparedTransactionStatements.contains(sql) {
            // The counters follow the transaction: written back before it commits, forgotten
            // when it ends, and as they were at a savepoint when a write rolls back to it.
            switch sql {
            case "COMMIT": try writeCounters()
            case "BEGIN", "BEGIN IMMEDIATE": if !isInTransaction { forgetCounters() }
            case "ROLLBACK": forgetCounters()
            case "SAVEPOINT write": countersAtSavepoints.append(counters)
            case "ROLLBACK TO write": if let saved = countersAtSavepoints.last { counters = saved }
            case "RELEASE write": _ = countersAtSavepoints.popLast()
            default: break
            }
            defer { if sql == "COMMIT" && !isInTransaction { forgetCounters() } }
            let statement = try statement(sql)
            defer { statement.reset() }
            while try statement.step() {}
            return
        }
        uncountedChanges &+= 1
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(errorMessage)
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: message, sql: sql)
        }
    }

    /// A prepared statement for `sql`, cached per connection and reset before reuse.
    func prepare(_ sql: String) throws(SQLiteError) -> any SQLStatement {
        try statement(sql)
    }

    /// `prepare`, as SQLite's own statement type.
    func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        var pointer: OpaquePointer?
        try check(sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &pointer, nil), sql: sql)
        guard let pointer else { throw SQLiteError(code: SQLITE_MISUSE, message: "empty statement", sql: sql) }
        let statement = SQLiteStatement(pointer, connection: self, sql: sql)
        // Statements whose SQL names ids (retention's `IN (…)` lists) are new each time: the
        // cache starts over rather than growing without bound (a statement still in use lives
        // on until its user lets it go).
        if statements.count >= Self.statementCacheLimit { statements.removeAll() }
        statements[sql] = statement
        return statement
    }

    /// The statements that returned a row or failed since the last `resetStatements` (each
    /// listed once, see `SQLiteStatement.isListed`): the only ones that can be left mid-result.
    fileprivate var stepped: [SQLiteStatement] = []

    /// Resets every statement left mid-result. Such a statement keeps its read transaction
    /// open, which in WAL mode pins an old snapshot (stale reads) and blocks checkpoints, so
    /// owners call this whenever they hand a connection back. Only the statements that
    /// returned a row or failed since the last call are reset (one that ran to its end,
    /// `SQLITE_DONE`, holds nothing: https://sqlite.org/c3ref/stmt_busy.html), not every
    /// cached one: the group commit calls this twice per write.
    func resetStatements() {
        for statement in stepped {
            statement.reset()
            statement.isListed = false
        }
        stepped.removeAll(keepingCapacity: true)
    }

    /// Runs `body` in a transaction (BEGIN IMMEDIATE takes the write lock up front, so a
    /// writer never fails half-way with SQLITE_BUSY); rolls back if it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            resetStatements()
            try execute("COMMIT")
            return result
        } catch {
            resetStatements()
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { Int(sqlite3_changes(handle)) }
    var changeMark: Int? { Int(sqlite3_total_changes64(handle)) &+ uncountedChanges }

    /// `BEGIN IMMEDIATE`: the write lock is taken at once.
    func beginWrite() throws(SQLiteError) {
        try execute("BEGIN IMMEDIATE")
    }

    /// `BEGIN`: in WAL mode the snapshot is taken at the first read.
    func beginRead() throws(SQLiteError) {
        try execute("BEGIN")
    }

    /// The page size, in bytes, of a database file this server creates (SQLite's default is
    /// 4,096). Measured under adds of one address spread over 1,000 services growing from 12
    /// addresses (BENCHMARKS.md, twenty-fourth session): ~8 % more adds a second and ~6 µs less
    /// system time per add, since each WAL frame costs two `pwrite` calls whatever its size
    /// and a service's row of a few KB then fits one page without an overflow page; creates
    /// and reads unchanged; 16 KiB pages were slower than 8 KiB.
    static let newFilePageSize = 8_192

    /// Puts the database in WAL mode (`PRAGMA journal_mode=WAL`), giving a file without tables
    /// yet pages of `newFilePageSize` bytes first. `PRAGMA page_size` has no effect on a
    /// database that has tables already (nor on one in WAL mode), so an existing file keeps
    /// its own page size.
    func enableWAL() throws(SQLiteError) {
        try execute("PRAGMA page_size=\(Self.newFilePageSize); PRAGMA journal_mode=WAL")
    }

    /// The database's page size in bytes (`PRAGMA page_size`).
    func pageSize() throws(SQLiteError) -> Int {
        let size = try statement("PRAGMA page_size")
        defer { size.reset() }
        _ = try size.step()
        return size.int(0)
    }

    /// Rewrites the header's `user_version` with its own value: a real write through the WAL,
    /// so a full disk, a read-only file or an I/O error shows.
    func probeWrite() throws(SQLiteError) {
        let version = try statement("PRAGMA user_version")
        _ = try version.step()
        let value = version.int(0)
        version.reset()
        try execute("PRAGMA user_version = \(value)")
    }

    /// The database file's pages and its WAL file.
    func sizeInBytes() throws(SQLiteError) -> Int {
        let size = try statement("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
        _ = try size.step()
        let bytes = size.int(0)
        size.reset()
        return bytes + ServiceStore.fileSize(path + "-wal")
    }

    /// An UPDATE then a SELECT of the row (see `SQLConnection.increment`): no temporary
    /// b-tree for a `RETURNING` clause. In a transaction, only the first increment of a counter
    /// runs them: the next ones count in memory (`counters`), and the last value is written
    /// once, before `COMMIT` — two statements per transaction instead of two per write of a
    /// group commit. A write rolled back to its savepoint (`ROLLBACK TO write`: a failed or
    /// dry-run write) gives its values back, as the row's own rollback would.
    func increment(_ counter: SQLCounter) throws(SQLiteError) -> Int? {
        uncountedChanges &+= 1
        let inTransaction = isInTransaction
        if inTransaction, let known = counters[counter.update] {
            counters[counter.update] = (counter, known.value + 1, false)
            return known.value + 1
        }
        let update = try statement(counter.update)
        _ = try update.step()
        update.reset()
        let select = try statement(counter.select)
        defer { select.reset() }
        guard try select.step() else { return nil }
        let value = select.int(0)
        if inTransaction { counters[counter.update] = (counter, value, true) }
        return value
    }

    func insertReturningID(_ sql: String, _ values: [SQLValue]) throws(SQLiteError) -> Int {
        let insert = try statement(sql)
        defer { insert.reset() }
        for (index, value) in values.enumerated() { try insert.bind(at: Int32(index + 1), value) }
        _ = try insert.step()
        return Int(sqlite3_last_insert_rowid(handle))
    }

    private func forgetCounters() {
        counters.removeAll(keepingCapacity: true)
        countersAtSavepoints.removeAll(keepingCapacity: true)
    }

    /// Writes the counters advanced in memory back to their rows (before `COMMIT`).
    private func writeCounters() throws(SQLiteError) {
        for (key, entry) in counters where !entry.written {
            let assign = try statement(entry.counter.assign)
            defer { assign.reset() }
            try assign.bind(at: 1, .integer(entry.value))
            _ = try assign.step()
            counters[key]?.written = true
        }
    }

    /// The tables of the main schema, without SQLite's own (`sqlite_sequence`, `sqlite_stat1`, …).
    func tableNames() throws(SQLiteError) -> [String] {
        let tables = try statement("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
        defer { tables.reset() }
        var names: [String] = []
        while try tables.step() { names.append(tables.text(0)) }
        return names
    }

    /// Nothing to do: the store's tables key their rows by `INTEGER PRIMARY KEY` without
    /// `AUTOINCREMENT`, whose next rowid is the largest + 1 (https://sqlite.org/autoinc.html).
    func advanceGeneratedKeys(of table: String) {}

    /// True while a transaction is open. SQLite rolls a whole transaction back by itself after
    /// some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY, SQLITE_NOMEM; see
    /// https://sqlite.org/lang_transaction.html, "Response To Errors Within A Transaction").
    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// True when SQLite opened the main database read-only (the file or its directory is not
    /// writable).
    var isReadOnly: Bool { sqlite3_db_readonly(handle, "main") == 1 }

    /// `PRAGMA quick_check`, abandoned after `timeout`: the problems found (`["ok"]` for a sound
    /// file), or nil when the check did not finish in time.
    func quickCheck(timeout: Duration) throws(SQLiteError) -> [String]? {
        let deadline = ProgressDeadline(ContinuousClock.now.advanced(by: timeout))
        let context = Unmanaged.passRetained(deadline)
        sqlite3_progress_handler(
            handle, 10_000,
            { pointer in
                guard let pointer else { return 0 }
                return ContinuousClock.now > Unmanaged<ProgressDeadline>.fromOpaque(pointer).takeUnretainedValue().instant ? 1 : 0
            }, context.toOpaque())
        defer {
            sqlite3_progress_handler(handle, 0, nil, nil)
            context.release()
        }
        var lines: [String] = []
        do {
            let statement = try self.statement("PRAGMA quick_check")
            while try statement.step() { lines.append(statement.text(0)) }
        } catch  where error.primaryCode == SQLITE_INTERRUPT {
            return nil
        }
        return lines
    }
}

/// The instant after which `quickCheck`'s progress handler interrupts SQLite.
private final class ProgressDeadline {
    let instant: ContinuousClock.Instant
    init(_ instant: ContinuousClock.Instant) { self.instant = instant }
}

@available(*, unavailable)
extension SQLiteConnection: Sendable {}

/// A prepared statement, finalized when released.
final class SQLiteStatement: SQLStatement {
    private let handle: OpaquePointer
    private unowned let connection: SQLiteConnection
    let sql: String
    /// Whether the connection lists this statement among those to reset (`resetStatements`).
    fileprivate var isListed = false

    init(_ handle: OpaquePointer, connection: SQLiteConnection, sql: String) {
        self.handle = handle
        self.connection = connection
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Binds one parameter (1-based `index`).
    func bind(at index: Int32, _ value: SQLValue) throws(SQLiteError) {
        let rc: Int32
        switch value {
        case .null: rc = sqlite3_bind_null(handle, index)
        case .integer(let number): rc = sqlite3_bind_int64(handle, index, Int64(number))
        // With its byte count, so that a NUL inside the text is kept rather than ending it.
        // From the string's own UTF-8 storage (handing `text` over as a C string copied it into a
        // new array on every bind); SQLite copies the bytes (`SQLITE_TRANSIENT`).
        case .text(let text):
            var text = text
            rc = text.withUTF8 { bytes in
                // An empty string may have no storage address; bound as "" (a null pointer binds NULL).
                guard let base = bytes.baseAddress, !bytes.isEmpty else { return sqlite3_bind_text(handle, index, "", 0, CSQLite_transient()) }
                return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                    sqlite3_bind_text(handle, index, $0, Int32(clamping: bytes.count), CSQLite_transient())
                }
            }
        case .blob(let bytes):
            rc = bytes.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), CSQLite_transient()) }
        }
        try connection.check(rc, sql: sql)
    }

    /// Advances to the next row; false when done.
    func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc != SQLITE_DONE && !isListed {
            isListed = true
            connection.stepped.append(self)
        }
        try connection.check(rc, sql: sql)
        return rc == SQLITE_ROW
    }

    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }

    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        // By its byte count (not up to the first NUL), as it was bound.
        return String(decoding: UnsafeBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(handle, column))), as: UTF8.self)
    }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let pointer = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// By the value's storage class (`sqlite3_column_type`); text in a column declared `BLOB`
    /// (which SQLite keeps as text when it was bound as text) is given as its bytes, so that a
    /// copy writes bytes where the schema says bytes.
    func value(_ column: Int32) -> SQLValue {
        switch sqlite3_column_type(handle, column) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .integer(int(column))
        case SQLITE_BLOB: return .blob(blob(column))
        case SQLITE_TEXT:
            let declared = sqlite3_column_decltype(handle, column).map { String(cString: $0).uppercased() }
            return declared == "BLOB" ? .blob(blob(column)) : .text(text(column))
        default: return .text(text(column))  // SQLITE_FLOAT: the store has no REAL column
        }
    }

    var columnNames: [String] {
        (0..<sqlite3_column_count(handle)).map { column in sqlite3_column_name(handle, column).map { String(cString: $0) } ?? "" }
    }
}

@available(*, unavailable)
extension SQLiteStatement: Sendable {}
