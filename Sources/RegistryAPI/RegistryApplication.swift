public import Coordination
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
    /// The format of the request lines (the other lines take the logger's handler's).
    private let logFormat: LogFormat
    /// nil: no tokens file, every caller is `anonymous` (the server then binds to loopback only).
    private let authenticator: TokenAuthenticator?
    private let metrics: RegistryMetrics
    /// Refused and failed requests, counted and written to the audit log in aggregate.
    let refusals: RefusalAggregator
    /// Keeps bound services in their clusters; started by `RegistryService` (or the caller).
    public let reconciler: Reconciler
    /// Probes the addresses of services with a `healthCheck`; started by `startLiveness()`.
    public let liveness: HealthChecker
    /// Resolves the `host` addresses of every service; started by `startLiveness()`.
    public let dns: DNSRefresher
    /// The open watches of `GET /v1/services?watch=true`.
    let watches: WatchHub
    /// Campaigns for the leader lease; the leader alone runs the background work (the
    /// reconciler's, the health checks, the DNS refresh, retention). Started by `RegistryService`.
    public let elector: LeaderElector
    /// Runs the handlers of requests that take long on a worker (see `runsOffWorker`), so that
    /// they do not hold up the other connections of the worker's event loop.
    private let offWorkerQueue = DispatchQueue(label: "endpoint-registry.long-requests", attributes: .concurrent)
    /// Bodies from this size on are handled off the worker thread (decoding 4 MiB takes tens of
    /// milliseconds, during which a worker's other connections would wait).
    static let offWorkerBodyBytes = 64 << 10
    /// Whether `startLiveness` has subscribed to the store's commits (once per process).
    private let followsCommits = Atomic<Bool>(false)
    /// Whether every registration was loaded into the health checker and the DNS refresher once.
    private let registrationsLoaded = Atomic<Bool>(false)
    /// Stores the health checker's snapshots while this replica leads (issue 16).
    private let healthPersister: HealthStatePersister
    /// Shows the leader's stored verdicts while this replica follows (issue 16).
    private let healthFollower: HealthStateFollower
    /// Sets the health checker's targets and the DNS refresher's names from registrations and
    /// DNS changes, one view at a time.
    private let targets: LivenessTargets
    /// When a load of the registrations that failed is tried again.
    private let registrationLoads = RetryTimer(queue: DispatchQueue(label: "registration-loads"))

    /// Bounds of the watch (`GET /v1/services?watch=true`).
    public struct WatchLimits: Sendable {
        /// Watches open at once; more are answered 429. 0 refuses every watch. `serve` keeps it
        /// at most half of the connection limit.
        public var maxWatchers = 500
        /// Bytes of events one watcher may have waiting; a watcher beyond it is dropped.
        public var bufferBytes = 1 << 20
        /// Seconds between BOOKMARK events.
        public var bookmarkIntervalSeconds = 60
        /// The longest a watch stays open, in seconds.
        public var maxDurationSeconds = 1800
        public init() {}
    }

    /// Which otherwise protected documents are open to callers without a token.
    public struct Openness: Sendable {
        public var openAPI = true
        public var metrics = false
        public init() {}
    }

    public init(
        store: ServiceStore, logger: Logger, authenticator: TokenAuthenticator? = nil, openness: Openness = Openness(),
        clusters: Clusters = .none, defaultClusters: [String] = [], reconcilerConfiguration: Reconciler.Configuration = Reconciler.Configuration(),
        livenessConfiguration: HealthChecker.Configuration = HealthChecker.Configuration(), prober: any Prober = SocketProber(),
        resolver: any Resolver = CAresResolver(),
        watchLimits: WatchLimits = WatchLimits(), logFormat: LogFormat = .text, elector: LeaderElector? = nil
    ) {
        self.store = store
        self.logger = logger
        self.logFormat = logFormat
        self.authenticator = authenticator
        let metrics = RegistryMetrics()
        self.metrics = metrics
        let refusals = RefusalAggregator(store: store, logger: logger)
        self.refusals = refusals
        if authenticator != nil { metrics.recordTokensReload(success: true) }
        let reconciler = Reconciler(
            store: store, clients: RegistryApplication.clusterClients(clusters),
            configuration: reconcilerConfiguration, logger: logger, observer: metrics)
        self.reconciler = reconciler
        metrics.reconciler = reconciler
        let liveness = HealthChecker(prober: prober, configuration: livenessConfiguration, logger: logger, observer: metrics)
        self.liveness = liveness
        metrics.liveness = liveness
        let dns = DNSRefresher(resolver: resolver, logger: logger, observer: metrics)
        self.dns = dns
        metrics.dns = dns
        // What every bound cluster is given: `host` addresses resolved, then health applied.
        reconciler.setEffectiveView { liveness.effective(dns.resolved($0)) }
        liveness.onChange { [weak reconciler] keys in reconciler?.effectiveChanged(keys) }
        let healthPersister = HealthStatePersister(store: store, liveness: liveness, dns: dns, logger: logger)
        self.healthPersister = healthPersister
        liveness.onChange { keys in healthPersister.changed(keys) }
        let healthFollower = HealthStateFollower(store: store, liveness: liveness, dns: dns, logger: logger)
        self.healthFollower = healthFollower
        liveness.onChange { keys in healthFollower.changed(keys) }
        dns.onChange { namespace, name in healthPersister.changed([ServiceKey(namespace: namespace, name: name)]) }
        // A change of resolution: the health checker probes the new IPs, the clusters follow.
        let targets = LivenessTargets(store: store, liveness: liveness, dns: dns, logger: logger)
        self.targets = targets
        dns.onChange { [weak reconciler] namespace, name in
            targets.resolutionChanged(namespace: namespace, name: name)
            reconciler?.effectiveChanged([ServiceKey(namespace: namespace, name: name)])
        }
        let push = PushHandlers(clusters: clusters, reconciler: reconciler, store: store, metrics: metrics, logger: logger)
        let watches = WatchHub(
            store: store,
            limits: WatchHub.Limits(
                maxWatchers: watchLimits.maxWatchers, bufferBytes: watchLimits.bufferBytes,
                bookmarkInterval: .seconds(max(1, watchLimits.bookmarkIntervalSeconds)), maxDuration: .seconds(max(1, watchLimits.maxDurationSeconds))
            ),
            logger: logger, onDrop: { metrics.recordWatchDropped() })
        self.watches = watches
        metrics.watches = watches
        let elector =
            elector
            ?? LeaderElector(
                lease: LocalLease(holder: ServerConfiguration.defaultLeaderIdentity(environment: ProcessInfo.processInfo.environment)),
                logger: logger)
        self.elector = elector
        metrics.elector = elector
        self.router = Router(
            routes: RegistryApplication.routes(
                services: ServiceHandlers(
                    store: store, push: push, defaultClusters: defaultClusters, liveness: liveness, dns: dns, watches: watches),
                manifests: ManifestHandlers(store: store, cache: RenderCache(), defaultClusters: defaultClusters, liveness: liveness, dns: dns),
                audit: AuditHandlers(store: store, refusals: refusals), push: push, metrics: metrics, store: store, openness: openness,
                health: HealthHandlers(store: store, liveness: liveness, dns: dns), leader: LeaderHandlers(elector: elector)))
    }

    /// The metrics' view of leadership (`endpoint_registry_leader_transitions_total`), told by
    /// `RegistryService`'s leadership callbacks.
    public var leadershipObserver: any LeaderElectionObserver { metrics }

    /// How long start-up waits for the first resolution of the registered `host` names.
    public static let startupResolutionBudget: Duration = .seconds(5)

    /// Loads every registration into the health checker and the DNS refresher, follows later
    /// commits (subscribed once per process), and starts their threads. Called again after
    /// `stopLiveness(deadline:)` (a replica that leads again, issue 16), it reloads the
    /// registrations (other replicas may have changed them) and resumes.
    ///
    /// `resolutionBudget`: how long the names known now are resolved before this returns.
    ///
    /// When the registrations cannot be read now (the database does not answer), the probes,
    /// the resolutions and the writes of health state start all the same with the services
    /// later commits bring, and the load is tried again after a backoff until it succeeds
    /// (see `loadRegistrationsOrRetry`); the services it then brings continue from their
    /// stored verdicts too.
    public func startLiveness(resolutionBudget: Duration = RegistryApplication.startupResolutionBudget) {
        healthFollower.leadingChanged(true)
        // The names known at start-up are resolved first (for at most `resolutionBudget`), so
        // that the reconciler's first pass, started after this, does not render host addresses
        // empty and withdraw them from the clusters.
        defer {
            liveness.start()
            dns.refreshDue(until: ContinuousClock.now.advanced(by: resolutionBudget))
            dns.start()
        }
        let loaded = loadRegistrationsOrRetry()
        // Continue from the health the last leader stored (issue 16), before the first probe.
        healthPersister.resume(registrationsLoaded: loaded)
    }

    /// On a shared database, while this replica does not lead (issue 16): loads the
    /// registrations into the health checker (which does not probe here) and shows the
    /// verdicts the leader stores (`HealthStateFollower`). Does nothing on SQLite (one process,
    /// which leads) or while leading; `startLiveness` ends it.
    public func followLeader() {
        guard store.database.isShared, healthFollower.mayStart else { return }
        // Once loaded, the checker follows every commit (this replica's and, through the
        // store's change follower, the others'): a replica that stops leading has them all. The
        // services a late load brings are told to the follower, which reads their verdicts.
        if !registrationsLoaded.load(ordering: .sequentiallyConsistent) { loadRegistrationsOrRetry() }
        healthFollower.start()
    }

    /// Ends `followLeader` for good, and every retry of background reads (shutdown).
    public func stopFollowingLeader() {
        healthFollower.close()
        registrationLoads.stop()
        targets.stop()
    }

    /// `loadRegistrations()`; when the store cannot be read, logged and tried again after a
    /// backoff (1 s doubling up to 30 s) until it succeeds or `stopFollowingLeader()`: the
    /// services registered before would otherwise have no health checks (on a follower: show
    /// no verdict) until they change. Commits meanwhile are followed already.
    /// A retry goes through `HealthStatePersister.loadingLate`: on a leader the services it
    /// brings continue from their stored verdicts (and the reconciler renders them again), on
    /// a follower they are read from the leader's stored state at the follower's next pass.
    /// Returns whether this load completed.
    @discardableResult
    private func loadRegistrationsOrRetry(late: Bool = false) -> Bool {
        /// Schedules the next try (nil: not, shutting down); its delay otherwise.
        func retryLater() -> Duration? { registrationLoads.failed { [weak self] in self?.loadRegistrationsOrRetry(late: true) } }
        var complete = false
        do {
            if late {
                let result = healthPersister.loadingLate { stopping throws(StoreError) in
                    complete = try loadRegistrations(stopping: stopping)
                }
                if !result.brought.isEmpty { healthFollower.changed(Array(result.brought)) }
                if !result.restored.isEmpty { reconciler.effectiveChanged(Array(result.restored)) }
                if let failure = result.failure { throw failure }
            } else {
                complete = try loadRegistrations()
            }
        } catch {
            let retry = retryLater()
            logger.error(
                "the registered services could not be loaded into the health checks",
                metadata: ["error": "\(error)", "retryInSeconds": "\(retry.map { "\($0.components.seconds)" } ?? "never (shutting down)")"])
            return false
        }
        guard complete else {
            // Stopped between pages for `pause()` (leading ends): loaded again later.
            _ = retryLater()
            return false
        }
        registrationLoads.succeeded()
        return true
    }

    /// Subscribes the health checker and the DNS refresher to the store's commits (once per
    /// process), then loads every registration with a health check or `host` addresses into them.
    /// `stopping` is asked before each page of 500 after the first: when it says so, the load
    /// ends there and returns false (true: every registration was loaded).
    private func loadRegistrations(stopping: () -> Bool = { false }) throws(StoreError) -> Bool {
        let (store, targets) = (self.store, self.targets)
        if !followsCommits.exchange(true, ordering: .sequentiallyConsistent) {
            store.onCommit { changes in
                for change in changes { targets.follow(change.record, key: change.key) }
            }
        }
        var after: ServiceKey? = nil
        repeat {
            if after != nil && stopping() { return false }
            // Read and applied in one step: a commit meanwhile is applied after the page.
            try targets.followAll { () throws(StoreError) -> [ServiceRecord] in
                let page = try store.list(namespace: nil, selector: .everything, after: after, limit: 500)
                after = page.next
                return page.documents.compactMap { document in
                    guard let json = try? JSONParser.parse(document), let record = ServiceDecoder.storedRecord(json),
                        record.service.healthCheck != nil || !record.service.hosts.isEmpty
                    else { return nil }
                    return record
                }
            }
        } while after != nil
        registrationsLoaded.store(true, ordering: .sequentiallyConsistent)
        return true
    }

    /// Stops the health checks and the DNS refresh (this replica no longer leads), waiting up to
    /// `deadline` for each; their states are kept (and served) until `startLiveness` resumes.
    /// Returns false when a probe or resolution was still running at the deadline.
    @discardableResult
    public func stopLiveness(deadline: Duration) -> Bool {
        let probes = liveness.shutdown(deadline: deadline)
        // The last verdicts are stored before the lease is handed over (issue 16).
        healthPersister.pause()
        healthFollower.leadingChanged(false)
        let resolutions = dns.shutdown(deadline: deadline)
        return probes && resolutions
    }

    /// The reconciler's clients of the usable clusters of `clusters` (at start-up and after a
    /// kubeconfig reload).
    static func clusterClients(_ clusters: Clusters) -> [any ClusterClient] {
        clusters.targets.filter(\.usable).map {
            KubernetesClusterClient(target: $0, transport: clusters.transport, withdrawn: clusters.withdrawal(of: $0.name))
        }
    }

    func clusterClients(_ clusters: Clusters) -> [any ClusterClient] { RegistryApplication.clusterClients(clusters) }

    static func routes(
        services: ServiceHandlers, manifests: ManifestHandlers, audit: AuditHandlers, push: PushHandlers, metrics: RegistryMetrics,
        store: ServiceStore, openness: Openness, health: HealthHandlers, leader: LeaderHandlers
    ) -> [Route] {
        [
            Route("GET", "/healthz", "getHealth", permission: nil) { _ in Responses.json(200, .object(JSONObject([("status", .string("ok"))]))) },
            Route("GET", "/readyz", "getReadiness", permission: nil) { _ in
                if let fault = store.readiness() {
                    throw APIError.unavailable("not ready: \(fault.summary)")
                }
                return Responses.json(200, .object(JSONObject([("status", .string("ready"))])))
            },
            Route("GET", "/openapi.yaml", "getOpenAPIDocument", permission: openness.openAPI ? nil : .read) { _ in
                HTTPResponse(
                    status: 200, headers: HTTPHeaders([("Content-Type", "application/yaml")]),
                    body: Array(RegistryResources.openAPIDocument.utf8))
            },
            Route("GET", "/metrics", "getMetrics", permission: openness.metrics ? nil : .metrics) { _ in
                HTTPResponse(
                    status: 200, headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]),
                    body: metrics.exposition(store: store))
            },
            Route(
                "POST", "/v1/services", "createService", query: ["dryRun"], permission: .write, evaluatesPreconditions: true,
                handler: services.createService),
            Route(
                "GET", "/v1/services", "listServices",
                query: ["namespace", "labelSelector", "limit", "continue", "watch", "resourceVersion", "allowWatchBookmarks", "timeoutSeconds"],
                handler: services.listServices),
            Route("GET", "/v1/services/{namespace}/{name}", "getService", handler: services.getService),
            Route(
                "PUT", "/v1/services/{namespace}/{name}", "replaceService", query: ["dryRun"], permission: .write, evaluatesPreconditions: true,
                handler: services.replaceService),
            Route(
                "PATCH", "/v1/services/{namespace}/{name}", "patchService", query: ["dryRun"], permission: .write, evaluatesPreconditions: true,
                handler: services.patchService),
            Route(
                "DELETE", "/v1/services/{namespace}/{name}", "deleteService", query: ["cascade", "timeout", "dryRun"], permission: .write,
                evaluatesPreconditions: true, handler: services.deleteService),
            Route("GET", "/v1/services/{namespace}/{name}/addresses", "listAddresses", handler: services.listAddresses),
            Route(
                "POST", "/v1/services/{namespace}/{name}/addresses", "addAddress", permission: .write, evaluatesPreconditions: true,
                handler: services.addAddress),
            Route(
                "DELETE", "/v1/services/{namespace}/{name}/addresses/{ip}", "deleteAddress", query: ["port"], permission: .write,
                evaluatesPreconditions: true, handler: services.deleteAddress),
            Route(
                "GET", "/v1/services/{namespace}/{name}/manifests", "getServiceManifests", query: ["format", "endpoints"],
                handler: manifests.getServiceManifests),
            Route(
                "GET", "/v1/manifests", "listManifests", query: ["namespace", "labelSelector", "format", "endpoints"],
                handler: manifests.listManifests),
            Route(
                "GET", "/v1/services/{namespace}/{name}/history", "getServiceHistory", query: ["limit", "continue"], handler: audit.getServiceHistory),
            Route("GET", "/v1/services/{namespace}/{name}/health", "getServiceHealth", handler: health.getServiceHealth),
            Route("GET", "/v1/leader", "getLeader", handler: leader.getLeader),
            Route("GET", "/v1/clusters", "listClusters", query: ["probe"], handler: push.listClusters),
            Route("GET", "/v1/clusters/{name}/status", "getClusterStatus", handler: push.getClusterStatus),
            Route(
                "POST", "/v1/services/{namespace}/{name}/push", "pushService", query: ["timeout"], permission: .push, evaluatesPreconditions: true,
                handler: push.pushService),
            Route(
                "POST", "/v1/push", "pushServices", query: ["namespace", "labelSelector", "timeout"], permission: .push, evaluatesPreconditions: true,
                handler: push.pushMany),
            Route("GET", "/v1/services/{namespace}/{name}/status", "getPushStatus", handler: push.getPushStatus),
            Route("GET", "/v1/services/{namespace}/{name}/diff", "getServiceDiff", query: ["cluster", "timeout"], handler: push.getDiff),
            Route(
                "GET", "/v1/audit", "listAudit", query: ["namespace", "name", "actor", "action", "since", "limit", "continue"], permission: .audit,
                handler: audit.listAudit),
            Route(
                "POST", "/v1/import", "importManifests", query: ["dryRun", "onConflict", "namespace", "strict"], permission: .write,
                evaluatesPreconditions: true, runsOffWorker: true,
                handler: manifests.importManifests),
        ]
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        let started = Stopwatch()
        let requestID = RegistryApplication.requestID(from: request)
        var response: HTTPResponse
        var operation = "-"
        var matched: (route: Route, parameters: PathParameters)? = nil
        var caller: Principal? = nil
        do {
            do {
                try RequestChecks.checkSingletonFields(request)
                try RequestChecks.checkPath(request)
            } catch {
                (matched, caller) = attribution(of: request, refusedWith: error)
                operation = matched?.route.operationID ?? operation
                throw error
            }
            switch router.match(method: request.method, path: request.path) {
            case .found(let route, let parameters):
                operation = route.operationID
                matched = (route, parameters)
                let principal = try authenticate(request, route: route)
                caller = principal
                try authorize(principal, route: route, parameters: parameters)
                try RequestChecks.checkQuery(request, allowed: route.queryParameters)
                try RegistryApplication.checkServicePath(route, parameters)
                try checkPreconditionsBeforeHandler(request, route: route)
                let context = RequestContext(
                    request: request, parameters: parameters, requestID: requestID, principal: principal, operationID: route.operationID,
                    application: self)
                if runsOffWorker(route, request) {
                    // libmicrohttpd keeps each connection on the worker that accepted it: a long
                    // handler there would stall every other connection of that worker.
                    let handled = DeferredResponse()
                    offWorkerQueue.async { [self] in
                        let response: HTTPResponse
                        do {
                            response = try route.handler(context)
                        } catch {
                            response = errorResponse(error, request: request, requestID: requestID)
                        }
                        handled.complete(forwarding: response)
                    }
                    response = .deferred(handled)
                } else {
                    response = try route.handler(context)
                }
                response = try RegistryApplication.applyReadPreconditions(response, request: request)
            case .methodNotAllowed(let allowed):
                throw APIError.methodNotAllowed(method: request.method, allowed: allowed)
            case .notFound:
                throw APIError.routeNotFound(path: request.path)
            }
        } catch {
            response = errorResponse(error, request: request, requestID: requestID)
        }
        if let inner = response.deferred {
            // Answered later from another thread: finish the request's bookkeeping then.
            let outer = DeferredResponse()
            let (matched, caller, operation) = (matched, caller, operation)
            inner.whenComplete { [self] final in
                let checked: HTTPResponse
                do {
                    checked = try RegistryApplication.applyReadPreconditions(final, request: request)
                } catch {
                    checked = self.errorResponse(error, request: request, requestID: requestID)
                }
                outer.complete(
                    self.finish(
                        checked, request: request, requestID: requestID, matched: matched, caller: caller, operation: operation, started: started))
            }
            return .deferred(outer)
        }
        return finish(
            consume response, request: request, requestID: requestID, matched: matched, caller: caller, operation: operation, started: started)
    }

    /// Whether a request's handler runs off the worker thread: an import (its decoding and its
    /// transaction take long) or a body of `offWorkerBodyBytes` or more.
    private func runsOffWorker(_ route: Route, _ request: HTTPRequest) -> Bool {
        route.runsOffWorker || request.body.count >= Self.offWorkerBodyBytes
    }

    /// The preconditions of a write whose handler does not evaluate them against an entity tag of
    /// its own (`Route.evaluatesPreconditions`), before its content is processed (RFC 9110
    /// §13.2.1): its target is a collection or a processing resource, with a representation when
    /// the same path can be read.
    private func checkPreconditionsBeforeHandler(_ request: HTTPRequest, route: Route) throws(APIError) {
        guard request.method != "GET", request.method != "HEAD", !route.evaluatesPreconditions else { return }
        guard request.headers["If-Match"] != nil || request.headers["If-None-Match"] != nil else { return }
        let readable = router.routes.contains { $0.method == "GET" && $0.template == route.template }
        try RequestChecks.checkPreconditionsWithoutEntity(request, hasRepresentation: readable)
    }

    /// RFC 9110 §13.2.2 for every read that succeeded, against the `ETag` it carries (or none):
    /// handlers that serve an entity tag evaluate the preconditions before building the body;
    /// this holds the rule for every other read too. 412 is thrown; a 304 is returned.
    static func applyReadPreconditions(_ response: HTTPResponse, request: HTTPRequest) throws(APIError) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD", (200..<300).contains(response.status), response.deferred == nil,
            response.stream == nil
        else { return response }
        guard request.headers["If-Match"] != nil || request.headers["If-None-Match"] != nil else { return response }
        let etag = response.headers["ETag"]
        return try RequestChecks.readPreconditions(request, etag: etag) ? Responses.notModified(etag: etag) : response
    }

    /// The `{namespace}` (DNS-1123 label) and `{name}` (DNS-1035 label) of a service's URL, checked
    /// before the route's handler and its preconditions: no service can have an invalid one, so
    /// the answer is 404, as the Kubernetes API server answers a read of an invalid name; for a PUT
    /// (which may create) 422 naming the field, as a create with that name would get.
    static func checkServicePath(_ route: Route, _ parameters: PathParameters) throws {
        guard route.namesOneService else { return }
        let namespace = parameters["namespace"] ?? ""
        let name = parameters["name"] ?? ""
        // The usual case, checked without the messages.
        guard !KubernetesNames.isDNS1123Label(namespace) || !KubernetesNames.isDNS1035Label(name) else { return }
        let violations =
            KubernetesNames.dns1123Label(namespace).map { FieldViolation("namespace", .invalid, "\"\(namespace)\": \($0)") }
            + KubernetesNames.dns1035Label(name).map { FieldViolation("name", .invalid, "\"\(name)\": \($0)") }
        guard let first = violations.first else { return }
        if route.method == "PUT" { throw ValidationFailure(violations) }
        throw APIError.notFound("service \(namespace)/\(name) does not exist: its \(first.field) \(first.message)")
    }

    /// Stamps the request id, audits refusals and failed writes, counts and logs the request.
    private func finish(
        _ response: consuming HTTPResponse, request: HTTPRequest, requestID: String, matched: (route: Route, parameters: PathParameters)?,
        caller: Principal?, operation: String, started: Stopwatch
    ) -> HTTPResponse {
        // Consumed, not copied: the headers' buffer stays unique and takes the field in place.
        var response = response
        response.headers.add("X-Request-Id", requestID)
        auditFailure(request, response: response, matched: matched, actor: caller?.name ?? "anonymous", requestID: requestID)
        let elapsed = started.elapsedNanoseconds
        metrics.recordRequest(
            route: matched?.route, operation: matched?.route.template ?? "unmatched", method: matched == nil ? "other" : request.method,
            status: response.status,
            nanoseconds: elapsed)
        log(
            request, response: response, route: matched?.route.template, operation: operation, actor: caller?.name ?? "anonymous",
            requestID: requestID, elapsed: elapsed)
        return response
    }

    /// The problem+json answer for an error, with the headers its status calls for.
    func errorResponse(_ error: any Error, request: HTTPRequest, requestID: String) -> HTTPResponse {
        var response = problemResponse(ErrorMapping.problem(for: error, logger: logger), request: request, requestID: requestID)
        if case APIError.methodNotAllowed(_, let allowed) = error {
            response.headers.add("Allow", allowed.joined(separator: ", "))
        }
        if case APIError.unsupportedMediaType(_, let accepted) = error {
            // RFC 5789 §2.2: a 415 to a PATCH SHOULD list the patch formats in `Accept-Patch`;
            // RFC 9110 §15.5.16: for other methods `Accept` can list the media types accepted.
            response.headers.add(request.method == "PATCH" ? "Accept-Patch" : "Accept", accepted.joined(separator: ", "))
        }
        if case APIError.unauthorized(_, let invalidToken) = error {
            response.headers.add(
                "WWW-Authenticate", invalidToken ? #"Bearer realm="endpoint-registry", error="invalid_token""# : #"Bearer realm="endpoint-registry""#)
        }
        if let rejection = error as? HTTPRejection, let seconds = rejection.retryAfterSeconds {
            response.headers.add("Retry-After", String(seconds))
        }
        return response
    }

    /// Before a body is read: refuses a request to a protected route without a valid token
    /// (401), or whose token may not use the route or the namespace in its path (403), so that
    /// no unauthenticated body is ever buffered. Other problems wait for the whole request.
    public func admit(_ request: HTTPRequest) -> HTTPResponse? {
        let started = Stopwatch()
        // A repeated singleton field (two `Authorization` headers) is refused before the body,
        // and before a token is read from it; so is a path that would be routed differently
        // once decoded (`default%2Fweb`), before its namespace is checked against the token.
        do {
            try RequestChecks.checkSingletonFields(request)
            try RequestChecks.checkPath(request)
        } catch {
            let requestID = RegistryApplication.requestID(from: request)
            let (matched, caller) = attribution(of: request, refusedWith: error)
            return finish(
                errorResponse(error, request: request, requestID: requestID), request: request, requestID: requestID, matched: matched,
                caller: caller, operation: matched?.route.operationID ?? "-", started: started)
        }
        // Without a tokens file every caller is anonymous with every right: nothing to refuse.
        guard authenticator != nil else { return nil }
        guard case .found(let route, let parameters) = router.match(method: request.method, path: request.path), route.permission != nil else {
            return nil
        }
        var caller: Principal? = nil
        do {
            let principal = try authenticate(request, route: route)
            caller = principal
            try authorize(principal, route: route, parameters: parameters)
            return nil
        } catch {
            let requestID = RegistryApplication.requestID(from: request)
            return finish(
                errorResponse(error, request: request, requestID: requestID), request: request, requestID: requestID,
                matched: (route, parameters), caller: caller, operation: route.operationID, started: started)
        }
    }

    /// libmicrohttpd's messages, one log line each (escaped by the log format), at `notice`: they
    /// are about requests it refused or connections it dropped itself (an HTTP/2 preface, too many
    /// headers), which any client can cause, not failures of the server (a failure to start is
    /// reported by `HTTPServerError`).
    public func libraryMessage(_ message: String) {
        logger.notice("\(message)", metadata: ["source": "libmicrohttpd"])
    }

    /// Renders a request the transport refused (malformed framing, limits) as problem+json.
    public func reject(_ request: HTTPRequest, reason: HTTPRejection) -> HTTPResponse {
        let requestID = RegistryApplication.requestID(from: request)
        let (matched, caller) = identify(request)
        return finish(
            errorResponse(reason, request: request, requestID: requestID), request: request, requestID: requestID, matched: matched,
            caller: caller, operation: matched?.route.operationID ?? "-", started: Stopwatch())
    }

    /// Counts refused requests, and failed writes, for the audit log (written in aggregate by
    /// `RefusalAggregator`: no durable write per request). Successful writes are recorded by the
    /// store in the transaction of the change itself.
    ///
    /// The line's key holds only values of bounded size, so that no request can make it grow:
    /// the route's operationId, the client's address, and the target only when its namespace and
    /// name are valid Kubernetes names and the caller has a known token (a 401 has no target:
    /// anyone can send one for every name).
    private func auditFailure(
        _ request: HTTPRequest, response: HTTPResponse, matched: (route: Route, parameters: PathParameters)?, actor: String,
        requestID: String
    ) {
        let denied = response.status == 401 || response.status == 403
        let failedWrite = response.status >= 400 && [.write, .push].contains(matched?.route.permission)
        guard denied || failedWrite, let matched else { return }
        // The body is the problem document built just above; only its detail is kept.
        let detail = (try? JSONParser.parse(response.body))?["detail"]?.stringValue
        var namespace = matched.parameters["namespace"].flatMap { KubernetesNames.dns1123Label($0).isEmpty ? $0 : nil }
        var name = matched.parameters["name"].flatMap { KubernetesNames.dns1123Label($0).isEmpty ? $0 : nil }
        if response.status == 401 || namespace == nil { (namespace, name) = (nil, nil) }
        let entry = AuditEntry(
            actor: actor, action: matched.route.operationID, namespace: namespace, name: name, revisionBefore: nil, revisionAfter: nil,
            outcome: denied ? .denied : .failure, status: response.status, requestID: requestID, detail: detail,
            sourceAddress: request.remoteAddress.isEmpty ? nil : request.remoteAddress)
        refusals.record(entry)
    }

    /// Ends every watch (cleanly) and refuses new ones; called first at shutdown.
    public func stopWatches() { watches.shutdown() }

    /// Ends the watches whose token no longer grants what it did (after the tokens file was
    /// reloaded; see `WatchHub.revalidate(_:)`); returns how many.
    @discardableResult
    public func revalidateWatches() -> Int {
        guard let authenticator else { return 0 }
        return watches.revalidate { authenticator.principal(forDigest: $0.digest) == $0.principal }
    }

    /// Watches open now.
    public var openWatches: Int { watches.count }

    /// Bytes of events waiting in the watchers' buffers (at most about `--watch-buffer-bytes`
    /// each, catch-ups included).
    public var watchBufferedBytes: Int { watches.bufferedBytes }

    /// Records the outcome of a tokens-file reload in the metrics.
    public func recordTokensReload(success: Bool) { metrics.recordTokensReload(success: success) }

    /// Who is asking: `anonymous` on open routes or without a tokens file, else the token's
    /// principal (401 without a known bearer token).
    private func authenticate(_ request: HTTPRequest, route: Route) throws(APIError) -> Principal {
        guard route.permission != nil, let authenticator else { return .anonymous }
        guard let header = request.headers["Authorization"] else {
            throw .unauthorized("this route needs a bearer token (Authorization: Bearer …)", invalidToken: false)
        }
        guard let token = RegistryApplication.bearerToken(header), let principal = authenticator.principal(forToken: token) else {
            throw .unauthorized("the bearer token is not valid", invalidToken: true)
        }
        return principal
    }

    /// The token of an `Authorization: Bearer <token>` value (RFC 6750 §2.1: the scheme, one or
    /// more spaces, the token), or nil when the scheme is another one or the token is empty or
    /// holds anything but visible ASCII (so that `Bearer` followed by spaces, a tab or a
    /// non-breaking space never yields a token at all).
    static func bearerToken(_ header: String) -> String? {
        let bytes = Array(header.utf8)
        let scheme = Array("bearer".utf8)
        guard bytes.count > scheme.count, bytes.prefix(scheme.count).map({ $0 | 0x20 }) == scheme, bytes[scheme.count] == 0x20 else {
            return nil
        }
        let token = bytes.dropFirst(scheme.count).drop { $0 == 0x20 }
        guard !token.isEmpty, token.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return String(decoding: token, as: UTF8.self)
    }

    /// Whether the caller may: 403 when the role lacks the route's permission or the token's
    /// namespaces exclude the one in the path.
    private func authorize(_ principal: Principal, route: Route, parameters: PathParameters) throws(APIError) {
        guard let permission = route.permission else { return }
        guard principal.allows(permission) else {
            throw .forbidden(
                "token \"\(principal.name)\" (role \(principal.role.rawValue)) lacks the \(permission.rawValue) permission",
                missing: "permission:\(permission.rawValue)")
        }
        if let namespace = parameters["namespace"], !principal.scope.allows(namespace) {
            throw .forbidden("token \"\(principal.name)\" may not access namespace \(namespace)", missing: "namespace:\(namespace)")
        }
    }

    /// A body over `--max-body-bytes` (413): counted, logged and audited (a write's) as any
    /// answer of its route.
    public func bodyTooLarge(_ request: HTTPRequest, limit: Int) -> HTTPResponse {
        let requestID = RegistryApplication.requestID(from: request)
        var response = errorResponse(APIError.payloadTooLarge(limit: limit), request: request, requestID: requestID)
        response.headers.add("Connection", "close")
        let (matched, caller) = identify(request)
        return finish(
            response, request: request, requestID: requestID, matched: matched, caller: caller, operation: matched?.route.operationID ?? "-",
            started: Stopwatch())
    }

    /// The route and caller of a request refused before routing, for its metrics, log and audit:
    /// those of its path when the refusal is about its header fields (a repeated singleton
    /// field), none when it is about the path itself (an encoded `/` or a dot segment: the
    /// decoded path would name another resource).
    private func attribution(
        of request: HTTPRequest, refusedWith error: any Error
    ) -> (matched: (route: Route, parameters: PathParameters)?, caller: Principal?) {
        guard case APIError.badRequest(_, let field?) = error, RequestChecks.singletonFields.contains(field) else { return (nil, nil) }
        return identify(request)
    }

    /// The route and caller of a request the transport answers itself (413, 503 for the body
    /// budget, a malformed body), for the metrics, log and audit of that answer: nil when no
    /// route matches, no caller when its token is not valid for the route.
    private func identify(_ request: HTTPRequest) -> (matched: (route: Route, parameters: PathParameters)?, caller: Principal?) {
        guard case .found(let route, let parameters) = router.match(method: request.method, path: request.path) else { return (nil, nil) }
        return ((route, parameters), try? authenticate(request, route: route))
    }

    private func problemResponse(_ problem: ProblemDetails, request: HTTPRequest, requestID: String) -> HTTPResponse {
        var headers = HTTPHeaders([("Content-Type", ProblemDetails.mediaType)])
        if let seconds = problem.retryAfterSeconds { headers.add("Retry-After", String(seconds)) }
        return HTTPResponse(
            status: problem.status, headers: headers, body: JSONWriter.bytes(problem.json(instance: request.rawPath, requestID: requestID)))
    }

    /// The client's `X-Request-Id` when it sent one, short printable ASCII, otherwise a new one:
    /// a random per-process prefix and a counter (unique, and cheaper than a UUID per request).
    static func requestID(from request: HTTPRequest) -> String {
        if request.headers.count(of: "X-Request-Id") == 1, let given = request.headers["X-Request-Id"], (1...128).contains(given.utf8.count),
            given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        {
            return given
        }
        // Written digit by digit into an inline buffer: `String(_:radix:)` and a concatenation
        // took twice as long, on every request.
        let number = requestCounter.add(1, ordering: .relaxed).newValue
        var bytes = InlineArray<32, UInt8>(repeating: 0)
        var count = 0
        for byte in requestIDPrefix {
            bytes[count] = byte
            count += 1
        }
        var digits = 1
        while digits < 16 && number >> (4 * digits) != 0 { digits += 1 }
        for position in stride(from: digits - 1, through: 0, by: -1) {
            bytes[count] = hexDigits[(number >> (4 * position)) & 0xF]
            count += 1
        }
        // Hex digits and a dash: always UTF-8.
        return String(copying: try! UTF8Span(validating: bytes.span.extracting(0..<count)))
    }

    /// 11 hex digits and a dash (the random part of every generated request id).
    private static let requestIDPrefix = Array((String(UInt64.random(in: 1 << 40..<1 << 44), radix: 16) + "-").utf8)
    private static let hexDigits = Array("0123456789abcdef".utf8)
    private static let requestCounter = Atomic<Int>(0)

    /// One line per request (`RequestLogEntry`), in `logFormat`, straight to the log sink: no
    /// metadata dictionary, no array of fields and no intermediate strings on the request path.
    private func log(
        _ request: HTTPRequest, response: HTTPResponse, route: String?, operation: String, actor: String, requestID: String, elapsed: Int64
    ) {
        guard logger.logLevel <= .info else { return }
        let entry = RequestLogEntry(
            method: request.method, path: request.rawPath, status: response.status, actor: actor, bytes: response.bodyCount,
            elapsedNanoseconds: elapsed, operation: operation, route: route ?? "-", remoteAddress: request.remoteAddress, requestID: requestID,
            userAgent: request.headers["User-Agent"])
        LogSink.standardError.append(entry.line(format: logFormat))
    }

}
