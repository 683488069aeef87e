public import Foundation
public import RegistryCore

/// Where one service stands in one cluster, as the reconciler last saw it.
public struct ReconcileState: Sendable, Equatable {
    /// `synced`: live objects equal the rendering; `pending`: a change waits to be applied;
    /// `drifted`: the cluster differs from the rendering (edited or deleted there), a repair is
    /// queued; `failing`: the last attempt failed and a retry is scheduled; `deleting`: our
    /// objects are being removed (service deleted or cluster unbound).
    public enum Phase: String, Sendable, CaseIterable {
        case synced, pending, drifted, failing, deleting
    }

    /// Why the cluster is tracked: bound in `clusters`, or reached by an explicit push only.
    public enum Source: String, Sendable {
        case binding, push
    }

    public var namespace: String
    public var name: String
    public var cluster: String
    public var source: Source
    public var state: Phase
    /// The registration (uid) and revision last applied to the cluster; 0 before the first.
    public var uid: String
    public var revision: Int
    /// RFC 3339: last time the live objects were seen equal to the rendering.
    public var lastSyncTime: String?
    /// A problem+json object with the Kubernetes `reason` and `message`, when failing.
    public var lastError: JSONValue?
    /// Failed attempts since the last success.
    public var attempts: Int
    /// RFC 3339: when the next attempt is due (failing only).
    public var nextAttemptTime: String?

    public init(
        namespace: String, name: String, cluster: String, source: Source = .binding, state: Phase, uid: String = "", revision: Int = 0,
        lastSyncTime: String? = nil, lastError: JSONValue? = nil, attempts: Int = 0, nextAttemptTime: String? = nil
    ) {
        self.namespace = namespace
        self.name = name
        self.cluster = cluster
        self.source = source
        self.state = state
        self.uid = uid
        self.revision = revision
        self.lastSyncTime = lastSyncTime
        self.lastError = lastError
        self.attempts = attempts
        self.nextAttemptTime = nextAttemptTime
    }
}

extension ServiceStore {
    /// RFC 3339 in UTC, as stored.
    public static func rfc3339(_ date: Date) -> String { timestamp(date) }

    /// Creates or replaces the state of one service in one cluster.
    public func saveReconcileState(_ state: ReconcileState) throws {
        try saveReconcileStates([state])
    }

    /// Creates or replaces the state of one service in one cluster only if the service still
    /// exists with `uid` (checked in the same transaction): an apply that finishes after its
    /// service was deleted (or deleted and created again) must leave no state behind, which
    /// would make the reconciler act on objects of a registration that is gone. Returns whether
    /// it was saved.
    @discardableResult
    public func saveReconcileState(_ state: ReconcileState, whileServiceHasUID uid: String) throws -> Bool {
        let time = ServiceStore.timestamp(Date())
        return try fencedWrite { connection in
            let current = try connection.prepare("SELECT 1 FROM services WHERE namespace = ? AND name = ? AND uid = ?")
            try current.bind(.text(state.namespace), .text(state.name), .text(uid))
            guard try current.step() else { return false }
            connection.resetStatements()
            try ServiceStore.upsert(state, at: time, into: connection)
            return true
        }
    }

    /// Creates or replaces several states in one transaction.
    public func saveReconcileStates(_ states: [ReconcileState]) throws {
        guard !states.isEmpty else { return }
        let time = ServiceStore.timestamp(Date())
        try fencedWrite { connection in
            for state in states { try ServiceStore.upsert(state, at: time, into: connection) }
        }
    }

    private static func upsert(_ state: ReconcileState, at time: String, into connection: any SQLConnection) throws {
        try connection.prepare(
            """
            INSERT INTO reconcile_state (namespace, name, cluster, source, state, uid, revision, last_sync_time, last_error, attempts,
                next_attempt_time, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (namespace, name, cluster) DO UPDATE SET source = excluded.source, state = excluded.state, uid = excluded.uid,
                revision = excluded.revision, last_sync_time = excluded.last_sync_time, last_error = excluded.last_error,
                attempts = excluded.attempts, next_attempt_time = excluded.next_attempt_time, updated_at = excluded.updated_at
            """
        ).bind(
            .text(state.namespace), .text(state.name), .text(state.cluster), .text(state.source.rawValue), .text(state.state.rawValue),
            .text(state.uid), .integer(state.revision), state.lastSyncTime.map { .text($0) } ?? .null,
            state.lastError.map { .text(JSONWriter.string($0)) } ?? .null, .integer(state.attempts),
            state.nextAttemptTime.map { .text($0) } ?? .null, .text(time)
        ).run()
    }

    /// Forgets the state of one service in one cluster (its objects are gone, or kept on purpose).
    public func forgetReconcileState(namespace: String, name: String, cluster: String) throws {
        try fencedWrite { connection in
            try connection.prepare("DELETE FROM reconcile_state WHERE namespace = ? AND name = ? AND cluster = ?")
                .bind(.text(namespace), .text(name), .text(cluster)).run()
        }
    }

    /// Marks services seen equal to their rendering by a resync (one transaction): `synced`,
    /// `lastSyncTime` = `time`. Rows that changed state meanwhile (pending, failing, deleting)
    /// are left alone.
    public func markSynced(_ keys: [(namespace: String, name: String, cluster: String)], at time: String) throws {
        guard !keys.isEmpty else { return }
        let now = ServiceStore.timestamp(Date())
        try fencedWrite { connection in
            let statement = try connection.prepare(
                """
                UPDATE reconcile_state SET state = 'synced', last_sync_time = ?, last_error = NULL, attempts = 0, next_attempt_time = NULL,
                    updated_at = ?
                WHERE namespace = ? AND name = ? AND cluster = ? AND state IN ('synced', 'drifted')
                """)
            for key in keys {
                statement.reset()
                try statement.bind(.text(time), .text(now), .text(key.namespace), .text(key.name), .text(key.cluster)).run()
            }
        }
    }

    /// The state of one service in every tracked cluster, by cluster name.
    public func reconcileStates(namespace: String, name: String) throws(StoreError) -> [ReconcileState] {
        try reconcileStates(where: "namespace = ? AND name = ?", [.text(namespace), .text(name)])
    }

    /// The state of every service in one cluster, by namespace and name.
    public func reconcileStates(cluster: String) throws(StoreError) -> [ReconcileState] {
        try reconcileStates(where: "cluster = ?", [.text(cluster)])
    }

    /// Every tracked (service, cluster) pair.
    public func allReconcileStates() throws(StoreError) -> [ReconcileState] {
        try reconcileStates(where: "1 = 1", [])
    }

    private func reconcileStates(where condition: String, _ values: [SQLValue]) throws(StoreError) -> [ReconcileState] {
        try read { connection in
            let statement = try connection.prepare(
                """
                SELECT namespace, name, cluster, source, state, uid, revision, last_sync_time, last_error, attempts, next_attempt_time
                FROM reconcile_state WHERE \(condition) ORDER BY namespace, name, cluster
                """)
            switch values.count {
            case 2: try statement.bind(values[0], values[1])
            case 1: try statement.bind(values[0])
            default: break
            }
            var states: [ReconcileState] = []
            while try statement.step() {
                func optional(_ column: Int32) -> String? {
                    let text = statement.text(column)
                    return text.isEmpty ? nil : text
                }
                states.append(
                    ReconcileState(
                        namespace: statement.text(0), name: statement.text(1), cluster: statement.text(2),
                        source: ReconcileState.Source(rawValue: statement.text(3)) ?? .binding,
                        state: ReconcileState.Phase(rawValue: statement.text(4)) ?? .pending, uid: statement.text(5), revision: statement.int(6),
                        lastSyncTime: optional(7), lastError: optional(8).flatMap { try? JSONParser.parse(Array($0.utf8)) },
                        attempts: statement.int(9), nextAttemptTime: optional(10)))
            }
            return states
        }
    }

    /// Every stored service, decoded (start-up and resync walk them).
    public func allRecords() throws(StoreError) -> [ServiceRecord] {
        let documents: [(String, String, [UInt8])] = try read { connection in
            // One read transaction: the rows and the parts of the documents kept apart are one snapshot.
            try connection.beginRead()
            defer {
                connection.resetStatements()
                try? connection.execute("COMMIT")
            }
            let statement = try connection.prepare("SELECT namespace, name, document FROM services ORDER BY namespace, name")
            var rows: [(String, String, [UInt8])] = []
            while try statement.step() { rows.append((statement.text(0), statement.text(1), statement.blob(2))) }
            connection.resetStatements()
            // Documents kept apart (see `storeDocument`) are rebuilt from their parts.
            for index in rows.indices where rows[index].2.isEmpty {
                rows[index].2 = try ServiceStore.apartDocument(connection, key: ServiceKey(namespace: rows[index].0, name: rows[index].1))
            }
            return rows
        }
        var records: [ServiceRecord] = []
        for (namespace, name, document) in documents {
            records.append(try ServiceStore.decode(document, namespace: namespace, name: name))
        }
        return records
    }
}
