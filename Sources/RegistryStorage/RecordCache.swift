import RegistryCore
import Synchronization

/// The decoded records the writer stored last, so that a read-modify-write of a service (an
/// address added to a large one, say) does not parse its whole document again.
///
/// Exact by construction: an entry is used only when the row read in the same transaction has
/// the entry's uid and revision (or an UPDATE conditioned on them changed it, see
/// `ServiceStore.replaceIfStored`), and only committed revisions stay here: the group commit
/// (`ServiceStore.commit`) drops the entries a write put when that write is rolled back (a dry
/// run, a refused or failed write, a batch that failed as a whole or whose COMMIT failed). An
/// entry of a rolled-back write would otherwise match the revision that another process then
/// commits with other content (several replicas on one PostgreSQL database, two processes on
/// one SQLite file), and the next read-modify-write would start from what was never stored.
/// Bounded: at most `capacity` entries; when full it starts over empty.
///
/// `put` and the journal (`beginTransaction`, `releaseWrite`, `rollBackWrite`,
/// `rollBackTransaction`) are called by the thread that holds the writer lock.
final class RecordCache: Sendable {
    static let capacity = 1024

    /// A service as the writer stored it: its record, its document and, when known, how the
    /// document's parts are kept (see `storeDocument`), so that the next change need not count them.
    /// `history`, when known: the history's last row of the service is this revision (kept
    /// whole or as a patch, not a deletion), with that id and `depth`, so that the next change's
    /// revision, kept as a patch of it, need not look it up (see `recordChange`). Exact as the
    /// entry is: the history rows of a service are written only with its `services` row, so while
    /// that row has the entry's uid and revision no other row followed it, and retention keeps
    /// the newest row of every name (it may since have stored it whole, at depth 0; a depth known
    /// too high only ends the next chain of patches sooner).
    struct Entry: Sendable {
        var record: ServiceRecord
        var document: DocumentBytes
        var parts: DocumentPartsState?
        var history: ServiceStore.HistoryRow? = nil
    }

    private struct State {
        var entries: [ServiceKey: Entry] = [:]
        /// Keys put by the writes of the open transaction that were released (kept so far).
        var transaction: Set<ServiceKey> = []
        /// Keys put by the write running in the current savepoint.
        var write: Set<ServiceKey> = []
    }

    private let state = Mutex(State())

    func lookup(_ key: ServiceKey, uid: String, revision: Int) -> Entry? {
        state.withLock { state in
            guard let entry = state.entries[key], entry.record.uid == uid, entry.record.revision == revision else { return nil }
            return entry
        }
    }

    /// The entry for `key` as it is now, without checking it against the database: it may be
    /// behind the stored row, or put by a write that is not committed yet. For a guess only
    /// (see `ServiceStore.Speculation`), never for an answer.
    func peek(_ key: ServiceKey) -> Entry? {
        state.withLock { $0.entries[key] }
    }

    func put(_ key: ServiceKey, _ record: ServiceRecord, document: DocumentBytes, parts: DocumentPartsState? = nil) {
        state.withLock { state in
            if state.entries.count >= Self.capacity && state.entries[key] == nil { state.entries.removeAll(keepingCapacity: true) }
            state.entries[key] = Entry(record: record, document: document, parts: parts)
            state.write.insert(key)
        }
    }

    /// Notes on the entry of `key`, when it is revision `revision` of `uid`, the history row its
    /// write recorded (`Entry.history`). Called by the write that put the entry, after its
    /// history row: a rollback of that write drops both.
    func noteHistory(_ key: ServiceKey, uid: String, revision: Int, row: ServiceStore.HistoryRow) {
        state.withLock { state in
            guard let entry = state.entries[key], entry.record.uid == uid, entry.record.revision == revision else { return }
            state.entries[key]?.history = row
            state.write.insert(key)
        }
    }

    func remove(_ key: ServiceKey) {
        _ = state.withLock { $0.entries.removeValue(forKey: key) }
    }

    /// A write transaction begins: nothing of it is in the cache yet.
    func beginTransaction() {
        state.withLock { state in
            state.transaction.removeAll(keepingCapacity: true)
            state.write.removeAll(keepingCapacity: true)
        }
    }

    /// The current write's savepoint was released: its entries stand or fall with the transaction.
    func releaseWrite() {
        state.withLock { state in
            state.transaction.formUnion(state.write)
            state.write.removeAll(keepingCapacity: true)
        }
    }

    /// The current write was rolled back to its savepoint: its entries go.
    func rollBackWrite() {
        state.withLock { state in
            for key in state.write { state.entries.removeValue(forKey: key) }
            state.write.removeAll(keepingCapacity: true)
        }
    }

    /// The whole transaction was rolled back (or its COMMIT failed): every entry it put goes.
    func rollBackTransaction() {
        state.withLock { state in
            for key in state.transaction.union(state.write) { state.entries.removeValue(forKey: key) }
            state.transaction.removeAll(keepingCapacity: true)
            state.write.removeAll(keepingCapacity: true)
        }
    }
}
