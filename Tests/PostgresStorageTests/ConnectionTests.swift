import TestSupport
import Foundation
import Testing

@testable import PostgresStorage

@Suite struct ConnectionTests {
    @Test func roundTripsParametersOfEveryTypeAndNULL() throws {
        let connection = try PostgresConnection(settings: try TestPostgres.shared().createDatabase())
        let result = try connection.query(
            "SELECT $1::text, $2::bigint, $3::boolean, $4::float8, $5::bytea, $6::text, $7::bigint",
            [.text("zürich ✓"), .integer(-9_007_199_254_740_993), .boolean(true), .double(2.5), .bytes([0, 1, 254, 255]), .null, .null])
        let row = try #require(result.rows.first)
        #expect(result.rows.count == 1)
        #expect(try row.text(0) == "zürich ✓")
        #expect(try row.int(1) == -9_007_199_254_740_993)
        #expect(try row.bool(2))
        #expect(try row.double(3) == 2.5)
        #expect(try row.bytes(4) == [0, 1, 254, 255])
        #expect(row.isNull(5) && row.optionalText(5) == nil)
        #expect(try row.optionalInt(6) == nil)
        #expect(throws: PostgresError.self) { try row.int(6) }
        #expect(throws: PostgresError.self) { try row.int(0) }
        let special = try connection.query("SELECT $1::float8, $2::float8", [.double(-.infinity), .double(.nan)]).rows[0]
        #expect(try special.double(0) == -.infinity)
        #expect(try special.double(1).isNaN)
    }

    @Test func storesEveryByteAndTextVerbatim() throws {
        let connection = try PostgresConnection(settings: try TestPostgres.shared().createDatabase())
        try connection.execute("CREATE TABLE t (id bigint PRIMARY KEY, name text, document bytea)")
        let every = (0...255).map { UInt8($0) }
        let hostile = "x'); DROP TABLE t; -- $1 \\ \" ''"
        let insert = try connection.query("INSERT INTO t VALUES ($1, $2, $3)", [.integer(1), .text(hostile), .bytes(every)])
        #expect(insert.affectedRows == 1)
        try connection.query("INSERT INTO t VALUES ($1, $2, $3)", [.integer(2), .null, .bytes([])])
        let rows = try connection.query("SELECT id, name, document FROM t ORDER BY id").rows
        #expect(rows.count == 2)
        #expect(try rows[0].text(1) == hostile)
        #expect(try rows[0].bytes(2) == every)
        #expect(rows[1].optionalText(1) == nil)
        #expect(try rows[1].bytes(2) == [])
        #expect(rows[0].columns == ["id", "name", "document"])
    }

    @Test func namesAUniqueViolationWithItsSQLSTATE() throws {
        let connection = try PostgresConnection(settings: try TestPostgres.shared().createDatabase())
        try connection.execute("CREATE TABLE t (name text UNIQUE)")
        try connection.query("INSERT INTO t VALUES ($1)", [.text("a")])
        let error = try #require(throws: PostgresError.self) { try connection.query("INSERT INTO t VALUES ($1)", [.text("a")]) }
        #expect(error.kind == .uniqueViolation)
        #expect(error.sqlState == "23505")
        #expect(error.detail?.contains("(name)=(a)") == true)
        #expect(connection.isUsable)
        let syntax = try #require(throws: PostgresError.self) { try connection.query("SELEC 1") }
        #expect(syntax.kind == .other && syntax.sqlState == "42601")
    }

    @Test func cancelsAStatementThatOutlivesTheStatementTimeout() throws {
        var settings = try TestPostgres.shared().createDatabase()
        settings.statementTimeout = .milliseconds(200)
        let connection = try PostgresConnection(settings: settings)
        let error = try #require(throws: PostgresError.self) { try connection.query("SELECT pg_sleep(30)") }
        #expect(error.kind == .timeout)
        #expect(error.sqlState == "57014")
        #expect(try connection.query("SELECT 1").rows.first?.int(0) == 1)
    }

    /// A session that stops inside a transaction (its replica frozen, or cut off without the
    /// connection being closed) while holding a row lock, as the writer holds the resource
    /// version's row, is ended by the server after `idleInTransactionTimeout`, so that the other
    /// replicas' writes go on instead of waiting until PostgreSQL notices the dead client.
    @Test func theServerEndsASessionLeftIdleInATransaction() throws {
        var settings = try TestPostgres.shared().createDatabase()
        settings.idleInTransactionTimeout = .milliseconds(500)
        let stalled = try PostgresConnection(settings: settings)
        let other = try PostgresConnection(settings: settings)
        try stalled.execute("CREATE TABLE version (n bigint)")
        try stalled.execute("INSERT INTO version VALUES (1)")
        try stalled.execute("BEGIN")
        try stalled.query("SELECT n FROM version FOR UPDATE")
        // The lock is given up once the stalled session is ended (well inside the 30 s statement timeout).
        let started = ContinuousClock.now
        try other.transaction { try other.query("UPDATE version SET n = 2") }
        #expect(ContinuousClock.now - started < .seconds(20))
        let error = try #require(throws: PostgresError.self) { try stalled.query("SELECT 1") }
        #expect(error.kind == .connection, "\(error)")
    }

    /// PostgreSQL's text cannot hold NUL: such a parameter is refused, never cut short.
    @Test func aTextParameterWithANULIsRefusedNotCut() throws {
        let connection = try PostgresConnection(settings: try TestPostgres.shared().createDatabase())
        try connection.execute("CREATE TABLE t (value text)")
        let error = try #require(throws: PostgresError.self) { try connection.query("INSERT INTO t VALUES ($1)", [.text("a\u{0}b")]) }
        #expect(error.message.contains("NUL"), "\(error)")
        #expect(try connection.query("SELECT count(*) FROM t").rows[0].int(0) == 0)
    }

    @Test func commitsAndRollsBackTransactions() throws {
        let connection = try PostgresConnection(settings: try TestPostgres.shared().createDatabase())
        try connection.execute("CREATE TABLE t (n bigint CHECK (n > 0))")
        try connection.transaction { try connection.query("INSERT INTO t VALUES (1)") }
        #expect(throws: PostgresError.self) {
            try connection.transaction {
                try connection.query("INSERT INTO t VALUES (2)")
                try connection.query("INSERT INTO t VALUES (-1)")
            }
        }
        #expect(!connection.inTransaction)
        // A failure swallowed inside the transaction still makes COMMIT fail rather than pass silently.
        #expect(throws: PostgresError.self) {
            try connection.transaction {
                _ = try? connection.query("INSERT INTO t VALUES (-1)")
            }
        }
        #expect(try connection.query("SELECT n FROM t ORDER BY n").rows.map { try $0.int(0) } == [1])
    }

    /// Write skew between two serializable transactions: the second to commit is refused with
    /// 40001 and may be retried.
    @Test func reportsASerializationFailure() throws {
        let settings = try TestPostgres.shared().createDatabase()
        let first = try PostgresConnection(settings: settings)
        let second = try PostgresConnection(settings: settings)
        try first.execute("CREATE TABLE doctors (name text PRIMARY KEY, on_call boolean NOT NULL)")
        try first.execute("INSERT INTO doctors VALUES ('a', true), ('b', true)")
        try first.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        try second.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        #expect(try first.query("SELECT count(*) FROM doctors WHERE on_call").rows[0].int(0) == 2)
        #expect(try second.query("SELECT count(*) FROM doctors WHERE on_call").rows[0].int(0) == 2)
        try first.query("UPDATE doctors SET on_call = false WHERE name = 'a'")
        try second.query("UPDATE doctors SET on_call = false WHERE name = 'b'")
        try first.execute("COMMIT")
        let error = try #require(throws: PostgresError.self) { try second.execute("COMMIT") }
        #expect(error.kind == .serialization)
        #expect(error.sqlState == "40001")
        #expect(error.isRetryable)
    }

    @Test func failsFastWhenNothingListens() throws {
        let server = try TestPostgres.shared()
        var settings = try server.settings()
        settings.port = server.port == 65535 ? 65534 : server.port + 1
        let error = try #require(throws: PostgresError.self) { try PostgresConnection(settings: settings) }
        #expect(error.kind == .connection)
        #expect(error.sqlState == nil)
    }

    /// Of several servers, the first that answers (and, with target_session_attrs=read-write,
    /// accepts writes) is used.
    @Test func triesSeveralHostsInOrder() throws {
        let server = try TestPostgres.shared()
        let socket = server.directory.replacingOccurrences(of: "/", with: "%2F")
        let settings = try PostgresConnectionSettings(
            url: "postgresql://postgres@%2Fnonexistent:\(server.port),\(socket):\(server.port)/postgres?target_session_attrs=read-write",
            environment: [:])
        let connection = try PostgresConnection(settings: settings)
        #expect(try connection.query("SELECT pg_is_in_recovery()").rows[0].bool(0) == false)
    }

    /// sslmode reaches libpq: verify-full with the server's certificate gives an encrypted
    /// session, verify-full with another root is refused, disable gives a plain one.
    @Test func usesTLSAsSSLModeSays() throws {
        let server = try TestPostgres.shared()
        let base = "postgresql://postgres:\(TestPostgres.password)@127.0.0.1:\(server.port)/postgres"
        let encrypted = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        let verified = try PostgresConnectionSettings(url: base + "?sslmode=verify-full&sslrootcert=\(server.certificate)", environment: [:])
        #expect(try PostgresConnection(settings: verified).query(encrypted).rows[0].bool(0))
        let plain = try PostgresConnectionSettings(url: base + "?sslmode=disable", environment: [:])
        #expect(try PostgresConnection(settings: plain).query(encrypted).rows[0].bool(0) == false)
        let otherRoot = server.directory + "/other-root-\(UUID().uuidString).pem"
        try String(contentsOfFile: "/etc/ssl/certs/ca-certificates.crt", encoding: .utf8).write(toFile: otherRoot, atomically: true, encoding: .utf8)
        let untrusted = try PostgresConnectionSettings(url: base + "?sslmode=verify-full&sslrootcert=\(otherRoot)", environment: [:])
        let error = try #require(throws: PostgresError.self) { try PostgresConnection(settings: untrusted) }
        #expect(error.kind == .connection)
        #expect(error.message.contains("certificate"))
    }

    /// TCP logins need the password (SCRAM-SHA-256), wherever it comes from; a wrong one is a
    /// connection error with SQLSTATE 28P01 whose message does not contain it.
    @Test func logsInOverTCPWithThePasswordFromTheURLAFileOrPGPASSWORD() throws {
        let server = try TestPostgres.shared()
        let url = "postgresql://postgres@127.0.0.1:\(server.port)/postgres?sslmode=disable"
        let fromURL = try PostgresConnectionSettings(
            url: "postgresql://postgres:\(TestPostgres.password)@127.0.0.1:\(server.port)/postgres?sslmode=disable", environment: [:])
        #expect(try PostgresConnection(settings: fromURL).query("SELECT current_user").rows[0].text(0) == "postgres")
        let file = server.directory + "/client-password-\(UUID().uuidString)"
        try (TestPostgres.password + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let fromFile = try PostgresConnectionSettings(url: url, passwordFile: file, environment: [:])
        #expect(try PostgresConnection(settings: fromFile).query("SELECT 1").rows.count == 1)
        let fromEnvironment = try PostgresConnectionSettings(url: url, environment: ["PGPASSWORD": TestPostgres.password])
        #expect(try PostgresConnection(settings: fromEnvironment).query("SELECT 1").rows.count == 1)
        let wrong = try PostgresConnectionSettings(url: url, environment: ["PGPASSWORD": "wrong-password-xyz"])
        let error = try #require(throws: PostgresError.self) { try PostgresConnection(settings: wrong) }
        #expect(error.kind == .connection)
        #expect(error.message.contains("password authentication failed"))
        #expect(!error.description.contains("wrong-password-xyz"))
    }
}
