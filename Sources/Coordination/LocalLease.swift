import Foundation
public import RegistryStorage
import Synchronization

/// The lease of a store that one process alone can open: an SQLite file, which the server holds
/// with an exclusive `flock` for as long as it runs. Nobody else can compete, so the first
/// `acquire` starts term 1 at once and the term never ends before `release` (its `validUntil` is
/// beyond any process's life); a later `acquire` after a release starts the next generation.
///
/// `status()` reports the lease as held with `expiresInMilliseconds` equal to the TTL (it is
/// never allowed to run out) and `acquiredAt` the wall-clock time of the acquire.
public final class LocalLease: LeaderLease {
    public typealias Failure = Never
    public let name: String
    public let holder: String
    public let ttl: Duration

    private struct State {
        var generation = 0
        var held = false
        var acquiredAt: Date?
    }
    private let state = Mutex(State())

    /// A `validUntil` no process outlives (about a century of uptime).
    static let forever: Duration = .seconds(100 * 365 * 86_400)

    public init(name: String = "background", holder: String, ttl: Duration = .seconds(15)) {
        self.name = name
        self.holder = holder
        self.ttl = ttl
    }

    public func acquire() -> LeaderTerm? {
        let generation = state.withLock { state in
            if !state.held {
                state.generation += 1
                state.held = true
                state.acquiredAt = Date()
            }
            return state.generation
        }
        return LeaderTerm(name: name, holder: holder, generation: generation, validUntil: ContinuousClock.now + LocalLease.forever)
    }

    public func renew(_ term: LeaderTerm) -> LeaderTerm? {
        let current = state.withLock { $0.held && $0.generation == term.generation }
        guard current, term.holder == holder else { return nil }
        var renewed = term
        renewed.validUntil = ContinuousClock.now + LocalLease.forever
        return renewed
    }

    public func release(_ term: LeaderTerm) {
        state.withLock { state in
            if state.generation == term.generation { state.held = false }
        }
    }

    public func status() -> LeaderLeaseStatus? {
        let ttlMilliseconds = Int(ttl.components.seconds) * 1000 + Int(ttl.components.attoseconds / 1_000_000_000_000_000)
        return state.withLock { state in
            guard state.generation > 0 else { return nil }
            return LeaderLeaseStatus(
                holder: holder, generation: state.generation, isHeld: state.held, expiresInMilliseconds: state.held ? ttlMilliseconds : 0,
                acquiredAt: state.acquiredAt)
        }
    }
}
