import Foundation
import RegistryCore
import Synchronization

/// What happened to a service, as a watch reports it (Kubernetes' `watch.EventType`).
public enum WatchEventType: String, Sendable, CaseIterable {
    case added = "ADDED"
    case modified = "MODIFIED"
    case deleted = "DELETED"
}

/// One change of a service in the change log (`watch_events`), at its resource version.
public struct WatchEvent: Sendable, Equatable {
    public var type: WatchEventType
    /// The global resource version the change took.
    public var resourceVersion: Int
    public var namespace: String
    public var name: String
    /// The service's labels after the change (for DELETED, its last ones).
    public var labels: [String: String]
    /// For MODIFIED, the labels before the change; nil otherwise.
    public var previousLabels: [String: String]?
    /// The service's document after the change (for DELETED, its last one), as the API serves it.
    public var document: [UInt8]

    public init(
        type: WatchEventType, resourceVersion: Int, namespace: String, name: String, labels: [String: String],
        previousLabels: [String: String]?, document: [UInt8]
    ) {
        self.type = type
        self.resourceVersion = resourceVersion
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.previousLabels = previousLabels
        self.document = document
    }
}

/// Where the change log stands: the current resource version, and `compacted`, the newest one
/// whose event is no longer kept (a watch may start at `compacted` or later, up to `current`).
public struct ResourceVersionState: Sendable, Equatable {
    public var current: Int
    public var compacted: Int
}

/// Events read from the change log, with the log's state in the same snapshot.
public struct WatchEventBatch: Sendable {
    public var events: [WatchEvent]
    public var state: ResourceVersionState
}

extension SQLCounter {
    /// The watch log's resource version (`watch_state`'s one row).
    static let resourceVersion = SQLCounter("resource_version", of: "watch_state", where: "id = 1")
    /// The version of the stored health verdicts (`HealthStateStore`), in the same row.
    static let healthVersion = SQLCounter("health_version", of: "watch_state", where: "id = 1")
}

extension ServiceStore {
    /// Advances `counter`, one of `watch_state`'s, in the write's transaction and returns its
    /// new value. Throws `StoreError.fault` when the row is missing (a damaged schema).
    static func advance(_ counter: SQLCounter, on connection: any SQLConnection) throws -> Int {
        guard let value = try connection.increment(counter) else {
            throw StoreError.fault(StorageFault(reason: .internal, message: "watch_state has no row; the schema is damaged"))
        }
        return value
    }

    /// Appends a change to the change log with resource version `version` (taken with
    /// `advance(.resourceVersion)` by the write, which records its history revision with it), in
    /// the write's own transaction (so the version and the event commit or roll back with the
    /// change). ADDED and MODIFIED events name the history row the same write recorded
    /// (`revisionID`) instead of storing the document a second time (see `watchEvents`); DELETED
    /// ones, and any without such a row, store the document. The history's retention keeps a
    /// revision an event names (`pruned`) until the event is pruned.
    static func recordEvent(
        _ type: WatchEventType, version: Int, revisionID: Int?, record: ServiceRecord, document: DocumentBytes,
        previousLabels: [String: String]?, at time: String, into connection: any SQLConnection
    ) throws {
        let named = type == .deleted ? nil : revisionID
        try connection.prepare(
            """
            INSERT INTO watch_events (resource_version, type, namespace, name, labels, previous_labels, time, document, uid, revision, revision_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        ).bind(
            .integer(version), .text(type.rawValue), .text(record.service.namespace), .text(record.service.name),
            .text(labelsJSON(record.service.labels)), previousLabels.map { .text(labelsJSON($0)) } ?? .null, .text(time),
            named == nil ? .blob(document.flattened) : .blob([]), named == nil ? .null : .text(record.uid),
            named == nil ? .null : .integer(record.revision), named.map { .integer($0) } ?? .null
        ).run()
    }

    /// The document of the history revision (`uid`, `revision`) of a service name, rebuilt from
    /// its patches when kept as one; `known` holds documents of that service name's history
    /// rows (by id) already rebuilt, and gets this one (a deletion's row, which has the revision
    /// of the last one, is not it). Throws `StoreError.unreadable` when there is no such revision.
    ///
    /// The revision is the history row `id` the event names (`watch_events.revision_id`),
    /// whether it is still listed or kept only for the watch log (`pruned`).
    static func revisionDocument(
        _ connection: any SQLConnection, key: ServiceKey, uid: String, revision: Int, id: Int, known: inout [Int: [UInt8]]
    ) throws -> (id: Int, document: [UInt8]) {
        let row = try connection.prepare(
            """
            SELECT id, depth, document IS NULL, document FROM service_revisions
            WHERE id = ? AND namespace = ? AND name = ? AND uid = ? AND revision = ? AND (document IS NOT NULL OR patch IS NOT NULL)
            """)
        try row.bind(.integer(id), .text(key.namespace), .text(key.name), .text(uid), .integer(revision))
        guard try row.step() else {
            connection.resetStatements()
            throw StoreError.unreadable(namespace: key.namespace, name: key.name)
        }
        let (id, depth, whole) = (row.int(0), row.int(1), row.int(2) == 0 ? row.blob(3) : nil)
        connection.resetStatements()
        if let whole {
            known[id] = whole
            return (id, whole)
        }
        if let document = known[id] { return (id, document) }
        let document = try historyDocument(connection, key: key, id: id, depth: depth, known: known)
        known[id] = document
        return (id, document)
    }

    static func resourceVersionState(_ connection: any SQLConnection) throws -> ResourceVersionState {
        let statement = try connection.prepare("SELECT resource_version, compacted FROM watch_state WHERE id = 1")
        guard try statement.step() else {
            throw StoreError.fault(StorageFault(reason: .internal, message: "watch_state has no row; the schema is damaged"))
        }
        return ResourceVersionState(current: statement.int(0), compacted: statement.int(1))
    }

    /// The current resource version and the oldest one a watch may start from.
    public func resourceVersionState() throws(StoreError) -> ResourceVersionState {
        try read { connection in try ServiceStore.resourceVersionState(connection) }
    }

    /// At most `limit` events with a resource version above `after`, oldest first, and the log's
    /// state read in the same snapshot (so `state.compacted <= after` proves none were missed).
    public func watchEvents(after: Int, limit: Int) throws(StoreError) -> WatchEventBatch {
        try read { connection in
            try connection.beginRead()
            defer {
                connection.resetStatements()
                try? connection.execute("COMMIT")
            }
            let state = try ServiceStore.resourceVersionState(connection)
            let statement = try connection.prepare(
                """
                SELECT resource_version, type, namespace, name, labels, previous_labels, previous_labels IS NULL, document,
                       uid IS NULL OR length(document) > 0, uid, revision, coalesce(revision_id, 0)
                FROM watch_events WHERE resource_version > ? ORDER BY resource_version LIMIT ?
                """)
            try statement.bind(.integer(after), .integer(limit))
            var events: [WatchEvent] = []
            var references: [(index: Int, uid: String, revision: Int, id: Int)] = []
            while try statement.step() {
                if statement.int(8) == 0 { references.append((events.count, statement.text(9), statement.int(10), statement.int(11))) }
                events.append(
                    WatchEvent(
                        type: WatchEventType(rawValue: statement.text(1)) ?? .modified, resourceVersion: statement.int(0),
                        namespace: statement.text(2), name: statement.text(3), labels: ServiceStore.labels(fromJSON: statement.text(4)),
                        previousLabels: statement.int(6) == 1 ? nil : ServiceStore.labels(fromJSON: statement.text(5)),
                        document: statement.blob(7)))
            }
            connection.resetStatements()
            // Events that name a history revision get its document (consecutive revisions of a
            // service apply their patches to the one before, also across calls: the last
            // document built per service starts the next call's chain).
            let cache = rebuiltRevisions
            var known: [ServiceKey: [Int: [UInt8]]] = [:]
            var built: [ServiceKey: (id: Int, document: [UInt8])] = [:]
            for reference in references {
                let event = events[reference.index]
                let key = ServiceKey(namespace: event.namespace, name: event.name)
                if built[key] == nil, let last = cache.last(key) { known[key, default: [:]][last.id] = last.document }
                let revision = try ServiceStore.revisionDocument(
                    connection, key: key, uid: reference.uid, revision: reference.revision, id: reference.id,
                    known: &known[key, default: [:]])
                events[reference.index].document = revision.document
                if revision.id >= built[key]?.id ?? 0 { built[key] = revision }
            }
            cache.remember(built)
            return WatchEventBatch(events: events, state: state)
        }
    }

    /// The document `event`'s service had just before that change: the one of the newest kept
    /// event of the same service with a lower resource version; nil when the log keeps none
    /// (compacted) or the event is not a MODIFIED one. For the DELETED event a watch with a
    /// label selector gets when a change moves a service out of its set: the Kubernetes watch
    /// cache sends the last state that matched (`cacheWatcher.convertToWatchEvent`), with the
    /// change's resource version.
    public func documentBefore(_ event: WatchEvent) throws(StoreError) -> [UInt8]? {
        guard event.type == .modified else { return nil }
        let previous: Int? = try read { connection in
            let statement = try connection.prepare(
                "SELECT max(resource_version) FROM watch_events WHERE namespace = ? AND name = ? AND resource_version < ?")
            try statement.bind(.text(event.namespace), .text(event.name), .integer(event.resourceVersion))
            defer { connection.resetStatements() }
            guard try statement.step(), statement.value(0) != .null else { return nil }
            return statement.int(0)
        }
        guard let previous else { return nil }
        let batch = try watchEvents(after: previous - 1, limit: 1)
        guard let found = batch.events.first, found.resourceVersion == previous, found.type != .deleted else { return nil }
        return found.document
    }

    /// Deletes at most `batch` of the oldest events that are beyond the newest `keep` or older
    /// than `cutoff` (RFC 3339), and moves `compacted` up to the newest one deleted, with the
    /// history revisions kept only for them (`pruned`). Returns how many events were deleted.
    /// Called repeatedly in the background, so each call holds the writer briefly.
    public func pruneWatchEvents(keep: Int, olderThan cutoff: String, batch: Int) throws -> Int {
        try fencedWrite { connection in
            let select = try connection.prepare(
                """
                SELECT max(resource_version), count(*) FROM (
                  SELECT resource_version FROM watch_events
                  WHERE resource_version <= (SELECT resource_version FROM watch_state WHERE id = 1) - ?1 OR time < ?2
                  ORDER BY resource_version LIMIT ?3) AS doomed
                """)
            try select.bind(.integer(keep), .text(cutoff), .integer(batch))
            guard try select.step() else { return 0 }
            let (newest, count) = (select.int(0), select.int(1))
            connection.resetStatements()
            guard count > 0 else { return 0 }
            // The history revisions kept only for these events (`pruned`, see `pruneHistory`) go
            // with them: those whose event is among the deleted (an index holds only them).
            let pruned = try connection.prepare("SELECT id FROM service_revisions WHERE pruned = 1 AND event_version <= ?")
            try pruned.bind(.integer(newest))
            var revisions: [Int] = []
            while try pruned.step() { revisions.append(pruned.int(0)) }
            connection.resetStatements()
            try ServiceStore.deleteRevisions(revisions, from: connection)
            try connection.prepare("DELETE FROM watch_events WHERE resource_version <= ?").bind(.integer(newest)).run()
            let deleted = connection.changes
            try connection.prepare("UPDATE watch_state SET compacted = ?1 WHERE id = 1 AND compacted < ?1").bind(.integer(newest)).run()
            return deleted
        }
    }
}

/// The newest history document the watch path rebuilt for each service, by history row id, so
/// that the next batch of events applies only the patches after it instead of rebuilding from
/// the last revision kept whole (up to `maxPatchDepth` patches).
///
/// Exact: a history row never changes its document once written (retention may store the
/// oldest kept one whole: the same bytes), and ids are not reused (the newest row of a service,
/// the largest id, is never pruned). Bounded: at most `capacity` services; when full it starts
/// over empty.
final class RebuiltRevisions: Sendable {
    static let capacity = 256
    private let entries = Mutex<[ServiceKey: (id: Int, document: [UInt8])]>([:])

    func last(_ key: ServiceKey) -> (id: Int, document: [UInt8])? {
        entries.withLock { $0[key] }
    }

    func remember(_ built: [ServiceKey: (id: Int, document: [UInt8])]) {
        guard !built.isEmpty else { return }
        entries.withLock { entries in
            if entries.count + built.count > Self.capacity { entries.removeAll(keepingCapacity: true) }
            for (key, revision) in built where revision.id >= entries[key]?.id ?? 0 { entries[key] = revision }
        }
    }
}
