import Foundation
import RegistryCore

/// The last push of one service to one cluster.
public struct PushRecord: Sendable, Equatable {
    public var cluster: String
    public var uid: String
    public var revision: Int
    public var time: String
    public var succeeded: Bool
    /// (kind, name) of the objects the push wrote.
    public var objects: [PushedObject]

    public init(cluster: String, uid: String, revision: Int, time: String = "", succeeded: Bool, objects: [PushedObject]) {
        self.cluster = cluster
        self.uid = uid
        self.revision = revision
        self.time = time
        self.succeeded = succeeded
        self.objects = objects
    }
}

/// An object a push wrote to a cluster.
public struct PushedObject: Sendable, Equatable, Hashable {
    public var kind: String
    public var name: String

    public init(kind: String, name: String) {
        self.kind = kind
        self.name = name
    }
}

extension ServiceStore {
    /// Records a push (and its audit line) in one transaction. A failed push never alters the
    /// registration: only `push_state` and the audit log are written. A push whose service was
    /// deleted (or deleted and created again: another `uid`) while it ran is only audited: push
    /// state is kept for existing services only (`delete` removes theirs).
    public func recordPush(namespace: String, name: String, record: PushRecord, audit: AuditContext, status: Int, detail: String?) throws {
        let time = ServiceStore.timestamp(Date())
        try write { connection in
            let current = try connection.prepare("SELECT 1 FROM services WHERE namespace = ? AND name = ? AND uid = ?")
            try current.bind(.text(namespace), .text(name), .text(record.uid))
            let exists = try current.step()
            connection.resetStatements()
            if exists { try Self.upsertPush(namespace: namespace, name: name, record: record, at: time, into: connection) }
            try ServiceStore.insertAudit(
                AuditEntry(
                    actor: audit.actor, action: audit.action, namespace: namespace, name: name, revisionBefore: nil,
                    revisionAfter: record.revision, outcome: record.succeeded ? .success : .failure, status: status,
                    requestID: audit.requestID, detail: "cluster \(record.cluster)" + (detail.map { ": \($0)" } ?? "")),
                at: time, into: connection)
        }
    }

    private static func upsertPush(namespace: String, name: String, record: PushRecord, at time: String, into connection: any SQLConnection) throws {
        let objects = JSONWriter.string(
            .array(record.objects.map { .object(JSONObject([("kind", .string($0.kind)), ("name", .string($0.name))])) }))
        try connection.prepare(
            """
            INSERT INTO push_state (namespace, name, cluster, uid, revision, time, outcome, objects) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (namespace, name, cluster) DO UPDATE SET uid = excluded.uid, revision = excluded.revision, time = excluded.time,
                outcome = excluded.outcome,
                objects = CASE WHEN excluded.outcome = 'success' THEN excluded.objects ELSE push_state.objects END
            """
        ).bind(
            .text(namespace), .text(name), .text(record.cluster), .text(record.uid), .integer(record.revision), .text(time),
            .text(record.succeeded ? "success" : "failure"), .text(objects)
        ).run()
    }

    /// Deletes at most `batch` rows of push state whose service no longer exists (with the
    /// `uid` they were pushed for); returns how many. `delete` removes a service's own rows in
    /// its transaction; this clears those an older version of the registry left behind.
    public func pruneOrphanedPushState(batch: Int) throws -> Int {
        try fencedWrite { connection in
            try connection.prepare(
                """
                DELETE FROM push_state WHERE (namespace, name, cluster) IN (
                    SELECT p.namespace, p.name, p.cluster FROM push_state p
                    WHERE NOT EXISTS (SELECT 1 FROM services s WHERE s.namespace = p.namespace AND s.name = p.name AND s.uid = p.uid)
                    LIMIT ?)
                """
            ).bind(.integer(batch)).run()
            return connection.changes
        }
    }

    /// The push state of a service on every cluster it was pushed to.
    public func pushRecords(namespace: String, name: String) throws(StoreError) -> [PushRecord] {
        try read { connection in
            let statement = try connection.prepare(
                "SELECT cluster, uid, revision, time, outcome, objects FROM push_state WHERE namespace = ? AND name = ? ORDER BY cluster")
            try statement.bind(.text(namespace), .text(name))
            var records: [PushRecord] = []
            while try statement.step() {
                var objects: [PushedObject] = []
                // Written by this store as a JSON array; a row that does not parse lists no objects.
                for item in (try? JSONParser.parse(Array(statement.text(5).utf8)))?.arrayValue ?? [] {
                    if let kind = item["kind"]?.stringValue, let objectName = item["name"]?.stringValue {
                        objects.append(PushedObject(kind: kind, name: objectName))
                    }
                }
                records.append(
                    PushRecord(
                        cluster: statement.text(0), uid: statement.text(1), revision: statement.int(2), time: statement.text(3),
                        succeeded: statement.text(4) == "success", objects: objects))
            }
            return records
        }
    }
}
