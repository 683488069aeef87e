import Synchronization

/// Fencing of the background work's writes (issue 16): when several replicas share a database,
/// only the leader reconciles and prunes, and a replica that has lost its lease must not write
/// what it decided as leader. The leader election installs a fence (`ServiceStore.setFence`)
/// whose `check` runs first inside the transaction of every write the background work makes
/// (reconcile state, retention), and refuses the write by throwing unless this replica's term
/// is still current; it may also hold the lease so that no new term begins before the write
/// commits (see `PostgresDatabase.fence(term:)`). No fence (nil, the default) means no other
/// process can lead: one server on an SQLite file.
public struct WriteFence: Sendable {
    /// Runs first inside each fenced write's transaction; throws to refuse the write.
    public let check: @Sendable (any SQLConnection) throws -> Void

    public init(check: @escaping @Sendable (any SQLConnection) throws -> Void) {
        self.check = check
    }

    /// Refuses every fenced write (a replica that is not the leader).
    public static func notLeader(_ reason: String) -> WriteFence {
        WriteFence { _ in throw StoreError.fenced(reason) }
    }
}

extension ServiceStore {
    /// Installs the fence of the background work's writes (nil: none; see `WriteFence`).
    public func setFence(_ fence: WriteFence?) {
        self.fence.withLock { $0 = fence }
    }

    /// `write(_:)` for the background work: the current fence's check runs first in the same
    /// transaction, so a replica that is no longer the leader writes nothing.
    func fencedWrite<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) throws -> T {
        let fence = self.fence.withLock { $0 }
        return try write { connection in
            try fence?.check(connection)
            return try body(connection)
        }
    }
}
