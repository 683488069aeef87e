import Foundation
import HTTPServer
import RegistryCore
import RegistryStorage

/// The audit log and per-service history.
struct AuditHandlers: Sendable {
    let store: ServiceStore
    /// Flushed before the audit log is read, so that refusals counted so far are visible.
    let refusals: RefusalAggregator

    /// - Remark: HTTP `GET /v1/audit`
    func listAudit(_ context: RequestContext) throws -> HTTPResponse {
        let request = context.request
        var query = AuditQuery()
        query.namespace = try ServiceHandlers.namespaceFilter(context)
        query.name = request.queryValue("name").flatMap { $0.isEmpty ? nil : $0 }
        query.actor = request.queryValue("actor").flatMap { $0.isEmpty ? nil : $0 }
        query.action = request.queryValue("action").flatMap { $0.isEmpty ? nil : $0 }
        if let since = request.queryValue("since") {
            guard let date = try? Date(since, strategy: .iso8601) else {
                throw APIError.badRequest("since must be an RFC 3339 time such as 2026-11-28T12:00:00Z, not \"\(since)\"", field: "since")
            }
            query.since = date.formatted(.iso8601)
        }
        query.limit = try Self.pageSize(request, default: Self.defaultPageSize)
        let filters = [query.namespace, query.name, query.actor, query.action, query.since]
        if let token = request.queryValue("continue"), !token.isEmpty {
            query.afterID = try Self.position(ContinueToken.decode(token, list: .audit, filters: filters))
        }
        query.limit += 1
        refusals.flush()
        let scope = context.principal.scope
        var entries = try store.audit(query, allowed: scope.allows, includeUnscoped: scope.isUnrestricted)
        var next: String? = nil
        if entries.count == query.limit {
            entries.removeLast()
            next = entries.last.map { ContinueToken.encode(.audit, filters: filters, position: .integer($0.id)) }
        }
        let items = entries.map { JSONWriter.bytes(Self.json($0)) }
        return Responses.json(200, Responses.list(items, continueToken: next))
    }

    /// The row id a continue token of the audit log or a history names (a positive integer).
    private static func position(_ value: JSONValue) throws(APIError) -> Int {
        guard let id = value.intValue, id > 0 else { throw .badRequest(RequestChecks.invalidContinueToken, field: "continue") }
        return id
    }

    /// Page sizes of the audit log and of a history: 100 unless `limit` says otherwise, at most
    /// 1000.
    static let defaultPageSize = 100
    static let maxPageSize = 1000

    /// The `limit` query parameter, checked against `maxPageSize`.
    static func pageSize(_ request: HTTPRequest, default value: Int) throws(APIError) -> Int {
        try RequestChecks.integerQuery(request, "limit", in: 1...maxPageSize) ?? value
    }

    static func json(_ entry: AuditEntry) -> JSONValue {
        var object = JSONObject([
            ("id", .integer(entry.id)), ("time", .string(entry.time)), ("actor", .string(entry.actor)), ("action", .string(entry.action)),
        ])
        if let namespace = entry.namespace { object["namespace"] = .string(namespace) }
        if let name = entry.name { object["name"] = .string(name) }
        if let before = entry.revisionBefore { object["revisionBefore"] = .integer(before) }
        if let after = entry.revisionAfter { object["revisionAfter"] = .integer(after) }
        object["outcome"] = .string(entry.outcome.rawValue)
        object["status"] = .integer(entry.status)
        object["requestId"] = .string(entry.requestID)
        if let detail = entry.detail { object["detail"] = .string(detail) }
        if entry.count != 1 { object["count"] = .integer(entry.count) }
        if let address = entry.sourceAddress { object["sourceAddress"] = .string(address) }
        return .object(object)
    }

    /// - Remark: HTTP `GET /v1/services/{namespace}/{name}/history`
    func getServiceHistory(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        let limit = try Self.pageSize(context.request, default: Self.defaultPageSize)
        let filters = [namespace, name]
        var afterID = 0
        if let token = context.request.queryValue("continue"), !token.isEmpty {
            afterID = try Self.position(ContinueToken.decode(token, list: .history, filters: filters))
        }
        var (revisions, before) = try store.revisions(namespace: namespace, name: name, afterID: afterID, limit: limit + 1)
        // A later page of a history is empty when it ended on the page before; a name that has
        // no history at all (never created, or pruned away) is not found on any page.
        if revisions.isEmpty, afterID == 0 || before == nil { throw StoreError.notFound(namespace: namespace, name: name) }
        var next: String? = nil
        if revisions.count > limit {
            revisions.removeLast()
            next = revisions.last.map { ContinueToken.encode(.history, filters: filters, position: .integer($0.id)) }
        }
        // Revisions are documents this server wrote; one that does not parse shows no diff.
        var previous: (uid: String, object: JSONObject)? = before.flatMap { entry in
            entry.document.flatMap { try? JSONParser.parse($0) }?.objectValue.map { (entry.uid, $0) }
        }
        var items: [[UInt8]] = []
        for revision in revisions {
            var item = JSONObject([
                ("uid", .string(revision.uid)), ("revision", .integer(revision.revision)), ("time", .string(revision.time)),
                ("actor", .string(revision.actor)), ("action", .string(revision.action)), ("requestId", .string(revision.requestID)),
            ])
            let current = revision.document.flatMap { try? JSONParser.parse($0) }?.objectValue
            if current == nil {
                item["change"] = .string("deleted")
            } else if let previous, previous.uid == revision.uid, let current {
                item["change"] = .string("updated")
                item["changes"] = .array(Self.changes(from: previous.object, to: current))
            } else if revision.revision == 1 {
                item["change"] = .string("created")
            } else {
                // The revision before it is no longer kept (`--history-limit`): an update, whose
                // changes are not known any more.
                item["change"] = .string("updated")
            }
            items.append(JSONWriter.bytes(.object(item)))
            previous = current.map { (revision.uid, $0) }
        }
        return Responses.json(200, Responses.list(items, continueToken: next))
    }

    /// What changed between two documents of one service: for each changed member its old and
    /// new value, and for `addresses` the addresses added and removed.
    static func changes(from old: JSONObject, to new: JSONObject) -> [JSONValue] {
        var changes: [JSONValue] = []
        let ignored: Set<String> = ["revision", "updatedAt"]
        for key in Set(old.keys).union(new.keys).subtracting(ignored).sorted() where old[key] != new[key] {
            if key == "addresses" {
                // Each address by its encoding (the documents' writer is deterministic), in sets:
                // O(n) per revision, where comparing each address with every other one took
                // seconds per revision of a service of 10,000 addresses.
                let before = addresses(old[key]).map { ($0, JSONWriter.bytes($0)) }
                let after = addresses(new[key]).map { ($0, JSONWriter.bytes($0)) }
                let (beforeBytes, afterBytes) = (Set(before.map(\.1)), Set(after.map(\.1)))
                changes.append(
                    .object(
                        JSONObject([
                            ("field", .string(key)), ("added", .array(after.filter { !beforeBytes.contains($0.1) }.map(\.0))),
                            ("removed", .array(before.filter { !afterBytes.contains($0.1) }.map(\.0))),
                        ])))
            } else {
                changes.append(.object(JSONObject([("field", .string(key)), ("from", old[key] ?? .null), ("to", new[key] ?? .null)])))
            }
        }
        return changes
    }

    private static func addresses(_ value: JSONValue?) -> [JSONValue] {
        value?.arrayValue ?? []
    }
}
