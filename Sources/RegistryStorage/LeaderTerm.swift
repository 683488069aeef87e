public import Foundation

/// One term of leadership of a leader lease, as its holder sees it (issue 16: one replica does
/// the background work). The stores' leases hand it out (`PostgresLeaderLease`, and the
/// `LocalLease` of an SQLite file); writes made for the term carry it as a fencing token.
public struct LeaderTerm: Sendable, Equatable {
    public var name: String
    public var holder: String
    /// Grows by one with every new term of this lease; writes made for the term carry it (see
    /// `PostgresLeaderLease.fence`).
    public var generation: Int
    /// Until when the holder may act as leader, on its own monotonic clock: the instant it sent
    /// the acquire or renew, plus the TTL, minus the safety margin. The database's expiry is
    /// never earlier (it adds the TTL to its `now()`, taken after the request was sent), so a
    /// holder that stops at this instant has stopped before anyone else can take the lease.
    public var validUntil: ContinuousClock.Instant

    public init(name: String, holder: String, generation: Int, validUntil: ContinuousClock.Instant) {
        self.name = name
        self.holder = holder
        self.generation = generation
        self.validUntil = validUntil
    }

    /// Whether the holder may still act as leader now.
    public var isValid: Bool { ContinuousClock.now < validUntil }
}

/// Who holds a lease, as the store says now (for `/readyz` and `GET /v1/leader`).
public struct LeaderLeaseStatus: Sendable, Equatable {
    public var holder: String
    public var generation: Int
    /// False once the TTL ran out without a renewal (or the term was released): nobody leads
    /// until someone acquires it.
    public var isHeld: Bool
    /// Milliseconds until the lease expires by the store's clock (negative: expired).
    public var expiresInMilliseconds: Int
    /// When the current (or last) term began, by the store's clock.
    public var acquiredAt: Date?

    public init(holder: String, generation: Int, isHeld: Bool, expiresInMilliseconds: Int, acquiredAt: Date? = nil) {
        self.holder = holder
        self.generation = generation
        self.isHeld = isHeld
        self.expiresInMilliseconds = expiresInMilliseconds
        self.acquiredAt = acquiredAt
    }
}
