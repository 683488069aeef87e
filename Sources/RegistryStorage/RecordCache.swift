import RegistryCore
import Synchronization

/// The decoded records the writer stored last, so that a read-modify-write of a service (an
/// address added to a large one, say) does not parse its whole document again.
///
/// Exact by construction: an entry is used only when the row read in the same transaction has
/// the entry's uid and revision, and every write that stores a row puts its record here (the
/// last put for a key wins, so an entry left by a rolled-back write is either never matched, its
/// revision not being the row's, or overwritten by the committed write that reaches that
/// revision). Bounded: at most `capacity` entries; when full it starts over empty.
final class RecordCache: Sendable {
    static let capacity = 1024
    private let entries = Mutex<[ServiceKey: (record: ServiceRecord, document: [UInt8])]>([:])

    func lookup(_ key: ServiceKey, uid: String, revision: Int) -> (record: ServiceRecord, document: [UInt8])? {
        entries.withLock { entries in
            guard let entry = entries[key], entry.record.uid == uid, entry.record.revision == revision else { return nil }
            return entry
        }
    }

    func put(_ key: ServiceKey, _ record: ServiceRecord, document: [UInt8]) {
        entries.withLock { entries in
            if entries.count >= Self.capacity && entries[key] == nil { entries.removeAll(keepingCapacity: true) }
            entries[key] = (record, document)
        }
    }

    func remove(_ key: ServiceKey) {
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }
}
