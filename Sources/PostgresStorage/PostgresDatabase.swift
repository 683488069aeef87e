public import RegistryStorage

/// The store for several replicas: `ServiceStore(database:)` on a PostgreSQL database, which
/// every replica shares (`isShared`). The store's SQL runs as it does on SQLite (see
/// `SQLConnection`): parameters are translated from `?`/`?N` to `$N`, every write transaction
/// first locks the row of the global resource version (so writes of all replicas commit one
/// after the other, in resource-version order, and a read-modify-write sees the latest commit
/// of any replica), and reads of several statements run in one `REPEATABLE READ` snapshot.
public struct PostgresDatabase: SQLDatabase {
    public let settings: PostgresConnectionSettings
    /// The most read connections a store on this database opens at once
    /// (`--database-max-connections`), besides its writer; nil: no bound.
    public var maximumReadConnections: Int? = PostgresDatabase.defaultReadConnectionLimit
    /// 16: with the writer and the leader lease's 2, 19 connections per replica.
    public static let defaultReadConnectionLimit = 16

    /// The database at `settings` as it is: nothing is connected to or migrated (for a tool
    /// that reads a database its servers keep up to date, such as `migrate-store`'s source).
    public init(existing settings: PostgresConnectionSettings) {
        self.settings = settings
    }

    /// Connects once and brings the schema up to date (`PostgresMigrator`, which lets replicas
    /// starting at once take turns).
    ///
    /// - Throws: `StoreError.fault` (`.unavailable` when the server cannot be reached),
    ///   `StoreError.migration` when the schema cannot be brought up to date or is newer than
    ///   this binary.
    public static func open(
        settings: PostgresConnectionSettings, migrations: [Migration], maximumReadConnections: Int = PostgresDatabase.defaultReadConnectionLimit
    ) throws(StoreError) -> PostgresDatabase {
        let connection: PostgresConnection
        do {
            connection = try PostgresConnection(settings: settings)
        } catch {
            throw .fault(error.storageFault)
        }
        do {
            try PostgresMigrator(migrations: migrations).migrate(connection)
        } catch {
            if case .failed(_, let failure as PostgresError) = error, failure.storageFault.isCondition { throw .fault(failure.storageFault) }
            throw .migration(error)
        }
        var database = PostgresDatabase(existing: settings)
        database.maximumReadConnections = max(1, maximumReadConnections)
        return database
    }

    public func connect(readOnly: Bool) throws -> any SQLConnection {
        try PostgresSQLConnection(settings: settings, readOnly: readOnly)
    }

    public var isShared: Bool { true }

    /// The URL without its password.
    public var description: String { settings.description }
}

extension PostgresError: DatabaseError {
    /// How the API and readiness see the failure: a server that cannot be reached (or a pool
    /// without a free connection) is `.unavailable` (503 with `Retry-After`), a lock or
    /// serialization conflict `.busy`, a standby or read-only transaction `.readOnly`, a full
    /// disk (SQLSTATE 53100) `.diskFull` (507).
    public var storageFault: StorageFault {
        let reason: StorageFault.Reason =
            switch kind {
            case .connection, .unavailable: .unavailable
            case .timeout, .serialization: .busy
            case .readOnly: .readOnly
            case .insufficientResources: sqlState == "53100" ? .diskFull : .unavailable
            case .uniqueViolation, .constraintViolation, .fenced, .decoding, .other: .internal
            }
        return StorageFault(reason: reason, message: description)
    }
}

/// One libpq connection speaking the store's SQL (see `SQLConnection`). A connection that
/// broke is replaced (see `perform`), at most once per `reconnectBackoff`, so that an outage
/// answers at once with `.unavailable` rather than making every request wait for a connect
/// timeout.
final class PostgresSQLConnection: SQLConnection {
    private let settings: PostgresConnectionSettings
    private let readOnly: Bool
    private var connection: PostgresConnection?
    private var nextAttempt = ContinuousClock.now
    private var translated: [String: String] = [:]
    var changes = 0
    /// For `changeMark`: rows of statements other than `SELECT`, `execute`s and failed statements.
    private var changeCount = 0
    var changeMark: Int? { changeCount }
    static let reconnectBackoff: Duration = .seconds(1)

    init(settings: PostgresConnectionSettings, readOnly: Bool) throws(PostgresError) {
        self.settings = settings
        self.readOnly = readOnly
        connection = try Self.open(settings, readOnly: readOnly)
    }

    private static func open(_ settings: PostgresConnectionSettings, readOnly: Bool) throws(PostgresError) -> PostgresConnection {
        let connection = try PostgresConnection(settings: settings)
        if readOnly { try connection.execute("SET default_transaction_read_only = on") }
        return connection
    }

    /// Runs `body` on the connection: the current one, or a new one when there is none (at
    /// most once per `reconnectBackoff`). A connection that fails with a connection error is
    /// dropped; when no transaction was open, `body` (a read, or a BEGIN) runs once more on a
    /// new connection, so a server restart costs a reader no failed request. Inside a
    /// transaction the failure fails the transaction: nothing is retried that may have been
    /// applied. (No probe of the socket before each statement: that would cost every read two
    /// system calls.)
    private func perform<T>(_ body: (PostgresConnection) throws(PostgresError) -> T) throws(PostgresError) -> T {
        let inTransaction = connection?.inTransaction ?? false
        do {
            return try body(try live())
        } catch  where error.kind == .connection {
            connection = nil
            guard !inTransaction else { throw error }
            return try body(try live())
        }
    }

    /// The current connection, or a new one.
    private func live() throws(PostgresError) -> PostgresConnection {
        if let connection { return connection }
        guard ContinuousClock.now >= nextAttempt else {
            throw PostgresError(kind: .unavailable, message: "the connection to \(settings) was lost; reconnecting shortly")
        }
        do {
            let fresh = try Self.open(settings, readOnly: readOnly)
            connection = fresh
            return fresh
        } catch {
            nextAttempt = ContinuousClock.now.advanced(by: Self.reconnectBackoff)
            throw error
        }
    }

    func execute(_ sql: String) throws {
        changeCount &+= 1
        let result = try perform { connection throws(PostgresError) in try connection.execute(sql) }
        // PostgreSQL answers COMMIT of a failed transaction with a rollback, not an error.
        if sql == "COMMIT" && result.command != "COMMIT" {
            throw PostgresError(kind: .other, message: "the transaction had failed and was rolled back at COMMIT (\(result.command))", sql: sql)
        }
    }

    func prepare(_ sql: String) throws -> any SQLStatement {
        let text: String
        if let known = translated[sql] {
            text = known
        } else {
            text = Self.translate(sql)
            // SQL that names ids (retention's `IN (…)` lists) is new each time: start over
            // rather than grow without bound.
            if translated.count >= 256 { translated.removeAll() }
            translated[sql] = text
        }
        return PostgresSQLStatement(sql: text, connection: self)
    }

    func run(_ sql: String, _ parameters: [PostgresValue]) throws(PostgresError) -> PostgresResult {
        let result: PostgresResult
        do {
            result = try perform { connection throws(PostgresError) in try connection.query(sql, parameters) }
        } catch {
            changeCount &+= 1
            throw error
        }
        changes = result.affectedRows
        if !result.command.hasPrefix("SELECT") { changeCount &+= max(1, result.affectedRows) }
        return result
    }

    func resetStatements() {}

    var isInTransaction: Bool { connection?.inTransaction ?? false }

    /// `BEGIN`, then the row of the global resource version `FOR UPDATE`: every write of every
    /// replica takes it first, so write transactions run one after another (as SQLite's one
    /// writer does) and never deadlock on each other's rows.
    func beginWrite() throws {
        try execute("BEGIN")
        _ = try run("SELECT resource_version FROM watch_state WHERE id = 1 FOR UPDATE", [])
    }

    func beginRead() throws {
        try execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    }

    /// Rewrites a column of the resource-version row with its own value (a real write, which a
    /// standby, a read-only transaction or a full disk refuses).
    func probeWrite() throws {
        _ = try run("UPDATE watch_state SET compacted = compacted WHERE id = 1", [])
    }

    func sizeInBytes() throws -> Int {
        let result = try run("SELECT pg_database_size(current_database())", [])
        return result.rows.first.flatMap { $0.optionalText(0) }.flatMap { Int($0) } ?? 0
    }

    func tableNames() throws -> [String] {
        try run(
            """
            SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
            ORDER BY table_name COLLATE "C"
            """, []
        ).rows.map { try $0.text(0) }
    }

    /// `setval` of the sequence behind each identity or serial column of `table`
    /// (`pg_get_serial_sequence`) to the column's largest value, so that the next generated
    /// value is one more; a table without rows leaves its sequences as they are.
    func advanceGeneratedKeys(of table: String) throws {
        let quotedTable = StoreCopy.quoted(table)
        let columns = try run(
            """
            SELECT column_name FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = $1 AND pg_get_serial_sequence($2, column_name) IS NOT NULL
            ORDER BY ordinal_position
            """, [.text(table), .text(quotedTable)]
        ).rows.map { try $0.text(0) }
        for column in columns {
            _ = try run(
                "SELECT setval(pg_get_serial_sequence($1, $2), max(\(StoreCopy.quoted(column)))) FROM \(quotedTable) HAVING count(*) > 0",
                [.text(quotedTable), .text(column)])
        }
    }

    /// The store's SQLite-style parameters as PostgreSQL's: `?N` becomes `$N`, and a bare `?`
    /// the next number after the largest used so far (SQLite's rule); nothing inside quotes
    /// or comments changes.
    static func translate(_ sql: String) -> String {
        var output = ""
        output.reserveCapacity(sql.utf8.count + 8)
        var largest = 0
        var characters = Array(sql)[...]
        while let character = characters.popFirst() {
            switch character {
            case "'", "\"":
                output.append(character)
                while let next = characters.popFirst() {
                    output.append(next)
                    if next == character { break }
                }
            case "-" where characters.first == "-":
                output.append(character)
                while let next = characters.popFirst() {
                    output.append(next)
                    if next == "\n" { break }
                }
            case "?":
                var digits = ""
                while let next = characters.first, next.isASCII, next.isNumber {
                    digits.append(next)
                    characters.removeFirst()
                }
                let number = Int(digits) ?? largest + 1
                largest = max(largest, number)
                output += "$\(number)"
            default:
                output.append(character)
            }
        }
        return output
    }
}

@available(*, unavailable)
extension PostgresSQLConnection: Sendable {}

/// A statement of `PostgresSQLConnection`: run with its parameters (`PQexecParams`) at the
/// first `step`, whose rows are then read one by one.
final class PostgresSQLStatement: SQLStatement {
    private let sql: String
    private unowned let connection: PostgresSQLConnection
    private var parameters: [PostgresValue] = []
    private var rows: [PostgresRow]?
    private(set) var columnNames: [String] = []
    private var position = -1

    init(sql: String, connection: PostgresSQLConnection) {
        self.sql = sql
        self.connection = connection
    }

    func reset() {
        parameters.removeAll(keepingCapacity: true)
        rows = nil
        position = -1
    }

    func bind(at index: Int32, _ value: SQLValue) throws {
        let slot = Int(index) - 1
        guard slot >= 0 else { throw PostgresError(kind: .other, message: "parameter index \(index) out of range", sql: sql) }
        while parameters.count <= slot { parameters.append(.null) }
        parameters[slot] =
            switch value {
            case .null: .null
            case .integer(let number): .integer(number)
            case .text(let text): .text(text)
            case .blob(let bytes): .bytes(bytes)
            }
    }

    func step() throws -> Bool {
        if rows == nil {
            let result = try connection.run(sql, parameters)
            rows = result.rows
            columnNames = result.columns
            position = -1
        }
        position += 1
        return position < rows?.count ?? 0
    }

    private var row: PostgresRow? {
        guard let rows, position >= 0, position < rows.count else { return nil }
        return rows[position]
    }

    func int(_ column: Int32) -> Int {
        guard let text = row?.optionalText(Int(column)) else { return 0 }
        if let number = Int(text) { return number }
        return text == "t" ? 1 : 0
    }

    func text(_ column: Int32) -> String {
        row?.optionalText(Int(column)) ?? ""
    }

    func blob(_ column: Int32) -> [UInt8] {
        guard let row, let bytes = try? row.optionalBytes(Int(column)) else { return [] }
        return bytes
    }

    /// By the column's type: `bytea` as bytes, `int2`/`int4`/`int8` as an integer, `bool` as
    /// 1 or 0, anything else as its text.
    func value(_ column: Int32) -> SQLValue {
        guard let row, let text = row.optionalText(Int(column)) else { return .null }
        switch row.types[Int(column)] {
        case PostgresConnection.byteaType:
            // The session's output is hex (`bytea_output=hex`), which `optionalBytes` decodes.
            guard let bytes = try? row.optionalBytes(Int(column)) else { return .text(text) }
            return .blob(bytes)
        case Self.int8Type, Self.int2Type, Self.int4Type: return Int(text).map { .integer($0) } ?? .text(text)
        case Self.boolType: return .integer(text == "t" ? 1 : 0)
        default: return .text(text)
        }
    }

    /// Type OIDs (`pg_type`) of the integer and boolean types.
    static let boolType: UInt32 = 16
    static let int8Type: UInt32 = 20
    static let int2Type: UInt32 = 21
    static let int4Type: UInt32 = 23
}

@available(*, unavailable)
extension PostgresSQLStatement: Sendable {}

extension PostgresDatabase {
    /// The fence of the background work for `term` (see `WriteFence`): inside each fenced
    /// write's transaction, refuses the write (`StoreError.fenced`) unless `term` is the lease's
    /// current, unexpired term, and holds the lease row (`FOR SHARE`) until the write commits, so
    /// that no new term can begin in between: `PostgresLeaderLease.fence`'s query and rule, on the
    /// store's own connection.
    public static func fence(term: LeaderTerm) -> WriteFence {
        WriteFence { connection in
            let row = try connection.prepare(PostgresLeaderLease.fenceQuery)
            try row.bind(.text(term.name))
            let lease = try row.step() ? (holder: row.text(0), generation: row.int(1), current: row.int(2) == 1) : nil
            connection.resetStatements()
            if let refusal = PostgresLeaderLease.refusal(of: term, lease: lease) { throw StoreError.fenced(refusal) }
        }
    }
}
