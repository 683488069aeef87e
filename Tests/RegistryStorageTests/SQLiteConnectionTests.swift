import Testing

@testable import RegistryStorage

@Suite struct SQLiteConnectionTests {
    /// Text is bound and read by its byte count: a NUL inside it is kept, never an end.
    @Test func textWithANULComesBackWhole() throws {
        let connection = try SQLiteConnection(path: try temporaryDatabase())
        try connection.execute("CREATE TABLE t (value TEXT)")
        try connection.prepare("INSERT INTO t VALUES (?)").bind(.text("a\u{0}b é")).run()
        let read = try connection.prepare("SELECT value, length(CAST(value AS BLOB)) FROM t")
        #expect(try read.step())
        #expect(read.text(0) == "a\u{0}b é")
        #expect(read.int(1) == 6)
    }

    /// A read left mid-result pins its snapshot (WAL mode) until `resetStatements` ends it,
    /// and only then does it see what another connection committed since; a statement that ran
    /// to its end holds nothing and is not reset by it (its bindings stay).
    @Test func resetStatementsEndsReadsLeftMidResult() throws {
        let path = try temporaryDatabase()
        let writer = try SQLiteConnection(path: path)
        try writer.execute("PRAGMA journal_mode=WAL")
        try writer.execute("CREATE TABLE t (value INTEGER)")
        try writer.execute("INSERT INTO t VALUES (1), (2)")
        let reader = try SQLiteConnection(path: path)
        let count = try reader.prepare("SELECT count(*) FROM t")
        let rows = try reader.prepare("SELECT value FROM t ORDER BY value")
        #expect(try rows.step())  // left mid-result: its read transaction stays open
        try writer.execute("INSERT INTO t VALUES (3)")
        #expect(reader.isInTransaction == false)  // an implicit read transaction, not BEGIN
        #expect(try count.step() && count.int(0) == 2)  // the pinned snapshot
        reader.resetStatements()
        #expect(try count.step() && count.int(0) == 3)
        reader.resetStatements()
        let insert = try writer.prepare("INSERT INTO t VALUES (?1)")
        try insert.bind(.integer(4))
        #expect(try insert.step() == false)
        writer.resetStatements()
        #expect(try insert.step() == false)  // still bound: runs again
        #expect(try count.step() && count.int(0) == 5)
    }

    /// The transaction statements `execute` runs prepared (`SAVEPOINT write`, `COMMIT`, …) do
    /// what `sqlite3_exec` did: nest, roll back one write alone, fail with SQLite's error, and
    /// can be run again.
    @Test func preparedTransactionStatementsBehaveAsExecuted() throws {
        let connection = try SQLiteConnection(path: try temporaryDatabase())
        try connection.execute("CREATE TABLE t (value INTEGER)")
        for round in 1...2 {
            try connection.execute("BEGIN IMMEDIATE")
            #expect(connection.isInTransaction)
            try connection.execute("SAVEPOINT write")
            try connection.prepare("INSERT INTO t VALUES (?)").bind(.integer(round)).run()
            try connection.execute("RELEASE write")
            try connection.execute("SAVEPOINT write")
            try connection.prepare("INSERT INTO t VALUES (?)").bind(.integer(100)).run()
            try connection.execute("ROLLBACK TO write")
            try connection.execute("RELEASE write")
            try connection.execute("COMMIT")
            #expect(connection.isInTransaction == false)
        }
        let values = try connection.prepare("SELECT group_concat(value) FROM t")
        #expect(try values.step() && values.text(0) == "1,2")
        connection.resetStatements()
        #expect(throws: SQLiteError.self) { try connection.execute("COMMIT") }  // no transaction
        #expect(throws: SQLiteError.self) { try connection.execute("RELEASE write") }  // no such savepoint
        try connection.execute("BEGIN")
        try connection.execute("ROLLBACK")
    }

    /// `increment` counts in memory after a transaction's first run and writes the last value
    /// once, at `COMMIT`: the row then holds the last value kept; a write rolled back to its
    /// savepoint gives back the values it took (the next write takes them again, and the row
    /// never holds one only a rolled-back write took); a transaction rolled back leaves the row
    /// as it was; outside a transaction every call is written.
    @Test func countersAdvancedInATransactionAreWrittenAtItsCommit() throws {
        let connection = try SQLiteConnection(path: try temporaryDatabase())
        try connection.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        try connection.execute("INSERT INTO c VALUES (1, 10)")
        let counter = SQLCounter("n", of: "c", where: "id = 1")
        func stored() throws -> Int {
            let row = try connection.prepare("SELECT n FROM c WHERE id = 1")
            defer { row.reset() }
            return try row.step() ? row.int(0) : -1
        }
        try connection.execute("BEGIN IMMEDIATE")
        #expect(try connection.increment(counter) == 11)
        #expect(try connection.increment(counter) == 12)
        try connection.execute("SAVEPOINT write")
        #expect(try connection.increment(counter) == 13)
        try connection.execute("ROLLBACK TO write")
        try connection.execute("RELEASE write")
        #expect(try connection.increment(counter) == 13)
        try connection.execute("SAVEPOINT write")
        #expect(try connection.increment(counter) == 14)
        try connection.execute("RELEASE write")
        // The last write of the transaction rolled back: what it took is not stored.
        try connection.execute("SAVEPOINT write")
        #expect(try connection.increment(counter) == 15)
        try connection.execute("ROLLBACK TO write")
        try connection.execute("RELEASE write")
        try connection.execute("COMMIT")
        #expect(try stored() == 14)
        // The first increment of a transaction (the one that reads the row) rolled back.
        try connection.execute("BEGIN IMMEDIATE")
        try connection.execute("SAVEPOINT write")
        #expect(try connection.increment(counter) == 15)
        try connection.execute("ROLLBACK TO write")
        try connection.execute("RELEASE write")
        #expect(try connection.increment(counter) == 15)
        try connection.execute("COMMIT")
        #expect(try stored() == 15)
        try connection.execute("BEGIN IMMEDIATE")
        #expect(try connection.increment(counter) == 16)
        #expect(try connection.increment(counter) == 17)
        try connection.execute("ROLLBACK")
        #expect(try stored() == 15)
        #expect(try connection.increment(counter) == 16)  // autocommit: written at once
        #expect(try stored() == 16)
        #expect(try connection.increment(SQLCounter("n", of: "c", where: "id = 2")) == nil)
    }

    /// The WAL is written through `CSQLiteWALWrites`: a commit's frames go in a few `pwrite`
    /// calls (at most 128 KiB each), not two per frame, and are in the file when the commit
    /// returns, for another connection to read. Frames written before their commit (a page cache
    /// too small for the transaction spills them), a transaction rolled back after spilling, a
    /// savepoint rolled back and pages written again in place: the file stays sound and holds
    /// exactly what was committed.
    @Test func walFramesAreWrittenInRunsAndStayExact() throws {
        let path = try temporaryDatabase()
        let writer = try SQLiteConnection(path: path)
        try writer.execute("PRAGMA page_size=8192; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
        try writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, value BLOB)")
        let reader = try SQLiteConnection(path: path, readOnly: true)
        func count(_ connection: SQLiteConnection) throws -> Int {
            let statement = try connection.prepare("SELECT count(*), coalesce(sum(length(value)), 0) FROM t")
            defer { connection.resetStatements() }
            #expect(try statement.step())
            #expect(statement.int(1) == statement.int(0) * 3_000)
            return statement.int(0)
        }
        let rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) INSERT INTO t (value) SELECT randomblob(3000) FROM n"
        let before = SQLiteConnection.walWriteCalls
        try writer.prepare(rows).bind(.integer(400)).run()  // ~150 pages in one commit
        let calls = SQLiteConnection.walWriteCalls - before
        #expect(calls >= 10 && calls <= 20, "\(calls) pwrite calls for ~150 frames of 8 KiB")
        #expect(try count(reader) == 400)
        // Commits of 1 to 60 rows: wherever the commit frame falls against the 128 KiB runs,
        // each is readable as soon as it returns.
        var total = 400
        for size in 1...60 {
            try writer.prepare(rows).bind(.integer(size)).run()
            total += size
            #expect(try count(reader) == total)
        }
        try writer.execute("DELETE FROM t WHERE id > 400")
        #expect(try count(reader) == 400)
        // A cache of 20 pages: the transaction spills frames before its commit, then rolls back.
        try writer.execute("PRAGMA cache_size=20")
        try writer.execute("BEGIN IMMEDIATE")
        try writer.prepare(rows).bind(.integer(600)).run()
        #expect(try count(writer) == 1_000)
        #expect(try count(reader) == 400)
        try writer.execute("ROLLBACK")
        #expect(try count(reader) == 400)
        // Spilled, a savepoint rolled back, the same pages changed again, then committed.
        try writer.execute("BEGIN IMMEDIATE")
        try writer.prepare(rows).bind(.integer(300)).run()
        try writer.execute("SAVEPOINT s")
        try writer.execute("UPDATE t SET value = randomblob(3000) WHERE id % 3 = 0")
        try writer.prepare(rows).bind(.integer(200)).run()
        try writer.execute("ROLLBACK TO s")
        try writer.execute("RELEASE s")
        try writer.execute("UPDATE t SET value = zeroblob(3000) WHERE id % 5 = 0")
        try writer.execute("COMMIT")
        #expect(try count(reader) == 700)
        let zeroed = try reader.prepare("SELECT count(*) FROM t WHERE value = zeroblob(3000)")
        #expect(try zeroed.step() && zeroed.int(0) == 140)
        reader.resetStatements()
        // That commit rewrote its frames' headers in place (pages spilled, then changed again:
        // SQLite's `walRewriteChecksums`); the commits of one page each after it are in the file too.
        for id in [1, 2, 3] {
            try writer.prepare("UPDATE t SET value = zeroblob(3000) WHERE id = ?").bind(.integer(id)).run()
            let one = try reader.prepare("SELECT value = zeroblob(3000) FROM t WHERE id = ?")
            try one.bind(.integer(id))
            #expect(try one.step() && one.int(0) == 1, "row \(id)")
            reader.resetStatements()
        }
        let check = try reader.prepare("PRAGMA integrity_check")
        #expect(try check.step() && check.text(0) == "ok")
        reader.resetStatements()
        // A new connection reads the same committed rows.
        let again = try SQLiteConnection(path: path)
        #expect(try count(again) == 700)
    }
}
