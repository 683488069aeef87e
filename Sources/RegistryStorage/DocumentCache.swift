import Glibc
import Synchronization

/// The current stored document of recently read services, so that `GET` of a service answers
/// without a SQLite read (a read transaction costs its shared-memory lock calls and a statement).
///
/// Exact: every commit that changes a service (create, update, import, delete) calls
/// `invalidate` after it is committed and before it is acknowledged, which removes the keys and
/// moves the generation on; a reader fills an entry only if no invalidation happened since it
/// took its `generation` before reading the row, so a row read from a snapshot older than a
/// commit is never put back after that commit's invalidation. This holds for one process owning
/// the database (the SQLite store); stores shared by several processes cannot use it.
/// Bounded: at most `byteLimit` bytes of documents (32 MiB); when full it starts over empty.
///
/// In front of the shared entries, each thread finds its recent hits in a front of its own
/// (`fronts`, chosen by the thread's identity), valid only while no invalidation happened since
/// they were taken (`published`, read without a lock): the workers reading one popular service
/// no longer queue on one lock. Under that one lock, eight workers on two cores spent half the
/// CPU spinning for it (`Mutex` spins before it sleeps, and a holder preempted in its short
/// critical section made every other worker spin its whole time slice). A front holds at most
/// `frontEntryLimit` entries and `frontByteLimit` bytes; its documents are the shared entries'
/// own arrays (no copy), so fronts can keep at most `fronts.count × frontByteLimit` (32 MiB) alive
/// beyond the shared bound, after the shared entries were dropped.
final class DocumentCache: Sendable {
    static let byteLimit = 32 << 20
    private struct State {
        var entries: [ServiceKey: StoredDocument] = [:]
        var bytes = 0
        var generation = 0
    }
    private let state = Mutex(State())
    /// `State.generation`, stored under the lock by every invalidation before it returns.
    private let published = Atomic<Int>(0)
    private let fronts: [Front] = (0..<16).map { _ in Front() }
    static let frontEntryLimit = 64
    static let frontByteLimit = byteLimit / 16

    /// One thread's recent hits (most threads have a front to themselves: its lock is not contended).
    private final class Front: Sendable {
        struct Entries {
            var documents: [ServiceKey: StoredDocument] = [:]
            var bytes = 0
            /// The `published` generation these were taken at.
            var generation = 0
        }
        let entries = Mutex(Entries())
    }

    enum Lookup {
        case hit(StoredDocument)
        /// Not cached: read the row, then hand `generation` to `fill`.
        case miss(generation: Int)
    }

    func lookup(_ key: ServiceKey) -> Lookup {
        let front = fronts[Self.frontIndex()]
        let generation = published.load(ordering: .acquiring)
        let recent = front.entries.withLock { entries -> StoredDocument? in
            guard entries.generation == generation else {
                entries = Front.Entries(generation: generation)
                return nil
            }
            return entries.documents[key]
        }
        if let recent { return .hit(recent) }
        let found = state.withLock { state -> Lookup in
            if let entry = state.entries[key] { return .hit(entry) }
            return .miss(generation: state.generation)
        }
        if case .hit(let document) = found, document.document.count <= Self.frontByteLimit {
            // Kept only if no invalidation was published since `generation` was read: then the
            // shared entry is at least as new as every commit acknowledged before that read.
            front.entries.withLock { entries in
                guard entries.generation == generation else { return }
                if entries.documents.count >= Self.frontEntryLimit || entries.bytes + document.document.count > Self.frontByteLimit {
                    entries = Front.Entries(generation: generation)
                }
                entries.documents[key] = document
                entries.bytes += document.document.count
            }
        }
        return found
    }

    /// The calling thread's front: its identity mixed (thread identities are aligned addresses)
    /// and cut to the number of fronts.
    private static func frontIndex() -> Int {
        let identity = UInt64(pthread_self())
        return Int(truncatingIfNeeded: (identity &* 0x9E37_79B9_7F4A_7C15) >> 60)
    }

    /// Remembers `document` as read after `lookup` gave `generation`, unless a commit has
    /// invalidated anything since.
    func fill(_ key: ServiceKey, _ document: StoredDocument, generation: Int) {
        state.withLock { state in
            guard state.generation == generation, state.entries[key] == nil else { return }
            if state.bytes + document.document.count > Self.byteLimit {
                state.entries.removeAll(keepingCapacity: true)
                state.bytes = 0
            }
            state.entries[key] = document
            state.bytes += document.document.count
        }
    }

    /// Forgets `keys` (they were just committed).
    func invalidate(_ keys: some Sequence<ServiceKey>) {
        state.withLock { state in
            state.generation &+= 1
            for key in keys {
                if let removed = state.entries.removeValue(forKey: key) { state.bytes -= removed.document.count }
            }
            // Every front taken before this is stale from now on (before the commit is acknowledged).
            published.store(state.generation, ordering: .releasing)
        }
    }
}
