import Foundation
import RegistryCore

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
    /// The client's IP address, for refused and failed requests (their lines are counted per
    /// actor and source address); nil for changes.
    public var sourceAddress: String?

    public init(
        id: Int = 0, time: String = "", actor: String, action: String, namespace: String?, name: String?, revisionBefore: Int?,
        revisionAfter: Int?, outcome: Outcome, status: Int, requestID: String, detail: String?, count: Int = 1, sourceAddress: String? = nil
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
        self.sourceAddress = sourceAddress
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
    /// Inserts one audit line; with `returningID`, returns its id (else 0).
    @discardableResult
    static func insertAudit(_ entry: AuditEntry, at time: String, returningID: Bool = false, into connection: any SQLConnection) throws -> Int {
        let statement = try connection.prepare(
            """
            INSERT INTO audit_log (
                time, actor, action, namespace, name, revision_before, revision_after, outcome, status, request_id, detail, count, source_address)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """ + (returningID ? " RETURNING id" : "")
        )
        try statement.bind(
            .text(time), auditText(entry.actor), auditText(entry.action), entry.namespace.map(auditText) ?? .null,
            entry.name.map(auditText) ?? .null, entry.revisionBefore.map { .integer($0) } ?? .null,
            entry.revisionAfter.map { .integer($0) } ?? .null, .text(entry.outcome.rawValue), .integer(entry.status),
            auditText(entry.requestID), entry.detail.map(auditText) ?? .null, .integer(entry.count),
            entry.sourceAddress.map(auditText) ?? .null)
        guard returningID else {
            try statement.run()
            return 0
        }
        guard try statement.step() else { return 0 }
        let id = statement.int(0)
        connection.resetStatements()
        return id
    }

    /// Audit text quotes what clients sent (a refused value in `detail`), which may hold NUL:
    /// PostgreSQL's `text` cannot store it (its binding refuses such a value), so NUL is written
    /// as its JSON escape `\u0000`, alike on both stores.
    private static func auditText(_ value: String) -> SQLValue {
        // A byte scan: `contains("\u{0}")` went through Foundation's `range(of:)` on every write.
        .text(value.utf8.contains(0) ? value.replacingOccurrences(of: "\u{0}", with: #"\u0000"#) : value)
    }

    /// Most patches in a row in the history before a revision is kept whole again: rebuilding
    /// one applies at most this many patches (`DocumentPatch.apply(_:to:)`). As `maxPatches`
    /// for the current document: each whole revision costs the document's bytes.
    static let maxPatchDepth = 1024

    /// Records a change: an audit line and, for the service's history, the new revision. With
    /// `patch` (the edits that turn revision `before`'s document into `document`), the revision
    /// is kept as that patch, naming the row it applies to in `previous_id`, when the history's
    /// last row of the service is revision `before` of the same uid, fewer than `maxPatchDepth`
    /// patches follow the last whole document, and the patch is smaller than half the document;
    /// else whole. `lastHistory`: that last row, when the caller knows it
    /// (`RecordCache.Entry.history`), so that it is not looked up (`lastHistoryRow`).
    /// `eventVersion`: the resource version of the watch event the same write records (retention
    /// keeps the revision while that event is kept, see `pruneHistory`); nil only for a change
    /// that records no revision. Returns the history row recorded, nil when none was.
    @discardableResult
    static func recordChange(
        _ audit: AuditContext, key: ServiceKey, uid: String, before: Int?, after: Int?, document: DocumentBytes?, patch: DocumentPatch? = nil,
        status: Int, at time: String, eventVersion: Int?, lastHistory: HistoryRow? = nil, into connection: any SQLConnection
    ) throws -> HistoryRow? {
        try insertAudit(
            AuditEntry(
                actor: audit.actor, action: audit.action, namespace: key.namespace, name: key.name, revisionBefore: before,
                revisionAfter: after, outcome: .success, status: status, requestID: audit.requestID, detail: nil),
            at: time, into: connection)
        guard before != after else { return nil }  // unchanged: an audit line, no new revision
        var depth = 0
        var stored: (document: SQLValue, patch: SQLValue, previous: SQLValue) = (.null, .null, .null)
        if let patch, let document, let before, after == before + 1, patch.insertedBytes * 2 < document.count {
            var last = lastHistory
            if last == nil, let found = try lastHistoryRow(connection, key: key), found.uid == uid, found.revision == before,
                !found.deletion
            {
                last = found.row
            }
            if let last, last.depth < maxPatchDepth {
                depth = last.depth + 1
                stored = (.null, .blob(patch.serialized), .integer(last.id))
            }
        }
        // Whole (one array) only when not kept as a patch.
        if stored.patch == .null, let document { stored.document = .blob(document.flattened) }
        let id = try connection.insertReturningID(
            """
            INSERT INTO service_revisions (
                namespace, name, uid, revision, time, actor, action, request_id, document, patch, depth, event_version, previous_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(key.namespace), .text(key.name), .text(uid), .integer(after ?? before ?? 0), .text(time), .text(audit.actor),
                .text(audit.action), .text(audit.requestID), stored.document, stored.patch, .integer(depth),
                eventVersion.map { .integer($0) } ?? .null, stored.previous,
            ])
        return HistoryRow(id: id, depth: depth)
    }

    /// Reads the history rows of `key` with an id above `afterID` (those of its `filter`, an SQL
    /// condition on `service_revisions`), oldest first, passing each to `body` (its `columns`
    /// from 0) until `body` returns false. The rows of a name are its rows kept whole, found
    /// through `service_revisions_by_service` (`depth` = 0; SQLite's holds only those), each followed by the
    /// patches chained from it (a patch names the row it applies to in `previous_id`, found
    /// through `service_revisions_patches`): the chain of each whole row runs up to the next
    /// whole row, as every row's patch applies to the row just before it of the same name. The
    /// first chain read is that of the newest whole row at or before `afterID`. A row names only
    /// an earlier one, and a walk follows only such links, so a damaged row cannot make it loop.
    static func historyRows(
        _ connection: any SQLConnection, key: ServiceKey, after afterID: Int = 0, filter: String = "TRUE", columns: String,
        _ body: (any SQLStatement) throws -> Bool
    ) throws {
        func wholeRow(_ sql: String, _ id: Int) throws -> Int? {
            let statement = try connection.prepare(sql)
            try statement.bind(.text(key.namespace), .text(key.name), .integer(id))
            let found = try statement.step() ? statement.int(0) : nil
            connection.resetStatements()
            return found
        }
        let next = "SELECT id FROM service_revisions WHERE namespace = ? AND name = ? AND depth = 0 AND id > ? ORDER BY id LIMIT 1"
        var head =
            try afterID > 0
            ? wholeRow(
                "SELECT id FROM service_revisions WHERE namespace = ? AND name = ? AND depth = 0 AND id <= ? ORDER BY id DESC LIMIT 1", afterID)
            : nil
        if head == nil { head = try wholeRow(next, afterID) }
        while let start = head {
            let chain = try connection.prepare(
                """
                WITH RECURSIVE chain(row_id) AS (
                    SELECT CAST(? AS BIGINT)
                    UNION ALL
                    SELECT r.id FROM service_revisions r JOIN chain ON r.previous_id = chain.row_id WHERE r.id > chain.row_id
                )
                SELECT \(columns) FROM chain JOIN service_revisions ON service_revisions.id = chain.row_id
                WHERE service_revisions.id > ? AND \(filter) ORDER BY service_revisions.id
                """)
            try chain.bind(.integer(start), .integer(afterID))
            while try chain.step() {
                guard try body(chain) else {
                    connection.resetStatements()
                    return
                }
            }
            connection.resetStatements()
            head = try wholeRow(next, start)
        }
    }

    /// The history's last row of `key` and what it is (the uid and revision it records, whether
    /// it is a deletion's), nil when the name has none: the end of the chain of patches that
    /// follows the newest row kept whole, since every later row of the name is in that chain
    /// (see `historyRows`). At most `maxPatchDepth` steps through `service_revisions_patches`
    /// (which holds the ids it needs), then the row itself.
    static func lastHistoryRow(
        _ connection: any SQLConnection, key: ServiceKey
    ) throws -> (row: HistoryRow, uid: String, revision: Int, deletion: Bool)? {
        let statement = try connection.prepare(
            """
            WITH RECURSIVE chain(row_id) AS (
                SELECT (SELECT id FROM service_revisions WHERE namespace = ? AND name = ? AND depth = 0 ORDER BY id DESC LIMIT 1)
                UNION ALL
                SELECT r.id FROM service_revisions r JOIN chain ON r.previous_id = chain.row_id WHERE r.id > chain.row_id
            )
            SELECT id, depth, uid, revision, document IS NULL AND patch IS NULL FROM service_revisions
            WHERE id = (SELECT max(row_id) FROM chain)
            """)
        try statement.bind(.text(key.namespace), .text(key.name))
        defer { connection.resetStatements() }
        guard try statement.step() else { return nil }
        return (HistoryRow(id: statement.int(0), depth: statement.int(1)), statement.text(2), statement.int(3), statement.int(4) == 1)
    }

    /// Where a history row is: its id, and how many patches back the nearest row kept whole is
    /// (0: kept whole).
    struct HistoryRow: Sendable, Equatable {
        var id: Int
        var depth: Int
    }

    /// The document of the history row `id` of a service name: stored whole, or rebuilt from
    /// the nearest earlier row kept whole and the patches after it (at most `depth` of them),
    /// each patch's row naming the row it applies to (`previous_id`). `known`: documents of this
    /// service name's history rows, by id, already rebuilt; the newest of them at or before `id`
    /// ends the chain, and no row before it is read (a PostgreSQL statement fetches all its rows
    /// at once). Throws `StoreError.unreadable` when the chain is broken (a damaged database).
    static func historyDocument(
        _ connection: any SQLConnection, key: ServiceKey, id: Int, depth: Int, known: [Int: [UInt8]] = [:]
    ) throws -> [UInt8] {
        // The row and those its patches apply to, newest first: one step by id each (a row names
        // only an earlier one, so a damaged row cannot make the walk loop).
        let statement = try connection.prepare(
            """
            WITH RECURSIVE chain(id, n) AS (
                SELECT CAST(? AS BIGINT), 0
                UNION ALL
                SELECT r.previous_id, chain.n + 1 FROM service_revisions r JOIN chain ON r.id = chain.id
                WHERE r.previous_id IS NOT NULL AND r.previous_id < r.id AND r.previous_id >= ? AND chain.n < ?
            )
            SELECT r.document, r.patch, r.document IS NULL, r.patch IS NULL, r.id
            FROM chain JOIN service_revisions r ON r.id = chain.id ORDER BY chain.n
            """)
        let knownBefore = known.keys.reduce(0) { $1 <= id ? max($0, $1) : $0 }
        try statement.bind(.integer(id), .integer(knownBefore), .integer(depth))
        var patches: [[UInt8]] = []
        var base: [UInt8]?
        while try statement.step() {
            if let document = known[statement.int(4)] {
                base = document
                break
            }
            if statement.int(2) == 0 {
                base = statement.blob(0)
                break
            }
            guard statement.int(3) == 0 else { break }  // a deletion: the chain is broken
            patches.append(statement.blob(1))
        }
        connection.resetStatements()
        let decoded = patches.reversed().compactMap(DocumentPatch.init(serialized:))
        guard var document = base, decoded.count == patches.count, DocumentPatch.apply(decoded, to: &document) else {
            throw StoreError.unreadable(namespace: key.namespace, name: key.name)
        }
        return document
    }

    /// Appends audit lines on their own (refused or failed requests, aggregated: nothing else
    /// changes), in one transaction. An entry without a `time` is stamped now.
    public func appendAudit(_ entries: [AuditEntry]) throws {
        guard !entries.isEmpty else { return }
        noteAuditLines(entries.count)
        let now = ServiceStore.timestamp(Date())
        try write { connection in
            for entry in entries { try ServiceStore.insertAudit(entry, at: entry.time.isEmpty ? now : entry.time, into: connection) }
        }
    }

    /// Adds aggregated lines of refused or failed requests, in one transaction, and returns the
    /// id of each entry's line: an entry whose `id` names a line that still exists adds its
    /// `count` to that line (and replaces its request id and detail with the entry's, those of
    /// the last request counted); any other entry is inserted as a new line.
    public func accumulateAudit(_ entries: [AuditEntry]) throws -> [Int] {
        guard !entries.isEmpty else { return [] }
        noteAuditLines(entries.count)
        let now = ServiceStore.timestamp(Date())
        return try write { connection in
            var ids: [Int] = []
            for entry in entries {
                if entry.id > 0 {
                    try connection.prepare("UPDATE audit_log SET count = count + ?, request_id = ?, detail = ? WHERE id = ?").bind(
                        .integer(entry.count), ServiceStore.auditText(entry.requestID), entry.detail.map(ServiceStore.auditText) ?? .null,
                        .integer(entry.id)
                    ).run()
                    if connection.changes == 1 {
                        ids.append(entry.id)
                        continue
                    }
                }
                ids.append(try ServiceStore.insertAudit(entry, at: entry.time.isEmpty ? now : entry.time, returningID: true, into: connection))
            }
            return ids
        }
    }

    /// Deletes at most `batch` audit lines older than `cutoff` (RFC 3339), oldest first; returns
    /// how many. Called repeatedly in the background, so each call holds the writer briefly.
    /// Their entries in `audit_log_targets` go with them; when the newest lines go too (the log
    /// emptied, or a late aggregated line with an old time), `audit_state.targets_through`
    /// comes down to the newest id left, since SQLite numbers the next line after it.
    public func pruneAudit(olderThan cutoff: String, batch: Int) throws -> Int {
        try fencedWrite { connection in
            try connection.prepare(
                """
                DELETE FROM audit_log_targets WHERE (namespace, name, id) IN (
                    SELECT namespace, name, id FROM audit_log WHERE time < ? ORDER BY time, id LIMIT ?)
                """
            ).bind(.text(cutoff), .integer(batch)).run()
            try connection.prepare("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE time < ? ORDER BY time, id LIMIT ?)")
                .bind(.text(cutoff), .integer(batch)).run()
            let deleted = connection.changes
            try connection.prepare(
                """
                UPDATE audit_state SET targets_through = (SELECT coalesce(max(id), 0) FROM audit_log)
                WHERE id = 1 AND targets_through > (SELECT coalesce(max(id), 0) FROM audit_log)
                """
            ).run()
            return deleted
        }
    }

    /// Takes at most `batch` history revisions beyond the newest `keep` of each service name out
    /// of the history (the oldest first); returns how many (0 once none is left). A revision whose
    /// watch event is still kept (an event of a creation or change names its revision instead of
    /// storing the document) stays stored as it is, marked `pruned`: the history no longer lists
    /// it, and `pruneWatchEvents` deletes it with that event. The others are deleted. No whole
    /// document is written per revision: the oldest revision left in the history, and each row
    /// left whose patch applied to a deleted one, are stored whole (see `deleteRevisions`).
    ///
    /// The services over the limit are found on a read connection (a scan of the history), so
    /// that writers do not wait for it; they are then pruned in short writes of a few services each.
    public func pruneHistory(keep: Int, batch: Int) throws -> Int {
        let over: [ServiceKey] = try read { connection in
            let statement = try connection.prepare(
                "SELECT namespace, name FROM service_revisions WHERE pruned = 0 GROUP BY namespace, name HAVING count(*) > ? LIMIT ?")
            try statement.bind(.integer(keep), .integer(batch))
            var keys: [ServiceKey] = []
            while try statement.step() { keys.append(ServiceKey(namespace: statement.text(0), name: statement.text(1))) }
            return keys
        }
        // Nothing to prune: a replica that no longer leads is still told so by its fence.
        guard !over.isEmpty else { return try fencedWrite { _ in 0 } }
        // Up to `servicesPerWrite` services per write: one transaction (and fsync) per service
        // would cost hundreds per pass when many services each went a little over the limit.
        var taken = 0
        var next = over.startIndex
        while next < over.endIndex && taken < batch {
            let services = over[next..<min(next + Self.servicesPerWrite, over.endIndex)]
            next = services.endIndex
            let limit = batch - taken
            taken += try fencedWrite { connection in
                var done = 0
                for key in services where done < limit {
                    done += try ServiceStore.pruneHistory(of: key, keep: keep, limit: limit - done, connection)
                }
                return done
            }
        }
        return taken
    }

    /// The most services `pruneHistory` prunes in one write.
    static let servicesPerWrite = 32

    /// One service's part of `pruneHistory`: at most `limit` of its revisions beyond the newest
    /// `keep` in its history, oldest first (so that those still listed run on without a gap up to
    /// the newest); returns how many.
    static func pruneHistory(of key: ServiceKey, keep: Int, limit: Int, _ connection: any SQLConnection) throws -> Int {
        // Every row of the name, oldest first: those listed, and before them those a watch event still names.
        var rows: [(id: Int, pruned: Bool, depth: Int, patched: Bool, stored: Bool, eventVersion: Int)] = []
        try historyRows(
            connection, key: key, columns: "id, pruned, depth, patch IS NOT NULL, document IS NOT NULL OR patch IS NOT NULL, event_version"
        ) { row in
            rows.append((row.int(0), row.int(1) == 1, row.int(2), row.int(3) == 1, row.int(4) == 1, row.int(5)))
            return true
        }
        let listed = rows.filter { !$0.pruned }
        // The oldest revision that stays in the history must not depend on those taken out: it is
        // kept whole from now on.
        guard listed.count > max(keep, 1) else { return 0 }
        let boundary = listed[listed.count - max(keep, 1)]
        let doomed = listed.prefix { $0.id < boundary.id }.prefix(limit)
        guard !doomed.isEmpty else { return 0 }
        if boundary.patched {
            try storeWhole(boundary.id, try historyDocument(connection, key: key, id: boundary.id, depth: boundary.depth), into: connection)
        }
        // A revision whose watch event is still kept stays, out of the history; a deletion's row
        // (nothing to read back) and one whose event is gone are deleted.
        let compacted = try resourceVersionState(connection).compacted
        var kept: [Int] = []
        var deleted: [Int] = []
        for row in doomed {
            if row.stored && row.eventVersion > compacted { kept.append(row.id) } else { deleted.append(row.id) }
        }
        if !kept.isEmpty {
            try connection.prepare("UPDATE service_revisions SET pruned = 1 WHERE id IN (\(kept.map(String.init).joined(separator: ",")))").run()
        }
        try deleteRevisions(deleted, from: connection)
        return doomed.count
    }

    /// Stores history row `id` whole (its document rebuilt by the caller), no longer as a patch:
    /// it no longer names a row before it, and starts a chain of its own (see `historyRows`).
    static func storeWhole(_ id: Int, _ document: [UInt8], into connection: any SQLConnection) throws {
        try connection.prepare("UPDATE service_revisions SET document = ?, patch = NULL, depth = 0, previous_id = NULL WHERE id = ?")
            .bind(.blob(document), .integer(id)).run()
    }

    /// Deletes the history rows `ids`, first storing whole every row left whose patch applies
    /// to one of them (the one that names it in `previous_id`), so that every row left still
    /// rebuilds, and every row left is still found: following patches back from any of them
    /// reaches a whole row before a deleted one.
    static func deleteRevisions(_ ids: [Int], from connection: any SQLConnection) throws {
        guard !ids.isEmpty else { return }
        let doomed = Set(ids)
        let list = ids.map(String.init).joined(separator: ",")
        let names = try connection.prepare("SELECT id, namespace, name FROM service_revisions WHERE id IN (\(list))")
        var rows: [(id: Int, key: ServiceKey)] = []
        while try names.step() { rows.append((names.int(0), ServiceKey(namespace: names.text(1), name: names.text(2)))) }
        connection.resetStatements()
        // The patch that applies to each doomed row, if any (one indexed step each): stored whole
        // when it stays.
        var dependents: [(id: Int, key: ServiceKey, depth: Int)] = []
        for row in rows {
            let next = try connection.prepare("SELECT id, depth FROM service_revisions WHERE previous_id = ?")
            try next.bind(.integer(row.id))
            while try next.step() {
                if !doomed.contains(next.int(0)) { dependents.append((next.int(0), row.key, next.int(1))) }
            }
            connection.resetStatements()
        }
        for row in dependents.sorted(by: { $0.id < $1.id }) {
            try storeWhole(row.id, try historyDocument(connection, key: row.key, id: row.id, depth: row.depth), into: connection)
        }
        try connection.prepare("DELETE FROM service_revisions WHERE id IN (\(list))").run()
    }

    /// The query of `audit(_:)`, its parameters ?1 to ?6 being the last id seen, namespace,
    /// name, actor, action and earliest time, each filter skipped when nil. With a namespace and
    /// a name (`byTarget`) the lines of that service are read in id order from
    /// `audit_log_targets` (namespace, name, id) up to `audit_state.targets_through`, and after
    /// it (the lines not moved there yet, see `indexAuditTargets`) from the end of the log,
    /// instead of scanning the whole log (SQLite's planner uses no index for a term
    /// `?2 IS NULL OR namespace = ?2`), at most ?7 of them (a page: every line of one service
    /// has the same namespace, which the caller's namespace check passes or refuses as a whole;
    /// PostgreSQL fetches all the rows of a statement at once). Other filters scan in id order
    /// from the last id seen, stopping at a page's worth. Built once per kind.
    static func auditSQL(byTarget: Bool) -> String {
        byTarget ? auditSQLByTarget : auditSQLScan
    }

    private static let auditSQLByTarget = makeAuditSQL(byTarget: true)
    private static let auditSQLScan = makeAuditSQL(byTarget: false)

    private static func makeAuditSQL(byTarget: Bool) -> String {
        // The first column is the id the rows are ordered by: the index's own (`t.id`) where
        // the lines are read through `audit_log_targets`, so that no sort is needed.
        func columns(_ id: String) -> String {
            """
            \(id), a.time, a.actor, a.action, a.namespace, a.name, a.revision_before, a.revision_after, a.outcome, a.status,
            a.request_id, a.detail, a.revision_before IS NULL, a.revision_after IS NULL, a.count, a.source_address
            """
        }
        let filters = """
            (CAST(?4 AS TEXT) IS NULL OR a.actor = ?4) AND (CAST(?5 AS TEXT) IS NULL OR a.action = ?5)
            AND (CAST(?6 AS TEXT) IS NULL OR a.time >= ?6)
            """
        guard byTarget else {
            return """
                SELECT \(columns("a.id")) FROM audit_log a
                WHERE a.id > ?1 AND (CAST(?2 AS TEXT) IS NULL OR a.namespace = ?2) AND (CAST(?3 AS TEXT) IS NULL OR a.name = ?3) AND \(filters)
                ORDER BY a.id
                """
        }
        return """
            SELECT \(columns("t.id")) FROM audit_log_targets t JOIN audit_log a ON a.id = t.id
            WHERE t.namespace = ?2 AND t.name = ?3 AND t.id > ?1 AND \(filters)
            UNION ALL
            SELECT \(columns("a.id")) FROM audit_log a
            WHERE a.id > (SELECT CASE WHEN targets_through > ?1 THEN targets_through ELSE ?1 END FROM audit_state WHERE id = 1)
              AND a.namespace = ?2 AND a.name = ?3 AND \(filters)
            ORDER BY 1
            LIMIT ?7
            """
    }

    /// The most writes committed between two moves of the audit lines into `audit_log_targets`
    /// (`indexAuditTargets`, also run when the store opens): a query of one service's lines
    /// reads the lines of at most these writes (and of other replicas' writes since) from the
    /// end of the log. A write of several lines (an import, aggregated refusals) counts each.
    static let auditIndexingWrites = 2_048

    /// Moves the audit lines added since the last move (`audit_state.targets_through`) into
    /// `audit_log_targets`, sorted by service, so that each of its pages is written once per
    /// move rather than once per line (a line went into a random page of the index it
    /// replaces, `audit_log_by_target`, with nearly every write); returns how many. Inside a
    /// write transaction.
    @discardableResult
    static func moveAuditTargets(_ connection: any SQLConnection) throws -> Int {
        try connection.prepare(
            """
            INSERT INTO audit_log_targets (namespace, name, id)
            SELECT namespace, name, id FROM audit_log
            WHERE id > (SELECT targets_through FROM audit_state WHERE id = 1) AND namespace IS NOT NULL AND name IS NOT NULL
            ORDER BY namespace, name, id
            ON CONFLICT DO NOTHING
            """
        ).run()
        let moved = connection.changes
        try connection.prepare("UPDATE audit_state SET targets_through = (SELECT coalesce(max(id), 0) FROM audit_log) WHERE id = 1").run()
        return moved
    }

    /// `moveAuditTargets` in a transaction of its own on `connection`, the writer's, between
    /// group commits (every `auditIndexingWrites` writes). A failure is left for the next
    /// time: the lines stay where the query finds them too.
    static func indexAuditTargets(on connection: any SQLConnection) {
        do {
            try connection.beginWrite()
            try moveAuditTargets(connection)
            try connection.execute("COMMIT")
        } catch {
            connection.resetStatements()
            if connection.isInTransaction { try? connection.execute("ROLLBACK") }
        }
    }

    /// `moveAuditTargets` now, as a write of its own; returns how many lines it moved.
    public func indexAuditTargets() throws -> Int {
        try write { connection in try ServiceStore.moveAuditTargets(connection) }
    }

    /// Audit lines matching `query`, oldest first; `allowed` filters by namespace (lines without
    /// one pass only when `includeUnscoped`).
    public func audit(
        _ query: AuditQuery, allowed: (String) -> Bool = { _ in true }, includeUnscoped: Bool = true
    ) throws(StoreError)
        -> [AuditEntry]
    {
        try read { connection in
            let byTarget = query.namespace != nil && query.name != nil
            let statement = try connection.prepare(Self.auditSQL(byTarget: byTarget))
            try statement.bind(
                .integer(query.afterID ?? 0), query.namespace.map { .text($0) } ?? .null, query.name.map { .text($0) } ?? .null,
                query.actor.map { .text($0) } ?? .null, query.action.map { .text($0) } ?? .null, query.since.map { .text($0) } ?? .null)
            if byTarget { try statement.bind(at: 7, .integer(max(query.limit, 0))) }
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
                        requestID: statement.text(10), detail: statement.text(11).isEmpty ? nil : statement.text(11), count: statement.int(14),
                        sourceAddress: statement.text(15).isEmpty ? nil : statement.text(15)))
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
            // One snapshot: the patches and what they apply to are read together.
            try connection.beginRead()
            defer {
                connection.resetStatements()
                try? connection.execute("COMMIT")
            }
            let key = ServiceKey(namespace: namespace, name: name)
            /// A row, and when it is kept as a patch, the patch and its depth.
            func entry(_ statement: any SQLStatement) -> (entry: RevisionEntry, patch: [UInt8]?, depth: Int) {
                (
                    RevisionEntry(
                        id: statement.int(8), uid: statement.text(0), revision: statement.int(1), time: statement.text(2),
                        actor: statement.text(3), action: statement.text(4), requestID: statement.text(5),
                        document: statement.int(7) == 1 ? nil : statement.blob(6)),
                    statement.int(10) == 1 ? nil : statement.blob(9), statement.int(11)
                )
            }
            /// The rows of a query.
            func entries(_ sql: String, _ values: SQLValue...) throws -> [(entry: RevisionEntry, patch: [UInt8]?, depth: Int)] {
                let statement = try connection.prepare(sql)
                for (index, value) in values.enumerated() { try statement.bind(at: Int32(index + 1), value) }
                var entries: [(entry: RevisionEntry, patch: [UInt8]?, depth: Int)] = []
                while try statement.step() { entries.append(entry(statement)) }
                connection.resetStatements()
                return entries
            }
            let columns = "uid, revision, time, actor, action, request_id, document, document IS NULL, id, patch, patch IS NULL, depth"
            var rows: [(entry: RevisionEntry, patch: [UInt8]?, depth: Int)] = []
            let wanted = min(limit, 1 << 30)
            if wanted > 0 {
                try ServiceStore.historyRows(connection, key: key, after: afterID, filter: "pruned = 0", columns: columns) { row in
                    rows.append(entry(row))
                    return rows.count < wanted
                }
            }
            // The revision just before the page: the last one of the page before (at `afterID`)
            // unless retention took it out since; then the newest listed one before it.
            var previousRow =
                afterID > 0
                ? try entries(
                    "SELECT \(columns) FROM service_revisions WHERE id = ? AND namespace = ? AND name = ? AND pruned = 0",
                    .integer(afterID), .text(namespace), .text(name)
                ).first : nil
            if afterID > 0 && previousRow == nil {
                try ServiceStore.historyRows(connection, key: key, filter: "pruned = 0", columns: columns) { row in
                    guard row.int(8) <= afterID else { return false }
                    previousRow = entry(row)
                    return true
                }
            }
            // Rows kept as patches get their documents back; the rows are consecutive rows of
            // the name, so each patch applies to the document of the one before it.
            var last: [UInt8]?
            func resolve(_ row: (entry: RevisionEntry, patch: [UInt8]?, depth: Int)) throws -> RevisionEntry {
                var entry = row.entry
                if let bytes = row.patch {
                    if let base = last, let patch = DocumentPatch(serialized: bytes), let document = patch.apply(to: base) {
                        entry.document = document
                    } else {
                        entry.document = try ServiceStore.historyDocument(connection, key: key, id: entry.id, depth: row.depth)
                    }
                }
                last = entry.document
                return entry
            }
            let previous = try previousRow.map(resolve)
            if previousRow == nil { last = nil }
            let page = try rows.map(resolve)
            return (page, previous)
        }
    }
}
