public import PostgresStorage
public import RegistryStorage

/// A lease with a TTL that at most one holder holds at a time: what `LeaderElector` campaigns
/// for (issue 16). Shaped after `PostgresLeaderLease`, which conforms as it is; `LocalLease`
/// is the lease of a store only one process can open (SQLite).
///
/// Rules every implementation keeps (those of `PostgresLeaderLease`):
/// - `acquire()` starts a new term (generation + 1) when the lease is free, expired or last held
///   by this `holder`; nil while another holder's term runs.
/// - `renew(_:)` extends a term that is still current, with a later `validUntil`; nil when the
///   term was lost (the holder must stop at once).
/// - `release(_:)` ends the term now, so another holder can acquire at once.
/// - `LeaderTerm.validUntil` is never later than the instant the store would give the lease to
///   someone else, on the holder's monotonic clock.
/// A thrown error says nothing about the term (the store could not be asked): the elector
/// retries until `validUntil`.
public protocol LeaderLease: Sendable {
    /// What `acquire`, `renew`, `release` and `status` throw when the store cannot answer.
    associatedtype Failure: Error
    /// Who this process is, unique per process (`--leader-identity`).
    var holder: String { get }
    /// How long a term lasts without a renewal (`--leader-lease-seconds`).
    var ttl: Duration { get }
    func acquire() throws(Failure) -> LeaderTerm?
    func renew(_ term: LeaderTerm) throws(Failure) -> LeaderTerm?
    func release(_ term: LeaderTerm) throws(Failure)
    /// Who holds the lease now; nil if it was never acquired.
    func status() throws(Failure) -> LeaderLeaseStatus?
}

extension PostgresLeaderLease: LeaderLease {
    public typealias Failure = PostgresError
}
