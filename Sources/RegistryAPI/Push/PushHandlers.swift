import Dispatch
import Foundation
import HTTPServer
import KubernetesClient
import Logging
import Reconciler
import RegistryCore
import RegistryStorage
import Synchronization

/// Handlers of the cluster routes: list clusters, push, bulk push, status, diff, cascade delete.
/// None of them waits on a cluster with a worker thread: the work goes to the `Reconciler` and
/// the answer comes back through a deferred response (the connection is suspended), by the
/// request's deadline at the latest.
struct PushHandlers: Sendable {
    let clusters: Clusters
    let reconciler: Reconciler
    let store: ServiceStore
    let metrics: RegistryMetrics
    let logger: Logger
    /// Pushes of a bulk request the reconciler works on at once per cluster.
    static var bulkConcurrency: Int { 4 }
    /// How long a probe of `GET /v1/clusters?probe=true` may take.
    static let probeDeadline = Duration.seconds(5)

    /// - Remark: HTTP `GET /v1/clusters`
    func listClusters(_ context: RequestContext) throws -> HTTPResponse {
        let probe = try ServiceHandlers.flag(context.request, "probe")
        @Sendable func describe(_ target: ClusterTarget, probed: Result<String, SyncError>?) -> JSONValue {
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
            switch probed {
            case .success(let version)?:
                object["version"] = .string(version)
                object["reachable"] = .bool(true)
            case .failure(let error)?:
                object["reachable"] = .bool(false)
                object["error"] = .string(error.description)
            case nil where probe && target.usable:
                object["reachable"] = .bool(false)
                object["error"] = .string("no answer within \(PushHandlers.probeDeadline.components.seconds) s")
            case nil:
                break
            }
            return .object(object)
        }
        let targets = clusters.targets
        let usable = targets.filter(\.usable)
        guard probe, !usable.isEmpty else {
            return Responses.json(200, .object(JSONObject([("items", .array(targets.map { describe($0, probed: nil) }))])))
        }
        let gather = Gather<Result<String, SyncError>>(expected: usable.count) { results in
            Responses.json(200, .object(JSONObject([("items", .array(targets.map { describe($0, probed: results[$0.name]) }))])))
        }
        for target in usable {
            reconciler.probe(cluster: target.name) { result in gather.add(target.name, result) }
        }
        return gather.response(deadline: PushHandlers.probeDeadline)
    }

    struct PushOptions {
        /// nil: the service's bound clusters.
        var targets: [ClusterTarget]?
        var dryRun: Bool
        var adopt: Bool
        /// `?timeout=`: how long to wait for the clusters before answering 202.
        var timeout: Duration
    }

    /// Reads `{"clusters": [...], "dryRun": bool, "adopt": bool}` (without `clusters`: the
    /// service's bound clusters) and `?timeout=` (seconds, default 30).
    private func options(_ request: HTTPRequest) throws -> PushOptions {
        var object = JSONObject()
        if !request.body.isEmpty {
            guard case .object(let parsed) = try RequestChecks.jsonBodyWithoutNulls(request) else {
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
        var targets: [ClusterTarget]? = nil
        switch object["clusters"] {
        case nil, .null?:
            break
        case .array(let names)?:
            var named: [ClusterTarget] = []
            defer { targets = named }
            for (index, value) in names.enumerated() {
                guard case .string(let name) = value else {
                    violations.append(FieldViolation("clusters[\(index)]", .wrongType, "must be a cluster name"))
                    continue
                }
                guard let target = clusters.target(named: name) else {
                    let known = clusters.targets.map(\.name).joined(separator: ", ")
                    violations.append(
                        FieldViolation("clusters[\(index)]", .notSupported, "no cluster named \"\(name)\" (known: \(known.isEmpty ? "none" : known))")
                    )
                    continue
                }
                if let reason = target.unusableReason {
                    violations.append(FieldViolation("clusters[\(index)]", .invalid, "cluster \"\(name)\" is not usable: \(reason)"))
                    continue
                }
                named.append(target)
            }
            if names.isEmpty {
                violations.append(
                    FieldViolation("clusters", .required, "name at least one cluster, or leave the field out for the service's bound clusters"))
            }
        case let other?:
            violations.append(FieldViolation("clusters", .wrongType, "must be an array of cluster names, not \(other.typeName)"))
        }
        let options = PushOptions(
            targets: targets, dryRun: flag("dryRun"), adopt: flag("adopt"), timeout: try PushHandlers.timeout(request))
        if !violations.isEmpty { throw ValidationFailure(violations) }
        return options
    }

    /// `?timeout=` in seconds (0–300, default 30): how long a request waits for clusters.
    static func timeout(_ request: HTTPRequest) throws(APIError) -> Duration {
        guard let text = request.queryValue("timeout") else { return .seconds(30) }
        guard let seconds = Int(text), (0...300).contains(seconds) else {
            throw .badRequest("timeout must be a whole number of seconds from 0 to 300, not \"\(text)\"", field: "timeout")
        }
        return .seconds(seconds)
    }

    /// The clusters a push of `record` goes to: the named ones, else its bound ones. None is a 422
    /// listing the known clusters (never every context of the kubeconfig).
    private func targetNames(_ record: ServiceRecord, _ options: PushOptions) throws(ValidationFailure) -> [String] {
        if let targets = options.targets { return targets.map(\.name) }
        let usable = Set(clusters.targets.filter(\.usable).map(\.name))
        let bound = record.service.clusters.filter { usable.contains($0) }
        if bound.isEmpty {
            let known = clusters.targets.filter(\.usable).map(\.name).joined(separator: ", ")
            throw ValidationFailure([
                FieldViolation(
                    "clusters", .required,
                    "service \(record.service.namespace)/\(record.service.name) is bound to no usable cluster: name the clusters to push to"
                        + " (known: \(known.isEmpty ? "none" : known)), or bind it with the service's \"clusters\" field")
            ])
        }
        return bound
    }

    /// Counts, audits and (for real pushes) records one cluster's result.
    private func record(_ record: ServiceRecord, _ result: SyncResult, context: RequestContext) {
        for object in result.objects { metrics.recordPush(cluster: result.cluster, action: object.action.rawValue) }
        if result.error != nil && result.objects.isEmpty { metrics.recordPush(cluster: result.cluster, action: "failed") }
        guard !result.dryRun else { return }
        let written = result.objects.filter { [.created, .configured, .unchanged, .recreated].contains($0.action) }.map {
            PushedObject(kind: $0.kind, name: $0.name)
        }
        do {
            try store.recordPush(
                namespace: record.service.namespace, name: record.service.name,
                record: PushRecord(
                    cluster: result.cluster, uid: record.uid, revision: record.revision, succeeded: result.succeeded, objects: written),
                audit: context.audit, status: result.succeeded ? 200 : 502,
                detail: result.succeeded ? nil : (result.error?.description ?? result.objects.compactMap(\.error).first))
        } catch {
            // The push happened (its outcome is in the reconcile state); only its audit line is missing.
            logger.error(
                "could not audit a push",
                metadata: ["cluster": "\(result.cluster)", "service": "\(record.service.namespace)/\(record.service.name)", "error": "\(error)"])
        }
    }

    private static func report(_ record: ServiceRecord, _ results: [SyncResult], clusters: [String], dryRun: Bool) -> JSONValue {
        let failed = results.filter { !$0.succeeded }.count
        let status = failed == 0 ? "success" : (failed == results.count ? "failure" : "partial")
        let ordered = clusters.compactMap { name in results.first { $0.cluster == name } }
        return .object(
            JSONObject([
                ("namespace", .string(record.service.namespace)), ("name", .string(record.service.name)), ("revision", .integer(record.revision)),
                ("dryRun", .bool(dryRun)), ("status", .string(status)), ("clusters", .array(ordered.map(\.json))),
            ]))
    }

    /// The 202 answer when the clusters did not answer in time: where to poll.
    private static func accepted(_ location: String, detail: String) -> HTTPResponse {
        Responses.json(
            202,
            JSONWriter.bytes(.object(JSONObject([("status", .string("pending")), ("detail", .string(detail)), ("statusURL", .string(location))]))),
            location: location)
    }

    /// - Remark: HTTP `POST /v1/services/{namespace}/{name}/push`
    ///
    /// Answers when every cluster has a result (200 all succeeded, 207 otherwise), or at
    /// `?timeout=` with 202 and the `Location` of the service's status.
    func pushService(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        let options = try options(context.request)
        guard let record = try store.record(namespace: namespace, name: name) else { throw StoreError.notFound(namespace: namespace, name: name) }
        let targets = try targetNames(record, options)
        // RFC 9110 §13.2.1: the preconditions come after what would fail without them.
        try RequestChecks.checkPreconditionsWithoutEntity(context.request, hasRepresentation: false)
        let location = "/v1/services/\(namespace)/\(name)/status"
        let gather = Gather<SyncResult>(expected: targets.count) { results in
            let ordered = targets.compactMap { results[$0] }
            return Responses.json(
                ordered.allSatisfy(\.succeeded) ? 200 : 207, PushHandlers.report(record, ordered, clusters: targets, dryRun: options.dryRun))
        } late: {
            PushHandlers.accepted(location, detail: "the push is queued or being retried; poll the status for its outcome")
        }
        reconciler.push(namespace: namespace, name: name, clusters: targets, dryRun: options.dryRun, adopt: options.adopt) { result in
            self.record(record, result, context: context)
            gather.add(result.cluster, result)
        }
        return gather.response(deadline: options.timeout)
    }

    /// - Remark: HTTP `POST /v1/push`
    ///
    /// Every selected service to its clusters (named, else each one's bound clusters; services
    /// bound to none are listed under `skipped`). One summary when all are done, or 202 at
    /// `?timeout=`.
    func pushMany(_ context: RequestContext) throws -> HTTPResponse {
        let namespace = try ServiceHandlers.namespaceFilter(context)
        let selector = try LabelSelector(parsing: context.request.queryValue("labelSelector") ?? "")
        let options = try options(context.request)
        try RequestChecks.checkPreconditionsWithoutEntity(context.request, hasRepresentation: false)
        let scope = context.principal.scope
        let versions = try store.versions(namespace: namespace, selector: selector, allowed: scope.allows)
        var work: [(record: ServiceRecord, targets: [String])] = []
        var skipped: [String] = []
        for version in versions {
            guard let record = try store.record(namespace: version.key.namespace, name: version.key.name) else { continue }
            do {
                work.append((record, try targetNames(record, options)))
            } catch {
                skipped.append("\(version.key.namespace)/\(version.key.name)")
            }
        }
        if work.isEmpty && !skipped.isEmpty {
            let known = clusters.targets.filter(\.usable).map(\.name).joined(separator: ", ")
            throw ValidationFailure([
                FieldViolation(
                    "clusters", .required,
                    "none of the selected services is bound to a usable cluster: name the clusters (known: \(known.isEmpty ? "none" : known))")
            ])
        }
        let keys = work.flatMap { item in item.targets.map { "\(item.record.service.namespace)/\(item.record.service.name)@\($0)" } }
        let (selected, skippedNames) = (work, skipped)
        let gather = Gather<SyncResult>(expected: keys.count) { results in
            var failed = 0
            let items: [JSONValue] = selected.map { item in
                let prefix = "\(item.record.service.namespace)/\(item.record.service.name)@"
                let ordered = item.targets.compactMap { results[prefix + $0] }
                if !ordered.allSatisfy(\.succeeded) { failed += 1 }
                return PushHandlers.report(item.record, ordered, clusters: item.targets, dryRun: options.dryRun)
            }
            let status = failed == 0 ? "success" : (failed == items.count ? "failure" : "partial")
            var body = JSONObject([
                ("dryRun", .bool(options.dryRun)), ("status", .string(status)), ("services", .integer(items.count)), ("failed", .integer(failed)),
                ("concurrency", .integer(PushHandlers.bulkConcurrency)), ("items", .array(items)),
            ])
            if !skippedNames.isEmpty { body["skipped"] = .array(skippedNames.map(JSONValue.string)) }
            return Responses.json(failed == 0 ? 200 : 207, .object(body))
        } late: {
            let location = options.targets?.count == 1 ? "/v1/clusters/\(options.targets![0].name)/status" : "/v1/clusters"
            return PushHandlers.accepted(location, detail: "the pushes are queued or being retried; poll each service's status")
        }
        for item in work {
            let record = item.record
            reconciler.push(
                namespace: record.service.namespace, name: record.service.name, clusters: item.targets, dryRun: options.dryRun, adopt: options.adopt
            ) { result in
                self.record(record, result, context: context)
                gather.add("\(record.service.namespace)/\(record.service.name)@\(result.cluster)", result)
            }
        }
        return gather.response(deadline: options.timeout)
    }

    /// - Remark: HTTP `GET /v1/services/{namespace}/{name}/status`
    ///
    /// Per bound or pushed cluster, what the reconciler saw there.
    func getPushStatus(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        guard let version = try store.version(namespace: namespace, name: name) else { throw StoreError.notFound(namespace: namespace, name: name) }
        let configured = Set(clusters.targets.map(\.name))
        let items: [JSONValue] = try store.reconcileStates(namespace: namespace, name: name).map { state in
            var item = PushHandlers.json(state, uid: version.uid, revision: version.revision)
            if case .object(var object) = item {
                // False once a kubeconfig reload removed the cluster: its state is kept, nothing more happens there.
                object["clusterConfigured"] = .bool(configured.contains(state.cluster))
                item = .object(object)
            }
            return item
        }
        return Responses.json(200, .object(JSONObject([("revision", .integer(version.revision)), ("items", .array(items))])))
    }

    static func json(_ state: ReconcileState, uid: String?, revision: Int?) -> JSONValue {
        var object = JSONObject([
            ("cluster", .string(state.cluster)), ("source", .string(state.source.rawValue)), ("state", .string(state.state.rawValue)),
            ("revision", .integer(state.revision)),
        ])
        object["lastSyncTime"] = state.lastSyncTime.map(JSONValue.string) ?? .null
        object["lastError"] = state.lastError ?? .null
        object["attempts"] = .integer(state.attempts)
        object["nextAttemptTime"] = state.nextAttemptTime.map(JSONValue.string) ?? .null
        if let revision {
            object["outOfDate"] = .bool(state.uid != uid || state.revision != revision || state.state != .synced)
        }
        return .object(object)
    }

    /// - Remark: HTTP `GET /v1/clusters/{name}/status`
    func getClusterStatus(_ context: RequestContext) throws -> HTTPResponse {
        let name = context.parameter("name")
        guard clusters.target(named: name) != nil else { throw APIError.notFound("no cluster named \"\(name)\" (see GET /v1/clusters)") }
        let summary = try reconciler.summary(cluster: name)
        let scope = context.principal.scope
        let counts = JSONObject(ReconcileState.Phase.allCases.map { ($0.rawValue, .integer(summary.counts[$0] ?? 0)) })
        let notSynced: [JSONValue] = summary.notSynced.filter { scope.allows($0.namespace) }.map { state in
            var object = JSONObject([("namespace", .string(state.namespace)), ("name", .string(state.name))])
            if case .object(let fields) = PushHandlers.json(state, uid: nil, revision: nil) {
                for member in fields where member.key != "cluster" { object[member.key] = member.value }
            }
            return .object(object)
        }
        var body = JSONObject([("cluster", .string(name)), ("counts", .object(counts)), ("notSynced", .array(notSynced))])
        body["lastSuccessfulSyncTime"] = summary.lastSuccessfulSync.map { .string(ServiceStore.rfc3339($0)) } ?? .null
        return Responses.json(200, .object(body))
    }

    /// - Remark: HTTP `GET /v1/services/{namespace}/{name}/diff`
    func getDiff(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        guard let clusterName = context.request.queryValue("cluster"), !clusterName.isEmpty else {
            throw APIError.badRequest("cluster is required: the name of a cluster from GET /v1/clusters", field: "cluster")
        }
        guard let target = clusters.target(named: clusterName), target.usable else {
            throw APIError.badRequest("no usable cluster named \"\(clusterName)\"", field: "cluster")
        }
        let timeout = try PushHandlers.timeout(context.request)
        // A diff must read the cluster: no time to wait would only ever answer 504.
        if timeout == .zero {
            throw APIError.badRequest("timeout must be a whole number of seconds from 1 to 300 for a diff, not 0", field: "timeout")
        }
        guard let record = try store.record(namespace: namespace, name: name) else { throw StoreError.notFound(namespace: namespace, name: name) }
        let instance = context.request.path
        let requestID = context.requestID
        let gather = Gather<Result<[FieldDifference], SyncError>>(expected: 1) { results in
            switch results[clusterName] {
            case .success(let drift)?:
                return Responses.json(
                    200,
                    .object(
                        JSONObject([
                            ("cluster", .string(clusterName)), ("revision", .integer(record.revision)), ("inSync", .bool(drift.isEmpty)),
                            ("drift", .array(drift.map(\.json))),
                        ])))
            case .failure(let error)?:
                return PushHandlers.problem(.badGateway(error.description), instance: instance, requestID: requestID)
            case nil:
                return PushHandlers.problem(.badGateway("no result"), instance: instance, requestID: requestID)
            }
        } late: {
            PushHandlers.problem(
                .gatewayTimeout("cluster \(clusterName) did not answer within \(timeout.components.seconds) s"), instance: instance,
                requestID: requestID)
        }
        reconciler.diff(namespace: namespace, name: name, cluster: clusterName) { result in gather.add(clusterName, result) }
        return gather.response(deadline: timeout)
    }

    /// A problem response built through `ErrorMapping`, for answers given after the handler returned.
    static func problem(_ error: APIError, instance: String, requestID: String) -> HTTPResponse {
        let problem = ErrorMapping.problem(for: error)
        return HTTPResponse(
            status: problem.status, headers: HTTPHeaders([("Content-Type", ProblemDetails.mediaType)]),
            body: JSONWriter.bytes(problem.json(instance: instance, requestID: requestID)))
    }
}

/// Collects results keyed by name from other threads and completes a deferred response when
/// all have arrived, or at the deadline with `late()` (or with what arrived, when no `late`).
final class Gather<Value: Sendable>: Sendable {
    private let expected: Int
    private let results = Mutex<[String: Value]>([:])
    private let deferred = DeferredResponse()
    private let build: @Sendable ([String: Value]) -> HTTPResponse
    private let late: (@Sendable () -> HTTPResponse)?

    init(expected: Int, _ build: @escaping @Sendable ([String: Value]) -> HTTPResponse, late: (@Sendable () -> HTTPResponse)? = nil) {
        self.expected = expected
        self.build = build
        self.late = late
    }

    func add(_ key: String, _ value: Value) {
        let complete = results.withLock { results -> [String: Value]? in
            results[key] = value
            return results.count >= expected ? results : nil
        }
        if let complete { deferred.complete(build(complete)) }
    }

    /// The deferred response, with its deadline armed.
    func response(deadline: Duration) -> HTTPResponse {
        if expected == 0 { deferred.complete(build([:])) }
        DispatchQueue.global().asyncAfter(deadline: .now() + deadline.dispatchInterval) { [self] in
            guard !deferred.isCompleted else { return }
            deferred.complete(late?() ?? build(results.withLock { $0 }))
        }
        return .deferred(deferred)
    }
}
