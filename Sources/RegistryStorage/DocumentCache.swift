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
final class DocumentCache: Sendable {
    static let byteLimit = 32 << 20
    private struct State {
        var entries: [ServiceKey: StoredDocument] = [:]
        var bytes = 0
        var generation = 0
    }
    private let state = Mutex(State())

    enum Lookup {
        case hit(StoredDocument)
        /// Not cached: read the row, then hand `generation` to `fill`.
        case miss(generation: Int)
    }

    func lookup(_ key: ServiceKey) -> Lookup {
        state.withLock { state in
            if let entry = state.entries[key] { return .hit(entry) }
            return .miss(generation: state.generation)
        }
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
        }
    }
}
