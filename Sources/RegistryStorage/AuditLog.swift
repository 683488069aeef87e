import Foundation

/// Who is changing something, carried into the transaction that changes it.
public struct AuditContext: Sendable {
    public var actor: String
    public var requestID: String
    /// The operation, e.g. `createService`.
    public var action: String

    public init(actor: String, requestID: String, action: String) {
        self.actor = actor
        self.requestID = requestID
        self.action = action
    }

    /// For changes made outside a request (tests, maintenance).
    public static let unattributed = AuditContext(actor: "system", requestID: "-", action: "system")
}

/// One line of the audit log.
public struct AuditEntry: Sendable, Equatable {
    public enum Outcome: String, Sendable { case success, failure, denied }

    public var id: Int
    public var time: String
    public var actor: String
    public var action: String
    public var namespace: String?
    public var name: String?
    public var revisionBefore: Int?
    public var revisionAfter: Int?
    public var outcome: Outcome
    public var status: Int
    /// The request id (for an aggregated line, of the last request counted).
    public var requestID: String
    public var detail: String?
    /// How many requests the line stands for: 1 for a change; for refused and failed requests,
    /// how many of them there were in that minute (see `RefusalAggregator`).
    public var count: Int

    public init(
        id: Int = 0, time: String = "", actor: String, action: String, namespace: String?, name: String?, revisionBefore: Int?,
        revisionAfter: Int?, outcome: Outcome, status: Int, requestID: String, detail: String?, count: Int = 1
    ) {
        self.id = id
        self.time = time
        self.actor = actor
        self.action = action
        self.namespace = namespace
        self.name = name
        self.revisionBefore = revisionBefore
        self.revisionAfter = revisionAfter
        self.outcome = outcome
        self.status = status
        self.requestID = requestID
        self.detail = detail
        self.count = count
    }
}

/// Filters of an audit query.
public struct AuditQuery: Sendable {
    public var namespace: String?
    public var name: String?
    public var actor: String?
    public var action: String?
    /// RFC 3339 time; entries at or after it.
    public var since: String?
    /// Entries with a larger id (pagination).
    public var afterID: Int?
    public var limit: Int

    public init(
        namespace: String? = nil, name: String? = nil, actor: String? = nil, action: String? = nil, since: String? = nil,
        afterID: Int? = nil, limit: Int = 100
    ) {
        self.namespace = namespace
        self.name = name
        self.actor = actor
        self.action = action
        self.since = since
        self.afterID = afterID
        self.limit = limit
    }
}

/// One stored revision of a service (`document` nil for a deletion).
public struct RevisionEntry: Sendable {
    /// Position in the history table (pagination).
    public var id: Int
    public var uid: String
    public var revision: Int
    public var time: String
    public var actor: String
    public var action: String
    public var requestID: String
    public var document: [UInt8]?
}

extension ServiceStore {
    static func insertAudit(_ entry: AuditEntry, at time: String, into connection: SQLiteConnection) throws {
        try connection.prepare(
            """
            INSERT INTO audit_log (time, actor, action, namespace, name, revision_before, revision_after, outcome, status, request_id, detail, count)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        ).bind(
            .text(time), .text(entry.actor), .text(entry.action), entry.namespace.map { .text($0) } ?? .null,
            entry.name.map { .text($0) } ?? .null, entry.revisionBefore.map { .integer($0) } ?? .null,
            entry.revisionAfter.map { .integer($0) } ?? .null, .text(entry.outcome.rawValue), .integer(entry.status),
            .text(entry.requestID), entry.detail.map { .text($0) } ?? .null, .integer(entry.count)
        ).run()
    }

    /// Records a change: an audit line and, for the service's history, the new revision.
    static func recordChange(
        _ audit: AuditContext, key: ServiceKey, uid: String, before: Int?, after: Int?, document: [UInt8]?, status: Int, at time: String,
        into connection: SQLiteConnection
    ) throws {
        try insertAudit(
            AuditEntry(
                actor: audit.actor, action: audit.action, namespace: key.namespace, name: key.name, revisionBefore: before,
                revisionAfter: after, outcome: .success, status: status, requestID: audit.requestID, detail: nil),
            at: time, into: connection)
        guard before != after else { return }  // unchanged: an audit line, no new revision
        try connection.prepare(
            """
            INSERT INTO service_revisions (namespace, name, uid, revision, time, actor, action, request_id, document)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        ).bind(
            .text(key.namespace), .text(key.name), .text(uid), .integer(after ?? before ?? 0), .text(time), .text(audit.actor),
            .text(audit.action), .text(audit.requestID), document.map { .blob($0) } ?? .null
        ).run()
    }

    /// Appends audit lines on their own (refused or failed requests, aggregated: nothing else
    /// changes), in one transaction. An entry without a `time` is stamped now.
    public func appendAudit(_ entries: [AuditEntry]) throws {
        guard !entries.isEmpty else { return }
        let now = ServiceStore.timestamp(Date())
        try write { connection in
            for entry in entries { try ServiceStore.insertAudit(entry, at: entry.time.isEmpty ? now : entry.time, into: connection) }
        }
    }

    /// Deletes at most `batch` audit lines older than `cutoff` (RFC 3339), oldest first; returns
    /// how many. Called repeatedly in the background, so each call holds the writer briefly.
    public func pruneAudit(olderThan cutoff: String, batch: Int) throws -> Int {
        try write { connection in
            try connection.prepare("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE time < ? ORDER BY time, id LIMIT ?)")
                .bind(.text(cutoff), .integer(batch)).run()
            return connection.changes
        }
    }

    /// Deletes at most `batch` history revisions beyond the newest `keep` of each service name;
    /// returns how many.
    public func pruneHistory(keep: Int, batch: Int) throws -> Int {
        try write { connection in
            try connection.prepare(
                """
                DELETE FROM service_revisions WHERE id IN (
                  SELECT id FROM (
                    SELECT id, row_number() OVER (PARTITION BY namespace, name ORDER BY id DESC) AS position FROM service_revisions
                  ) WHERE position > ? LIMIT ?)
                """
            ).bind(.integer(keep), .integer(batch)).run()
            return connection.changes
        }
    }

    /// Audit lines matching `query`, oldest first; `allowed` filters by namespace (lines without
    /// one pass only when `includeUnscoped`).
    public func audit(
        _ query: AuditQuery, allowed: (String) -> Bool = { _ in true }, includeUnscoped: Bool = true
    ) throws(StoreError)
        -> [AuditEntry]
    {
        try read { connection in
            let statement = try connection.prepare(
                """
                SELECT id, time, actor, action, namespace, name, revision_before, revision_after, outcome, status, request_id, detail,
                       revision_before IS NULL, revision_after IS NULL, count
                FROM audit_log
                WHERE id > ?1 AND (?2 IS NULL OR namespace = ?2) AND (?3 IS NULL OR name = ?3) AND (?4 IS NULL OR actor = ?4)
                  AND (?5 IS NULL OR action = ?5) AND (?6 IS NULL OR time >= ?6)
                ORDER BY id
                """)
            try statement.bind(
                .integer(query.afterID ?? 0), query.namespace.map { .text($0) } ?? .null, query.name.map { .text($0) } ?? .null,
                query.actor.map { .text($0) } ?? .null, query.action.map { .text($0) } ?? .null, query.since.map { .text($0) } ?? .null)
            var entries: [AuditEntry] = []
            while entries.count < query.limit, try statement.step() {
                let namespace = statement.text(4)
                let scoped = !namespace.isEmpty
                guard scoped ? allowed(namespace) : includeUnscoped else { continue }
                entries.append(
                    AuditEntry(
                        id: statement.int(0), time: statement.text(1), actor: statement.text(2), action: statement.text(3),
                        namespace: scoped ? namespace : nil, name: scoped ? statement.text(5) : nil,
                        revisionBefore: statement.int(12) == 1 ? nil : statement.int(6),
                        revisionAfter: statement.int(13) == 1 ? nil : statement.int(7),
                        outcome: AuditEntry.Outcome(rawValue: statement.text(8)) ?? .failure, status: statement.int(9),
                        requestID: statement.text(10), detail: statement.text(11).isEmpty ? nil : statement.text(11), count: statement.int(14)))
            }
            return entries
        }
    }

    /// Stored revisions of a service name (across re-creations), oldest first: at most `limit`
    /// after the one with id `afterID`, and the revision just before the first returned (for
    /// showing what the first one changed), if any.
    public func revisions(
        namespace: String, name: String, afterID: Int = 0, limit: Int = Int.max
    ) throws(StoreError)
        -> (entries: [RevisionEntry], previous: RevisionEntry?)
    {
        try read { connection in
            func entries(_ sql: String, _ values: SQLiteValue...) throws -> [RevisionEntry] {
                let statement = try connection.prepare(sql)
                for (index, value) in values.enumerated() { try statement.bind(at: Int32(index + 1), value) }
                var entries: [RevisionEntry] = []
                while try statement.step() {
                    entries.append(
                        RevisionEntry(
                            id: statement.int(8), uid: statement.text(0), revision: statement.int(1), time: statement.text(2),
                            actor: statement.text(3),
                            action: statement.text(4), requestID: statement.text(5), document: statement.int(7) == 1 ? nil : statement.blob(6)))
                }
                return entries
            }
            let columns = "uid, revision, time, actor, action, request_id, document, document IS NULL, id"
            let page = try entries(
                "SELECT \(columns) FROM service_revisions WHERE namespace = ? AND name = ? AND id > ? ORDER BY id LIMIT ?", .text(namespace),
                .text(name), .integer(afterID), .integer(min(limit, 1 << 30)))
            let previous =
                afterID > 0
                ? try entries(
                    "SELECT \(columns) FROM service_revisions WHERE namespace = ? AND name = ? AND id <= ? ORDER BY id DESC LIMIT 1",
                    .text(namespace), .text(name), .integer(afterID)
                ).first : nil
            return (page, previous)
        }
    }
}
