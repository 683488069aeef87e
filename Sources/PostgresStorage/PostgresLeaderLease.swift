import Foundation
public import RegistryStorage

/// A leader lease with a TTL in the `leader_lease` table (migration 0008), so that of several
/// replicas sharing one database exactly one does the background work (issue 16: "a lease row
/// with compare-and-set"). Every change is one statement that compares and sets under the row's
/// lock, and every expiry is computed with the database's clock (`now()`), the one clock all
/// replicas share.
///
/// - `acquire()` starts a new term if the lease is free, expired or last held by this holder
///   (an earlier incarnation of it), incrementing the generation; otherwise returns nil.
/// - `renew(_:)` extends a term that is still current at the database; nil means it was lost.
/// - `release(_:)` ends a term at once, so another replica can take over without waiting.
/// - `fence(_:term:)`, inside the transaction of a write the background work makes, refuses the
///   write (`PostgresError.Kind.fenced`) unless the term is still current, and holds the lease
///   row until the write commits so that no new term can start in between.
///
/// The holder must stop its background work when `LeaderTerm.isValid` turns false, which
/// happens no later than the database's expiry (see `LeaderTerm.validUntil`); renew well before
/// (e.g. every third of the TTL, as client-go's leader election does with its renew deadline).
public final class PostgresLeaderLease: Sendable {
    public let name: String
    public let holder: String
    public let ttl: Duration
    /// Subtracted from the TTL on the holder's side, for clocks that run at slightly different
    /// rates. Default a tenth of the TTL.
    public let safetyMargin: Duration
    private let pool: PostgresConnectionPool

    /// - Parameters:
    ///   - holder: who this replica is; unique per process (e.g. pod name plus a random suffix).
    ///   - ttl: how long a term lasts without renewal (`--leader-lease-seconds`, default 15 s).
    public init(pool: PostgresConnectionPool, name: String = "background", holder: String, ttl: Duration = .seconds(15)) {
        precondition(ttl >= .milliseconds(100), "a lease TTL under 100 ms cannot be renewed in time")
        self.pool = pool
        self.name = name
        self.holder = holder
        self.ttl = ttl
        safetyMargin = ttl / 10
    }

    /// Starts a new term if the lease is free, has expired, or was last held by this holder;
    /// nil while another holder's term runs.
    public func acquire() throws(PostgresError) -> LeaderTerm? {
        let sent = ContinuousClock.now
        let rows = try run { connection throws(PostgresError) in
            try connection.query(
                """
                INSERT INTO leader_lease AS lease (name, holder, generation, acquired_at, renewed_at, expires_at)
                VALUES ($1, $2, 1, now(), now(), now() + make_interval(secs => $3::float8 / 1000))
                ON CONFLICT (name) DO UPDATE SET
                    holder = excluded.holder, generation = lease.generation + 1, acquired_at = now(), renewed_at = now(),
                    expires_at = excluded.expires_at
                WHERE lease.expires_at <= now() OR lease.holder = excluded.holder
                RETURNING generation
                """, [.text(name), .text(holder), .integer(PostgresConnectionSettings.milliseconds(ttl))]
            ).rows
        }
        guard let row = rows.first else { return nil }
        return LeaderTerm(name: name, holder: holder, generation: try row.int(0), validUntil: sent + ttl - safetyMargin)
    }

    /// Extends `term` by the TTL from now if it is still the current term at the database
    /// (same holder and generation, not expired); nil if it was lost (the holder must stop).
    public func renew(_ term: LeaderTerm) throws(PostgresError) -> LeaderTerm? {
        let sent = ContinuousClock.now
        let rows = try run { connection throws(PostgresError) in
            try connection.query(
                """
                UPDATE leader_lease SET renewed_at = now(), expires_at = now() + make_interval(secs => $4::float8 / 1000)
                WHERE name = $1 AND holder = $2 AND generation = $3 AND expires_at > now()
                RETURNING generation
                """, [.text(term.name), .text(term.holder), .integer(term.generation), .integer(PostgresConnectionSettings.milliseconds(ttl))]
            ).rows
        }
        guard !rows.isEmpty else { return nil }
        var renewed = term
        renewed.validUntil = sent + ttl - safetyMargin
        return renewed
    }

    /// Ends `term` now (if it is still current), so that another replica can acquire the lease
    /// at once; a later `acquire` by this holder starts a new term.
    public func release(_ term: LeaderTerm) throws(PostgresError) {
        _ = try run { connection throws(PostgresError) in
            try connection.query(
                "UPDATE leader_lease SET expires_at = now() WHERE name = $1 AND holder = $2 AND generation = $3 AND expires_at > now()",
                [.text(term.name), .text(term.holder), .integer(term.generation)])
        }
    }

    /// Who holds the lease, and since when, by the database's clock; nil if it was never acquired.
    public func status() throws(PostgresError) -> LeaderLeaseStatus? {
        let rows = try run { connection throws(PostgresError) in
            try connection.query(
                """
                SELECT holder, generation, expires_at > now(), floor(extract(epoch FROM expires_at - now()) * 1000)::bigint,
                    floor(extract(epoch FROM acquired_at) * 1000)::bigint
                FROM leader_lease WHERE name = $1
                """, [.text(name)]
            ).rows
        }
        guard let row = rows.first else { return nil }
        return LeaderLeaseStatus(
            holder: try row.text(0), generation: try row.int(1), isHeld: try row.bool(2), expiresInMilliseconds: try row.int(3),
            acquiredAt: Date(timeIntervalSince1970: Double(try row.int(4)) / 1000))
    }

    /// Inside the caller's transaction on `connection`: throws `PostgresError.Kind.fenced`
    /// unless `term` is the lease's current, unexpired term, and keeps the lease row locked
    /// (`FOR SHARE`) until that transaction ends, so that a new term cannot begin before the
    /// write commits. Writes of the background work call this first.
    public static func fence(_ connection: PostgresConnection, term: LeaderTerm) throws(PostgresError) {
        guard connection.inTransaction else {
            throw PostgresError(kind: .other, message: "a fenced write must run inside a transaction")
        }
        let rows = try connection.query(fenceQuery, [.text(term.name)]).rows
        let lease = try rows.first.map { row throws(PostgresError) in (holder: try row.text(0), generation: try row.int(1), current: try row.bool(2))
        }
        if let refusal = Self.refusal(of: term, lease: lease) { throw PostgresError(kind: .fenced, message: refusal) }
    }

    /// The fence's read of the lease row, locked until the transaction ends.
    static let fenceQuery = "SELECT holder, generation, expires_at > now() FROM leader_lease WHERE name = $1 FOR SHARE"

    /// The fencing rule, for `fence` and the store's `PostgresDatabase.fence(term:)`: nil when
    /// `term` is the lease's current, unexpired term (`lease`: the row `fenceQuery` read, nil
    /// when the lease was never acquired), else why a write for it is refused.
    static func refusal(of term: LeaderTerm, lease: (holder: String, generation: Int, current: Bool)?) -> String? {
        guard let lease else { return "lease \(term.name): term \(term.generation) of \(term.holder) is no longer current (never acquired)" }
        guard lease.holder != term.holder || lease.generation != term.generation || !lease.current else { return nil }
        return
            "lease \(term.name): term \(term.generation) of \(term.holder) is no longer current (generation \(lease.generation) held by \(lease.holder)\(lease.current ? "" : ", expired"))"
    }

    private func run<T>(_ body: (PostgresConnection) throws(PostgresError) -> T) throws(PostgresError) -> T {
        do {
            return try pool.withConnection { connection in try body(connection) }
        } catch let error as PostgresError {
            throw error
        } catch {
            throw PostgresError(kind: .other, message: "\(error)")
        }
    }
}
