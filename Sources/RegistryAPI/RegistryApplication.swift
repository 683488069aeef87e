import Foundation
import Synchronization
public import HTTPServer
import KubernetesClient
public import Liveness
public import Logging
public import Reconciler
import RegistryCore
import RegistryResources
public import RegistryStorage

/// The HTTP application: routes every request to its handler, maps errors to problem+json in
/// one place, stamps `X-Request-Id`, and logs one line per request.
public final class RegistryApplication: HTTPHandler {
    public let router: Router
    private let store: ServiceStore
    private let logger: Logger
    /// nil: no tokens file, every caller is `anonymous` (the server then binds to loopback only).
    private let authenticator: TokenAuthenticator?
    private let metrics: RegistryMetrics
    /// Keeps bound services in their clusters; started by `RegistryService` (or the caller).
    public let reconciler: Reconciler
    /// Probes the addresses of services with a `healthCheck`; started by `startLiveness()`.
    public let liveness: HealthChecker

    /// Which otherwise protected documents are open to callers without a token.
    public struct Openness: Sendable {
        public var openAPI = true
        public var metrics = false
        public init() {}
    }

    public init(
        store: ServiceStore, logger: Logger, authenticator: TokenAuthenticator? = nil, openness: Openness = Openness(),
        clusters: Clusters = .none, defaultClusters: [String] = [], reconcilerConfiguration: Reconciler.Configuration = Reconciler.Configuration(),
        livenessConfiguration: HealthChecker.Configuration = HealthChecker.Configuration(), prober: any Prober = SocketProber()
    ) {
        self.store = store
        self.logger = logger
        self.authenticator = authenticator
        let metrics = RegistryMetrics()
        self.metrics = metrics
        let reconciler = Reconciler(
            store: store, clients: clusters.targets.filter(\.usable).map { KubernetesClusterClient(target: $0, transport: clusters.transport) },
            configuration: reconcilerConfiguration, logger: logger, observer: metrics)
        self.reconciler = reconciler
        metrics.reconciler = reconciler
        let liveness = HealthChecker(prober: prober, configuration: livenessConfiguration, logger: logger, observer: metrics)
        self.liveness = liveness
        metrics.liveness = liveness
        reconciler.setEffectiveView { liveness.effective($0) }
        liveness.onChange { [weak reconciler] keys in reconciler?.effectiveChanged(keys) }
        let push = PushHandlers(clusters: clusters, reconciler: reconciler, store: store, metrics: metrics)
        self.router = Router(
            routes: RegistryApplication.routes(
                services: ServiceHandlers(store: store, push: push, defaultClusters: defaultClusters),
                manifests: ManifestHandlers(store: store, cache: RenderCache(), defaultClusters: defaultClusters, liveness: liveness),
                audit: AuditHandlers(store: store), push: push, metrics: metrics, store: store, openness: openness,
                health: HealthHandlers(store: store, liveness: liveness)))
    }

    /// Loads every registration into the health checker, follows later commits, and starts its
    /// probes (once per process).
    public func startLiveness() throws(StoreError) {
        let liveness = self.liveness
        let store = self.store
        let logger = self.logger
        store.onChange { keys in
            for key in keys {
                do {
                    liveness.update(namespace: key.namespace, name: key.name, service: try store.record(namespace: key.namespace, name: key.name)?.service)
                } catch {
                    logger.error("health checks not updated after a change", metadata: ["service": "\(key.namespace)/\(key.name)", "error": "\(error)"])
                }
            }
        }
        var after: ServiceKey? = nil
        repeat {
            let page = try store.list(namespace: nil, selector: .everything, after: after, limit: 500)
            for document in page.documents {
                guard let json = try? JSONParser.parse(document), let record = ServiceDecoder.storedRecord(json) else { continue }
                if record.service.healthCheck != nil {
                    liveness.update(namespace: record.service.namespace, name: record.service.name, service: record.service)
                }
            }
            after = page.next
        } while after != nil
        liveness.start()
    }

    static func routes(
        services: ServiceHandlers, manifests: ManifestHandlers, audit: AuditHandlers, push: PushHandlers, metrics: RegistryMetrics,
        store: ServiceStore, openness: Openness, health: HealthHandlers
    ) -> [Route] {
        [
            Route("GET", "/healthz", "getHealth", permission: nil) { _ in Responses.json(200, .object(JSONObject([("status", .string("ok"))]))) },
            Route("GET", "/readyz", "getReadiness", permission: nil) { _ in
                do {
                    try store.ping()
                } catch {
                    throw APIError.unavailable("the database is not usable: \(error)")
                }
                return Responses.json(200, .object(JSONObject([("status", .string("ready"))])))
            },
            Route("GET", "/openapi.yaml", "getOpenAPIDocument", permission: openness.openAPI ? nil : .read) { _ in
                HTTPResponse(
                    status: 200, headers: HTTPHeaders([("Content-Type", "application/yaml")]),
                    body: Array(RegistryResources.openAPIDocument.utf8))
            },
            Route("GET", "/metrics", "getMetrics", permission: openness.metrics ? nil : .read) { _ in
                HTTPResponse(
                    status: 200, headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]),
                    body: metrics.exposition(store: store))
            },
            Route("POST", "/v1/services", "createService", permission: .write, handler: services.createService),
            Route("GET", "/v1/services", "listServices", query: ["namespace", "labelSelector", "limit", "continue"], handler: services.listServices),
            Route("GET", "/v1/services/{namespace}/{name}", "getService", handler: services.getService),
            Route("PUT", "/v1/services/{namespace}/{name}", "replaceService", permission: .write, handler: services.replaceService),
            Route("PATCH", "/v1/services/{namespace}/{name}", "patchService", permission: .write, handler: services.patchService),
            Route(
                "DELETE", "/v1/services/{namespace}/{name}", "deleteService", query: ["cascade", "timeout"], permission: .write,
                handler: services.deleteService),
            Route("GET", "/v1/services/{namespace}/{name}/addresses", "listAddresses", handler: services.listAddresses),
            Route("POST", "/v1/services/{namespace}/{name}/addresses", "addAddress", permission: .write, handler: services.addAddress),
            Route("DELETE", "/v1/services/{namespace}/{name}/addresses/{ip}", "deleteAddress", query: ["port"], permission: .write, handler: services.deleteAddress),
            Route(
                "GET", "/v1/services/{namespace}/{name}/manifests", "getServiceManifests", query: ["format", "endpoints"],
                handler: manifests.getServiceManifests),
            Route(
                "GET", "/v1/manifests", "listManifests", query: ["namespace", "labelSelector", "format", "endpoints"],
                handler: manifests.listManifests),
            Route("GET", "/v1/services/{namespace}/{name}/history", "getServiceHistory", handler: audit.getServiceHistory),
            Route("GET", "/v1/services/{namespace}/{name}/health", "getServiceHealth", handler: health.getServiceHealth),
            Route("GET", "/v1/clusters", "listClusters", query: ["probe"], handler: push.listClusters),
            Route("GET", "/v1/clusters/{name}/status", "getClusterStatus", handler: push.getClusterStatus),
            Route("POST", "/v1/services/{namespace}/{name}/push", "pushService", query: ["timeout"], permission: .push, handler: push.pushService),
            Route("POST", "/v1/push", "pushServices", query: ["namespace", "labelSelector", "timeout"], permission: .push, handler: push.pushMany),
            Route("GET", "/v1/services/{namespace}/{name}/status", "getPushStatus", handler: push.getPushStatus),
            Route("GET", "/v1/services/{namespace}/{name}/diff", "getServiceDiff", query: ["cluster", "timeout"], handler: push.getDiff),
            Route(
                "GET", "/v1/audit", "listAudit", query: ["namespace", "name", "actor", "action", "since", "limit", "continue"], permission: .audit,
                handler: audit.listAudit),
            Route("POST", "/v1/import", "importManifests", query: ["dryRun", "onConflict", "namespace"], permission: .write, handler: manifests.importManifests),
        ]
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        let started = ContinuousClock.now
        let requestID = RegistryApplication.requestID(from: request)
        var response: HTTPResponse
        var operation = "-"
        var matched: (route: Route, parameters: [String: String])? = nil
        var caller: Principal? = nil
        do {
            switch router.match(method: request.method, path: request.path) {
            case .found(let route, let parameters):
                operation = route.operationID
                matched = (route, parameters)
                let principal = try authenticate(request, route: route)
                caller = principal
                try authorize(principal, route: route, parameters: parameters)
                try RequestChecks.checkQuery(request, allowed: route.queryParameters)
                response = try route.handler(
                    RequestContext(request: request, parameters: parameters, requestID: requestID, principal: principal, operationID: route.operationID))
            case .methodNotAllowed(let allowed):
                throw APIError.methodNotAllowed(method: request.method, allowed: allowed)
            case .notFound:
                throw APIError.routeNotFound(path: request.path)
            }
        } catch {
            response = problemResponse(ErrorMapping.problem(for: error, logger: logger), request: request, requestID: requestID)
            if case APIError.methodNotAllowed(_, let allowed) = error {
                response.headers.add("Allow", allowed.joined(separator: ", "))
            }
            if case APIError.unauthorized(_, let invalidToken) = error {
                response.headers.add(
                    "WWW-Authenticate", invalidToken ? #"Bearer realm="endpoint-registry", error="invalid_token""# : #"Bearer realm="endpoint-registry""#)
            }
        }
        if let inner = response.deferred {
            // Answered later from another thread: finish the request's bookkeeping then.
            let outer = DeferredResponse()
            let actor = caller?.name ?? "anonymous"
            let (matched, operation) = (matched, operation)
            inner.whenComplete { [self] final in
                var final = final
                final.headers.add("X-Request-Id", requestID)
                self.auditFailure(request, response: final, matched: matched, actor: actor, requestID: requestID)
                let elapsed = ContinuousClock.now - started
                self.metrics.recordRequest(
                    operation: matched == nil ? "unmatched" : operation, method: matched == nil ? "other" : request.method, status: final.status,
                    duration: elapsed)
                self.log(request, response: final, operation: operation, requestID: requestID, elapsed: elapsed)
                outer.complete(final)
            }
            return .deferred(outer)
        }
        response.headers.add("X-Request-Id", requestID)
        auditFailure(request, response: response, matched: matched, actor: caller?.name ?? "anonymous", requestID: requestID)
        let elapsed = ContinuousClock.now - started
        metrics.recordRequest(
            operation: matched == nil ? "unmatched" : operation, method: matched == nil ? "other" : request.method, status: response.status,
            duration: elapsed)
        log(request, response: response, operation: operation, requestID: requestID, elapsed: elapsed)
        return response
    }

    /// Records refused requests, and failed writes, in the audit log. Successful writes are
    /// recorded by the store in the transaction of the change itself.
    private func auditFailure(
        _ request: HTTPRequest, response: HTTPResponse, matched: (route: Route, parameters: [String: String])?, actor: String,
        requestID: String
    ) {
        let denied = response.status == 401 || response.status == 403
        let failedWrite = response.status >= 400 && [.write, .push].contains(matched?.route.permission)
        guard denied || failedWrite else { return }
        let detail = (try? JSONParser.parse(response.body)).flatMap { value -> String? in
            if case .object(let object) = value, case .string(let text)? = object["detail"] { return text }
            return nil
        }
        let entry = AuditEntry(
            actor: actor, action: matched?.route.operationID ?? "\(request.method) \(request.path)",
            namespace: matched?.parameters["namespace"], name: matched?.parameters["name"], revisionBefore: nil, revisionAfter: nil,
            outcome: denied ? .denied : .failure, status: response.status, requestID: requestID, detail: detail)
        do {
            try store.appendAudit(entry)
        } catch {
            logger.error("could not write the audit log", metadata: ["error": "\(error)", "requestId": "\(requestID)"])
        }
    }

    /// Who is asking: `anonymous` on open routes or without a tokens file, else the token's
    /// principal (401 without a known bearer token).
    private func authenticate(_ request: HTTPRequest, route: Route) throws(APIError) -> Principal {
        guard route.permission != nil, let authenticator else { return .anonymous }
        guard let header = request.headers["Authorization"] else {
            throw .unauthorized("this route needs a bearer token (Authorization: Bearer …)", invalidToken: false)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
            let principal = authenticator.principal(forToken: parts[1].trimmingCharacters(in: .whitespaces))
        else {
            throw .unauthorized("the bearer token is not valid", invalidToken: true)
        }
        return principal
    }

    /// Whether the caller may: 403 when the role lacks the route's permission or the token's
    /// namespaces exclude the one in the path.
    private func authorize(_ principal: Principal, route: Route, parameters: [String: String]) throws(APIError) {
        guard let permission = route.permission else { return }
        guard principal.allows(permission) else {
            throw .forbidden(
                "token \"\(principal.name)\" (role \(principal.role.rawValue)) lacks the \(permission.rawValue) permission", missing: "permission:\(permission.rawValue)")
        }
        if let namespace = parameters["namespace"], !principal.scope.allows(namespace) {
            throw .forbidden("token \"\(principal.name)\" may not access namespace \(namespace)", missing: "namespace:\(namespace)")
        }
    }

    public func bodyTooLarge(_ request: HTTPRequest, limit: Int) -> HTTPResponse {
        let requestID = RegistryApplication.requestID(from: request)
        var response = problemResponse(ErrorMapping.problem(for: APIError.payloadTooLarge(limit: limit)), request: request, requestID: requestID)
        response.headers.add("X-Request-Id", requestID)
        response.headers.add("Connection", "close")
        log(request, response: response, operation: "-", requestID: requestID, elapsed: .zero)
        return response
    }

    private func problemResponse(_ problem: ProblemDetails, request: HTTPRequest, requestID: String) -> HTTPResponse {
        HTTPResponse(
            status: problem.status, headers: HTTPHeaders([("Content-Type", ProblemDetails.mediaType)]),
            body: JSONWriter.bytes(problem.json(instance: request.path, requestID: requestID)))
    }

    /// The client's `X-Request-Id` when it is short printable ASCII, otherwise a new one:
    /// a random per-process prefix and a counter (unique, and cheaper than a UUID per request).
    static func requestID(from request: HTTPRequest) -> String {
        if let given = request.headers["X-Request-Id"], (1...128).contains(given.utf8.count),
            given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        {
            return given
        }
        let number = requestCounter.add(1, ordering: .relaxed).newValue
        return requestIDPrefix + String(number, radix: 16)
    }

    private static let requestIDPrefix = String(UInt64.random(in: 1 << 40..<1 << 44), radix: 16) + "-"
    private static let requestCounter = Atomic<Int>(0)

    private func log(_ request: HTTPRequest, response: HTTPResponse, operation: String, requestID: String, elapsed: Duration) {
        guard logger.logLevel <= .info else { return }
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        logger.info(
            "\(request.method) \(request.path) \(response.status)",
            metadata: [
                "durationMs": "\((milliseconds * 1000).rounded() / 1000)", "operation": "\(operation)", "requestId": "\(requestID)",
            ])
    }
}
