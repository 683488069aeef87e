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
    public var requestID: String
    public var detail: String?

    public init(
        id: Int = 0, time: String = "", actor: String, action: String, namespace: String?, name: String?, revisionBefore: Int?,
        revisionAfter: Int?, outcome: Outcome, status: Int, requestID: String, detail: String?
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
            INSERT INTO audit_log (time, actor, action, namespace, name, revision_before, revision_after, outcome, status, request_id, detail)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        ).bind(
            .text(time), .text(entry.actor), .text(entry.action), entry.namespace.map { .text($0) } ?? .null,
            entry.name.map { .text($0) } ?? .null, entry.revisionBefore.map { .integer($0) } ?? .null,
            entry.revisionAfter.map { .integer($0) } ?? .null, .text(entry.outcome.rawValue), .integer(entry.status),
            .text(entry.requestID), entry.detail.map { .text($0) } ?? .null
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

    /// Appends an audit line on its own (a refused or failed request: nothing else changes).
    public func appendAudit(_ entry: AuditEntry) throws {
        let time = ServiceStore.timestamp(Date())
        try write { connection in try ServiceStore.insertAudit(entry, at: time, into: connection) }
    }

    /// Audit lines matching `query`, oldest first; `allowed` filters by namespace (lines without
    /// one pass only when `includeUnscoped`).
    public func audit(_ query: AuditQuery, allowed: (String) -> Bool = { _ in true }, includeUnscoped: Bool = true) throws(StoreError)
        -> [AuditEntry]
    {
        try read { connection in
            let statement = try connection.prepare(
                """
                SELECT id, time, actor, action, namespace, name, revision_before, revision_after, outcome, status, request_id, detail,
                       revision_before IS NULL, revision_after IS NULL
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
                        revisionBefore: statement.int(12) == 1 ? nil : statement.int(6), revisionAfter: statement.int(13) == 1 ? nil : statement.int(7),
                        outcome: AuditEntry.Outcome(rawValue: statement.text(8)) ?? .failure, status: statement.int(9),
                        requestID: statement.text(10), detail: statement.text(11).isEmpty ? nil : statement.text(11)))
            }
            return entries
        }
    }

    /// Every stored revision of a service name (across re-creations), oldest first.
    public func revisions(namespace: String, name: String) throws(StoreError) -> [RevisionEntry] {
        try read { connection in
            let statement = try connection.prepare(
                """
                SELECT uid, revision, time, actor, action, request_id, document, document IS NULL
                FROM service_revisions WHERE namespace = ? AND name = ? ORDER BY id
                """)
            try statement.bind(.text(namespace), .text(name))
            var entries: [RevisionEntry] = []
            while try statement.step() {
                entries.append(
                    RevisionEntry(
                        uid: statement.text(0), revision: statement.int(1), time: statement.text(2), actor: statement.text(3),
                        action: statement.text(4), requestID: statement.text(5), document: statement.int(7) == 1 ? nil : statement.blob(6)))
            }
            return entries
        }
    }
}
