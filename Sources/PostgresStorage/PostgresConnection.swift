internal import CLibPQ

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// A value sent as a query parameter (`$1`, `$2`, …).
public enum PostgresValue: Sendable, Equatable {
    case null
    case text(String)
    case integer(Int)
    case boolean(Bool)
    case double(Double)
    /// Sent in binary, for `bytea` columns.
    case bytes([UInt8])
}

/// One row of a result, copied out of libpq: the text form of each column (nil for NULL) and the
/// column's type, read through typed accessors that throw `PostgresError.Kind.decoding`.
public struct PostgresRow: Sendable {
    public let columns: [String]
    let values: [String?]
    let types: [UInt32]

    public var count: Int { values.count }

    public func isNull(_ index: Int) -> Bool { values[index] == nil }

    /// The column's text, or nil for NULL.
    public func optionalText(_ index: Int) -> String? { values[index] }

    public func text(_ index: Int) throws(PostgresError) -> String {
        guard let value = values[index] else { throw nullError(index) }
        return value
    }

    public func optionalInt(_ index: Int) throws(PostgresError) -> Int? {
        guard let value = values[index] else { return nil }
        guard let number = Int(value) else { throw decodingError(index, "an integer") }
        return number
    }

    public func int(_ index: Int) throws(PostgresError) -> Int {
        guard let number = try optionalInt(index) else { throw nullError(index) }
        return number
    }

    public func optionalDouble(_ index: Int) throws(PostgresError) -> Double? {
        guard let value = values[index] else { return nil }
        guard let number = Double(value) else { throw decodingError(index, "a number") }
        return number
    }

    public func double(_ index: Int) throws(PostgresError) -> Double {
        guard let number = try optionalDouble(index) else { throw nullError(index) }
        return number
    }

    public func bool(_ index: Int) throws(PostgresError) -> Bool {
        switch values[index] {
        case "t": return true
        case "f": return false
        case nil: throw nullError(index)
        default: throw decodingError(index, "a boolean")
        }
    }

    /// A `bytea` column (hex output, `\x…`), or nil for NULL.
    public func optionalBytes(_ index: Int) throws(PostgresError) -> [UInt8]? {
        guard let value = values[index] else { return nil }
        guard types[index] == PostgresConnection.byteaType, value.hasPrefix("\\x"), value.utf8.count % 2 == 0 else {
            throw decodingError(index, "bytea")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(value.utf8.count / 2 - 1)
        var high: UInt8?
        for character in value.utf8.dropFirst(2) {
            let nibble: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = character - UInt8(ascii: "A") + 10
            default: throw decodingError(index, "bytea")
            }
            if let first = high {
                bytes.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return bytes
    }

    public func bytes(_ index: Int) throws(PostgresError) -> [UInt8] {
        guard let bytes = try optionalBytes(index) else { throw nullError(index) }
        return bytes
    }

    private func nullError(_ index: Int) -> PostgresError {
        PostgresError(kind: .decoding, message: "column \(columns[index]) is NULL")
    }

    private func decodingError(_ index: Int, _ expected: String) -> PostgresError {
        PostgresError(kind: .decoding, message: "column \(columns[index]) (type oid \(types[index])) is not \(expected)")
    }
}

/// What a statement returned: its rows and how many rows it changed.
public struct PostgresResult: Sendable {
    /// The names of the result's columns (also when it has no rows).
    public var columns: [String]
    public var rows: [PostgresRow]
    /// Rows inserted, updated, deleted, selected or copied (`PQcmdTuples`); 0 for other commands.
    public var affectedRows: Int
    /// The command tag, e.g. `INSERT 0 1`, `COMMIT` or `ROLLBACK`.
    public var command: String
}

/// Transaction isolation levels (https://www.postgresql.org/docs/15/transaction-iso.html).
public enum PostgresIsolation: String, Sendable {
    case readCommitted = "READ COMMITTED"
    case repeatableRead = "REPEATABLE READ"
    case serializable = "SERIALIZABLE"
}

/// One libpq connection (`PGconn`), used synchronously: a call blocks the calling thread until
/// the server answers, which fits the server's worker threads. Not thread-safe: its owner (the
/// pool) gives it to one thread at a time. Every session runs with the settings'
/// `statement_timeout`, UTC as its time zone and hex `bytea` output.
public final class PostgresConnection {
    static let byteaType: UInt32 = 17
    private let handle: OpaquePointer

    /// Connects, waiting at most the settings' connect timeout.
    public init(settings: PostgresConnectionSettings) throws(PostgresError) {
        let pairs = try settings.connectionParameters()
        let connection = Self.connect(pairs)
        guard let connection else { throw PostgresError(kind: .connection, message: "libpq could not allocate a connection") }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(connection))
            PQfinish(connection)
            throw PostgresError(kind: .connection, message: "cannot connect to \(settings): \(message)")
        }
        CLibPQ_silenceNotices(connection)
        handle = connection
    }

    private static func connect(_ pairs: [(String, String)]) -> OpaquePointer? {
        var keywords = pairs.map { strdup($0.0) }
        var values = pairs.map { strdup($0.1) }
        keywords.append(nil)
        values.append(nil)
        defer {
            for pointer in keywords { free(pointer) }
            for pointer in values { free(pointer) }
        }
        return keywords.withUnsafeBufferPointer { keywordBuffer in
            values.withUnsafeBufferPointer { valueBuffer in
                keywordBuffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { keywordPointers in
                    valueBuffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { valuePointers in
                        PQconnectdbParams(keywordPointers.baseAddress, valuePointers.baseAddress, 0)
                    }
                }
            }
        }
    }

    deinit {
        PQfinish(handle)
    }

    /// The server process serving this connection (`pg_backend_pid()`).
    public var backendPID: Int { Int(PQbackendPID(handle)) }

    /// Whether the connection can still be used, checked without a round trip: reads whatever the
    /// server sent meanwhile (a server that shuts down or ends the session sends an error, then
    /// closes the socket: the first read takes the message, the second sees the close) and says
    /// false if the connection is broken or was left inside a transaction.
    public var isUsable: Bool {
        guard PQstatus(handle) == CONNECTION_OK, PQconsumeInput(handle) == 1, PQconsumeInput(handle) == 1,
            PQstatus(handle) == CONNECTION_OK
        else { return false }
        return PQtransactionStatus(handle) == PQTRANS_IDLE
    }

    /// Whether a transaction is open on this connection (possibly failed).
    public var inTransaction: Bool {
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// Runs one statement with `$1`, `$2`, … bound to `parameters` (never interpolated into the
    /// SQL), and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) throws(PostgresError) -> PostgresResult {
        var types: [UInt32] = []
        var formats: [Int32] = []
        var lengths: [Int32] = []
        var buffers: [UnsafeMutablePointer<CChar>?] = []
        defer { for buffer in buffers { free(buffer) } }
        for parameter in parameters {
            switch parameter {
            case .null:
                types.append(0)
                formats.append(0)
                lengths.append(0)
                buffers.append(nil)
            case .text(let text):
                // PostgreSQL's text cannot hold NUL, and a C string would silently end there.
                guard !text.utf8.contains(0) else {
                    throw PostgresError(
                        kind: .other, message: "a text parameter holds a NUL character, which PostgreSQL's text cannot store", sql: sql)
                }
                types.append(0)
                formats.append(0)
                lengths.append(0)
                buffers.append(strdup(text))
            case .integer(let number):
                types.append(20)
                formats.append(0)
                lengths.append(0)
                buffers.append(strdup(String(number)))
            case .boolean(let flag):
                types.append(16)
                formats.append(0)
                lengths.append(0)
                buffers.append(strdup(flag ? "t" : "f"))
            case .double(let number):
                types.append(701)
                formats.append(0)
                lengths.append(0)
                // PostgreSQL spells the special values Infinity, -Infinity and NaN.
                let text = number.isNaN ? "NaN" : number.isInfinite ? (number < 0 ? "-Infinity" : "Infinity") : String(number)
                buffers.append(strdup(text))
            case .bytes(let bytes):
                types.append(Self.byteaType)
                formats.append(1)
                lengths.append(Int32(bytes.count))
                let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
                bytes.withUnsafeBufferPointer { source in
                    source.withMemoryRebound(to: CChar.self) { characters in
                        if let base = characters.baseAddress { buffer.initialize(from: base, count: bytes.count) }
                    }
                }
                buffers.append(buffer)
            }
        }
        let result = buffers.withUnsafeBufferPointer { bufferPointer in
            bufferPointer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { values in
                PQexecParams(handle, sql, Int32(parameters.count), types, values.baseAddress, lengths, formats, 0)
            }
        }
        return try consume(result, sql: sql)
    }

    /// Runs one or more statements separated by `;` without parameters (the simple query
    /// protocol), e.g. a migration file. Returns the last statement's result.
    @discardableResult
    public func execute(_ sql: String) throws(PostgresError) -> PostgresResult {
        try consume(PQexec(handle, sql), sql: sql)
    }

    /// Runs `body` in a transaction: commits if it returns, rolls back if it throws. A COMMIT
    /// that the server turns into a rollback (the transaction had failed) throws.
    @discardableResult
    public func transaction<T>(_ isolation: PostgresIsolation = .readCommitted, _ body: () throws -> T) throws -> T {
        try execute("BEGIN ISOLATION LEVEL \(isolation.rawValue)")
        let value: T
        do {
            value = try body()
        } catch {
            rollBackQuietly()
            throw error
        }
        let commit = try execute("COMMIT")
        guard commit.command == "COMMIT" else {
            throw PostgresError(kind: .other, message: "the transaction had failed and was rolled back at COMMIT (\(commit.command))")
        }
        return value
    }

    /// Rolls back after a failure that is already being reported; a failed rollback leaves the
    /// connection in a transaction or broken, which `isUsable` reports, so the pool discards it.
    func rollBackQuietly() {
        PQclear(PQexec(handle, "ROLLBACK"))
    }

    private func consume(_ result: OpaquePointer?, sql: String) throws(PostgresError) -> PostgresResult {
        guard let result else {
            throw PostgresError(kind: .connection, message: Self.trimmed(PQerrorMessage(handle)), sql: sql)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw error(from: result, sql: sql)
        }
        let columnCount = Int(PQnfields(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        let types = (0..<columnCount).map { PQftype(result, Int32($0)) }
        var rows: [PostgresRow] = []
        let rowCount = Int(PQntuples(result))
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            let values = (0..<columnCount).map { column -> String? in
                PQgetisnull(result, Int32(row), Int32(column)) == 1 ? nil : String(cString: PQgetvalue(result, Int32(row), Int32(column)))
            }
            rows.append(PostgresRow(columns: columns, values: values, types: types))
        }
        return PostgresResult(
            columns: columns, rows: rows, affectedRows: Int(String(cString: PQcmdTuples(result))) ?? 0, command: String(cString: PQcmdStatus(result)))
    }

    private func error(from result: OpaquePointer, sql: String) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let ascii = code.asciiValue, let pointer = PQresultErrorField(result, Int32(ascii)) else { return nil }
            return String(cString: pointer)
        }
        let sqlState = field("C")
        var message = field("M") ?? Self.trimmed(PQresultErrorMessage(result))
        if message.isEmpty { message = Self.trimmed(PQerrorMessage(handle)) }
        var kind = sqlState.map(PostgresError.kind(sqlState:)) ?? .connection
        if PQstatus(handle) != CONNECTION_OK { kind = .connection }
        return PostgresError(kind: kind, sqlState: sqlState, message: message, detail: field("D"), sql: sql)
    }

    private static func trimmed(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        var text = String(cString: pointer)
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}
