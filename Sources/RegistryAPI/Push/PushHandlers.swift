import Dispatch
import Foundation
import HTTPServer
import KubernetesClient
import RegistryCore
import RegistryStorage
import Synchronization

/// Handlers of the cluster routes: list clusters, push, bulk push, status, diff, cascade delete.
struct PushHandlers: Sendable {
    let engine: PushEngine
    let store: ServiceStore
    let metrics: RegistryMetrics
    var clusters: Clusters { engine.clusters }
    /// Pushes of a bulk request run at most this many at a time.
    static let bulkConcurrency = 8

    /// - Remark: HTTP `GET /v1/clusters`
    func listClusters(_ context: RequestContext) throws -> HTTPResponse {
        let probe = try ServiceHandlers.flag(context.request, "probe")
        let items: [JSONValue] = clusters.targets.map { target in
            var object = JSONObject([
                ("name", .string(target.name)), ("current", .bool(target.current)), ("server", .string(Redaction.url(target.server))),
                ("auth", .string(target.authKind)), ("usable", .bool(target.usable)),
            ])
            if let reason = target.unusableReason { object["reason"] = .string(reason) }
            if let proxy = target.proxyURL {
                object["proxy"] = .string(Redaction.url(proxy))
                object["proxySource"] = .string(target.proxyFromEnvironment ? "environment" : "kubeconfig")
            }
            if let name = target.tls.serverName { object["tlsServerName"] = .string(name) }
            if target.tls.insecureSkipVerify { object["insecureSkipTLSVerify"] = .bool(true) }
            if probe && target.usable {
                do {
                    object["version"] = .string(try clusters.api(target).version())
                    object["reachable"] = .bool(true)
                } catch {
                    object["reachable"] = .bool(false)
                    object["error"] = .string("\(error)")
                }
            }
            return .object(object)
        }
        return Responses.json(200, .object(JSONObject([("items", .array(items))])))
    }

    struct PushOptions {
        var targets: [ClusterTarget]
        var dryRun: Bool
        var adopt: Bool
    }

    /// Reads `{"clusters": [...], "dryRun": bool, "adopt": bool}` (an empty body means all usable
    /// clusters, no dry run, no adoption).
    private func options(_ request: HTTPRequest) throws -> PushOptions {
        var object = JSONObject()
        if !request.body.isEmpty {
            guard case .object(let parsed) = try RequestChecks.jsonBody(request) else {
                throw ValidationFailure([FieldViolation("", .wrongType, "the body must be a JSON object")])
            }
            object = parsed
        }
        var violations: [FieldViolation] = []
        for key in object.keys where !["clusters", "dryRun", "adopt"].contains(key) {
            violations.append(FieldViolation(key, .unknownField, "unknown field \"\(key)\""))
        }
        func flag(_ key: String) -> Bool {
            switch object[key] {
            case nil, .null?: return false
            case .bool(let value)?: return value
            case let other?:
                violations.append(FieldViolation(key, .wrongType, "must be a boolean, not \(other.typeName)"))
                return false
            }
        }
        var targets = clusters.targets.filter(\.usable)
        switch object["clusters"] {
        case nil, .null?:
            if targets.isEmpty {
                violations.append(FieldViolation("clusters", .required, "no usable cluster is configured (see GET /v1/clusters)"))
            }
        case .array(let names)?:
            targets = []
            for (index, value) in names.enumerated() {
                guard case .string(let name) = value else {
                    violations.append(FieldViolation("clusters[\(index)]", .wrongType, "must be a cluster name"))
                    continue
                }
                guard let target = clusters.target(named: name) else {
                    let known = clusters.targets.map(\.name).joined(separator: ", ")
                    violations.append(FieldViolation("clusters[\(index)]", .notSupported, "no cluster named \"\(name)\" (known: \(known.isEmpty ? "none" : known))"))
                    continue
                }
                if let reason = target.unusableReason {
                    violations.append(FieldViolation("clusters[\(index)]", .invalid, "cluster \"\(name)\" is not usable: \(reason)"))
                    continue
                }
                targets.append(target)
            }
            if names.isEmpty { violations.append(FieldViolation("clusters", .required, "name at least one cluster, or leave the field out for all")) }
        case let other?:
            violations.append(FieldViolation("clusters", .wrongType, "must be an array of cluster names, not \(other.typeName)"))
        }
        let options = PushOptions(targets: targets, dryRun: flag("dryRun"), adopt: flag("adopt"))
        if !violations.isEmpty { throw ValidationFailure(violations) }
        return options
    }

    /// Pushes one record to every target and records the outcome per cluster.
    private func push(_ record: ServiceRecord, options: PushOptions, context: RequestContext) -> [ClusterOutcome] {
        options.targets.map { target in
            let outcome = engine.push(record, to: target, dryRun: options.dryRun, adopt: options.adopt)
            for object in outcome.objects { metrics.recordPush(cluster: target.name, action: object.action.rawValue) }
            if outcome.error != nil { metrics.recordPush(cluster: target.name, action: "failed") }
            if !options.dryRun {
                let written = outcome.objects.filter { [.created, .configured, .unchanged].contains($0.action) }.map {
                    PushedObject(kind: $0.kind, name: $0.name)
                }
                try? store.recordPush(
                    namespace: record.service.namespace, name: record.service.name,
                    record: PushRecord(cluster: target.name, uid: record.uid, revision: record.revision, succeeded: outcome.succeeded, objects: written),
                    audit: context.audit, status: outcome.succeeded ? 200 : 502,
                    detail: outcome.succeeded ? nil : (outcome.error ?? outcome.objects.compactMap(\.error).first))
            }
            return outcome
        }
    }

    private static func report(_ record: ServiceRecord, _ outcomes: [ClusterOutcome], dryRun: Bool) -> JSONValue {
        let failed = outcomes.filter { !$0.succeeded }.count
        let status = failed == 0 ? "success" : (failed == outcomes.count ? "failure" : "partial")
        return .object(
            JSONObject([
                ("namespace", .string(record.service.namespace)), ("name", .string(record.service.name)), ("revision", .integer(record.revision)),
                ("dryRun", .bool(dryRun)), ("status", .string(status)), ("clusters", .array(outcomes.map(\.json))),
            ]))
    }

    /// - Remark: HTTP `POST /v1/services/{namespace}/{name}/push`
    func pushService(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        let options = try options(context.request)
        guard let record = try store.record(namespace: namespace, name: name) else { throw StoreError.notFound(namespace: namespace, name: name) }
        let outcomes = push(record, options: options, context: context)
        let allGood = outcomes.allSatisfy(\.succeeded)
        return Responses.json(allGood ? 200 : 207, PushHandlers.report(record, outcomes, dryRun: options.dryRun))
    }

    /// - Remark: HTTP `POST /v1/push`
    func pushMany(_ context: RequestContext) throws -> HTTPResponse {
        let namespace = try ServiceHandlers.namespaceFilter(context)
        let selector = try LabelSelector(parsing: context.request.queryValue("labelSelector") ?? "")
        let options = try options(context.request)
        let scope = context.principal.scope
        let versions = try store.versions(namespace: namespace, selector: selector, allowed: scope.allows)
        let reports = Mutex<[Int: JSONValue]>([:])
        let failures = Mutex(0)
        let gate = DispatchSemaphore(value: PushHandlers.bulkConcurrency)
        let group = DispatchGroup()
        for (index, version) in versions.enumerated() {
            gate.wait()
            group.enter()
            DispatchQueue.global().async {
                defer {
                    gate.signal()
                    group.leave()
                }
                guard let record = try? store.record(namespace: version.key.namespace, name: version.key.name) else { return }
                let outcomes = push(record, options: options, context: context)
                if !outcomes.allSatisfy(\.succeeded) { failures.withLock { $0 += 1 } }
                reports.withLock { $0[index] = PushHandlers.report(record, outcomes, dryRun: options.dryRun) }
            }
        }
        group.wait()
        let collected = reports.withLock { $0 }
        let items = collected.keys.sorted().map { collected[$0]! }
        let failed = failures.withLock { $0 }
        let status = failed == 0 ? "success" : (failed == items.count ? "failure" : "partial")
        let body = JSONValue.object(
            JSONObject([
                ("dryRun", .bool(options.dryRun)), ("status", .string(status)), ("services", .integer(items.count)), ("failed", .integer(failed)),
                ("concurrency", .integer(PushHandlers.bulkConcurrency)), ("items", .array(items)),
            ]))
        return Responses.json(failed == 0 ? 200 : 207, body)
    }

    /// - Remark: HTTP `GET /v1/services/{namespace}/{name}/status`
    func getPushStatus(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        guard let version = try store.version(namespace: namespace, name: name) else { throw StoreError.notFound(namespace: namespace, name: name) }
        let configured = Set(clusters.targets.map(\.name))
        let items: [JSONValue] = try store.pushRecords(namespace: namespace, name: name).map { record in
            .object(
                JSONObject([
                    ("cluster", .string(record.cluster)), ("clusterConfigured", .bool(configured.contains(record.cluster))), ("revision", .integer(record.revision)), ("time", .string(record.time)),
                    ("outcome", .string(record.succeeded ? "success" : "failure")),
                    ("outOfDate", .bool(record.uid != version.uid || record.revision != version.revision || !record.succeeded)),
                    ("objects", .array(record.objects.map { .string("\($0.kind)/\($0.name)") })),
                ]))
        }
        return Responses.json(
            200, .object(JSONObject([("revision", .integer(version.revision)), ("items", .array(items))])))
    }

    /// - Remark: HTTP `GET /v1/services/{namespace}/{name}/diff`
    func getDiff(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        guard let clusterName = context.request.queryValue("cluster"), !clusterName.isEmpty else {
            throw APIError.badRequest("cluster is required: the name of a cluster from GET /v1/clusters", field: "cluster")
        }
        guard let target = clusters.target(named: clusterName) else {
            throw APIError.badRequest("no cluster named \"\(clusterName)\"", field: "cluster")
        }
        guard let record = try store.record(namespace: namespace, name: name) else { throw StoreError.notFound(namespace: namespace, name: name) }
        let drift: [JSONValue]
        do {
            drift = try DriftDetector.drift(record.service, api: clusters.api(target))
        } catch {
            throw APIError.badGateway(error.description)
        }
        return Responses.json(
            200,
            .object(
                JSONObject([
                    ("cluster", .string(clusterName)), ("revision", .integer(record.revision)), ("inSync", .bool(drift.isEmpty)),
                    ("drift", .array(drift)),
                ])))
    }

    /// Deletes the service's objects from every cluster it was pushed to (for `?cascade=true`);
    /// returns the failures (empty when all went).
    func cascade(namespace: String, name: String, context: RequestContext) throws -> [ClusterOutcome] {
        var failures: [ClusterOutcome] = []
        for record in try store.pushRecords(namespace: namespace, name: name) {
            guard let target = clusters.target(named: record.cluster), target.usable else {
                failures.append(ClusterOutcome(cluster: record.cluster, objects: [], error: "cluster \(record.cluster) is not configured or not usable"))
                continue
            }
            let outcome = engine.deleteEverywhere(namespace: namespace, name: name, from: target)
            if outcome.succeeded {
                try? store.forgetPush(namespace: namespace, name: name, cluster: record.cluster)
            } else {
                failures.append(outcome)
            }
        }
        return failures
    }
}
