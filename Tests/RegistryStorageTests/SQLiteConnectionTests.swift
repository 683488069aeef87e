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
}
