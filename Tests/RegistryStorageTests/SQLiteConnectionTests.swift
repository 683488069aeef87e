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
}
