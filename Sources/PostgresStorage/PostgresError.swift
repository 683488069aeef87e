/// A failed PostgreSQL call: what kind of failure (so callers can retry, answer 409, 412 or 503),
/// the server's SQLSTATE when it sent one (https://www.postgresql.org/docs/15/errcodes-appendix.html),
/// its message and detail, and the start of the SQL involved.
public struct PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// No usable connection: the server cannot be reached, refused the login, closed the
        /// connection or is shutting down (class 08, 28, 57P01–57P03, or no SQLSTATE at all).
        case connection
        /// The statement ran longer than `statement_timeout`, or waited too long for a lock
        /// (57014 query_canceled, 55P03 lock_not_available).
        case timeout
        /// The transaction could not be serialised with a concurrent one and was rolled back;
        /// retrying it may succeed (40001 serialization_failure, 40P01 deadlock_detected).
        case serialization
        /// 23505 unique_violation.
        case uniqueViolation
        /// 23514 check_violation, 23502 not_null_violation, 23503 foreign_key_violation.
        case constraintViolation
        /// The server accepts no writes: a standby or a read-only transaction (25006).
        case readOnly
        /// The server ran out of disk, memory or connections (class 53).
        case insufficientResources
        /// The connection pool had no connection to give within its acquire timeout, or the
        /// database failed so recently that the pool is backing off before the next attempt.
        case unavailable
        /// A lease write was refused because its holder no longer holds the lease (see `PostgresLeaderLease`).
        case fenced
        /// A value could not be read as the type asked for.
        case decoding
        /// Anything else: usually a bug in the SQL rather than a condition of the database.
        case other
    }

    public var kind: Kind
    /// Five characters, e.g. `23505`; nil when the failure happened in the client.
    public var sqlState: String?
    public var message: String
    public var detail: String?
    public var sql: String?

    public init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil, sql: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.sql = sql
    }

    /// The kind of failure an SQLSTATE names.
    static func kind(sqlState: String) -> Kind {
        switch sqlState {
        case "23505": .uniqueViolation
        case "23502", "23503", "23514", "23P01": .constraintViolation
        case "40001", "40P01": .serialization
        case "57014", "55P03": .timeout
        case "25006": .readOnly
        case "57P01", "57P02", "57P03": .connection
        case _ where sqlState.hasPrefix("08") || sqlState.hasPrefix("28"): .connection
        case _ where sqlState.hasPrefix("53"): .insufficientResources
        default: .other
        }
    }

    /// Whether running the same transaction again may succeed (on a new connection if this one broke).
    public var isRetryable: Bool { [.serialization, .connection, .unavailable].contains(kind) }

    public var description: String {
        var text = "PostgreSQL \(kind.rawValue) error"
        if let sqlState { text += " \(sqlState)" }
        text += ": \(message)"
        if let detail { text += " (\(detail))" }
        if let sql { text += " (in: \(sql.prefix(200)))" }
        return text
    }
}
