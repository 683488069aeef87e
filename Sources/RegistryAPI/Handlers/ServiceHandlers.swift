import HTTPServer
import KubernetesClient
import Liveness
import Reconciler
import RegistryCore
import RegistryStorage
import Synchronization

/// Handlers of `/v1/services…`, one per OpenAPI operationId.
struct ServiceHandlers: Sendable {
    let store: ServiceStore
    let push: PushHandlers
    /// `clusters` of a service created or replaced without the field (`--default-clusters`).
    var defaultClusters: [String] = []
    /// The observations `GET` of one service shows (issue 13; see `ServiceView`).
    var liveness: HealthChecker? = nil
    var dns: DNSRefresher? = nil
    /// The open watches (`?watch=true`); nil: watches are refused (503).
    var watches: WatchHub? = nil

    static func location(_ namespace: String, _ name: String) -> String { "/v1/services/\(namespace)/\(name)" }

    /// Decodes a body into a service, reporting every problem at once.
    private func decodeService(_ json: JSONValue) throws(ValidationFailure) -> ServiceInput {
        switch ServiceDecoder.decode(json) {
        case .success(let input): return input
        case .failure(let failure): throw failure
        }
    }

    /// The service with its bindings settled: the default clusters when the body named none
    /// (create and replace), and every newly named cluster one of those in `GET /v1/clusters`
    /// (names already bound stay valid when a cluster leaves the configuration).
    ///
    /// - Throws: `APIError.forbidden` (missing `permission:push`) when `principal` lacks `push`
    ///   and the bindings change what happens in clusters (see `checkBindingChange`);
    ///   `ValidationFailure` for an unknown or unusable cluster.
    private func bound(_ input: ServiceInput, current: ServiceRecord?, defaulting: Bool, principal: Principal) throws -> ExternalService {
        var service = input.service
        if !input.clustersGiven && defaulting { service.clusters = defaultClusters }
        try checkBindingChange(service.clusters, current: current, principal: principal)
        let previous = Set(current?.service.clusters ?? [])
        var violations: [FieldViolation] = []
        for (index, cluster) in service.clusters.enumerated() where !previous.contains(cluster) {
            guard let target = push.clusters.target(named: cluster) else {
                let names = push.clusters.targets.map(\.name).joined(separator: ", ")
                violations.append(
                    FieldViolation("clusters[\(index)]", .notSupported, "no cluster named \"\(cluster)\" (known: \(names.isEmpty ? "none" : names))"))
                continue
            }
            if let reason = target.unusableReason {
                violations.append(FieldViolation("clusters[\(index)]", .invalid, "cluster \"\(cluster)\" is not usable: \(reason)"))
            }
        }
        if !violations.isEmpty { throw ValidationFailure(violations) }
        return service
    }

    /// Bindings are pushes: the reconciler writes a service's objects to every cluster it is
    /// bound to and deletes them from a cluster it is unbound from. Without the `push`
    /// permission (README, roles: `editor`) a request may not bind a service to a cluster nor
    /// unbind it; a new service may take the default clusters (`--default-clusters`, the
    /// operator's choice) or fewer.
    ///
    /// - Throws: `APIError.forbidden` naming the clusters, with `missing` `permission:push`.
    private func checkBindingChange(_ clusters: [String], current: ServiceRecord?, principal: Principal) throws(APIError) {
        guard !principal.allows(.push) else { return }
        let after = Set(clusters)
        let before = Set(current?.service.clusters ?? defaultClusters)
        let bound = after.subtracting(before)
        let unbound = current == nil ? [] : before.subtracting(after)
        guard !bound.isEmpty || !unbound.isEmpty else { return }
        let changes = bound.sorted().map { "bind \($0)" } + unbound.sorted().map { "unbind \($0)" }
        throw .forbidden(
            "token \"\(principal.name)\" (role \(principal.role.rawValue)) lacks the push permission needed to \(changes.joined(separator: ", ")): bound clusters get the service's objects, unbound ones lose them",
            missing: "permission:push")
    }

    /// Applies the echoed server-managed fields as preconditions (like `metadata.resourceVersion`).
    private func checkEchoedFields(_ input: ServiceInput, current: ServiceRecord) throws(APIError) {
        if let uid = input.uid, uid != current.uid {
            throw .conflict("uid \(uid) does not match the stored service (uid \(current.uid)): it was deleted and created again", field: "uid")
        }
        if let revision = input.revision, revision != current.revision {
            throw .conflict(
                "the service has been modified (revision \(current.revision), the request says \(revision)); fetch it again and retry",
                field: "revision")
        }
    }

    /// - Remark: HTTP `POST /v1/services`
    func createService(_ context: RequestContext) throws -> HTTPResponse {
        let input = try decodeService(try RequestChecks.jsonBodyWithoutNulls(context.request))
        try Self.checkScope(context.principal, input.service.namespace)
        let dryRun = try Self.flag(context.request, "dryRun")
        // RFC 9110 §13.2.1: the preconditions come after what would fail without them (as for PUT).
        try RequestChecks.checkPreconditionsWithoutEntity(context.request, hasRepresentation: true)
        // Answered after the commit without holding a worker thread, so that the creates of many
        // connections share one group commit.
        let deferred = DeferredResponse()
        store.create(try bound(input, current: nil, defaulting: true, principal: context.principal), audit: context.audit, dryRun: dryRun) { result in
            switch result {
            case .success(let (record, document)):
                deferred.complete(
                    Responses.withWarnings(
                        Responses.json(201, document, etag: record.etag, location: Self.location(record.service.namespace, record.service.name)),
                        ServiceAdvice.warnings(record.service)))
            case .failure(let error):
                deferred.complete(context.problem(error))
            }
        }
        return .deferred(deferred)
    }

    /// The `namespace` query parameter, checked (syntax, and the caller's scope); nil when absent or empty.
    static func namespaceFilter(_ context: RequestContext) throws(APIError) -> String? {
        let namespace = context.request.queryValue("namespace").flatMap { $0.isEmpty ? nil : $0 }
        if let namespace, let problem = KubernetesNames.dns1123Label(namespace).first {
            throw .badRequest("namespace \"\(namespace)\": \(problem)", field: "namespace")
        }
        if let namespace { try checkScope(context.principal, namespace) }
        return namespace
    }

    /// 403 when the caller's token does not cover `namespace`.
    static func checkScope(_ principal: Principal, _ namespace: String) throws(APIError) {
        guard principal.scope.allows(namespace) else {
            throw .forbidden("token \"\(principal.name)\" may not access namespace \(namespace)", missing: "namespace:\(namespace)")
        }
    }

    /// A boolean query flag: absent, `false` → false; `true` → true; anything else (also a bare
    /// `?name` or `?name=`, which the contract's `type: boolean` does not allow) is 400.
    static func flag(_ request: HTTPRequest, _ name: String) throws(APIError) -> Bool {
        switch request.queryValue(name) {
        case nil, "false"?: return false
        case "true"?: return true
        case let other?: throw .badRequest("\(name) must be true or false, not \"\(other)\"", field: name)
        }
    }

    /// The page size of `GET /v1/services` without `limit` (kubectl's chunk size), and the
    /// largest `limit` taken; `continue` in the answer names the rest.
    static let defaultListLimit = 500
    static let maxListLimit = 10_000

    /// - Remark: HTTP `GET /v1/services`
    func listServices(_ context: RequestContext) throws -> HTTPResponse {
        let request = context.request
        let namespace = try Self.namespaceFilter(context)
        let selector = try LabelSelector(parsing: request.queryValue("labelSelector") ?? "")
        let watch = try Self.flag(request, "watch")
        let resourceVersion = try Self.resourceVersion(request)
        let bookmarks = try Self.flag(request, "allowWatchBookmarks")
        let timeoutSeconds = try Self.timeoutSeconds(request)
        if watch {
            for name in ["limit", "continue"] where request.queryValue(name) != nil {
                throw APIError.badRequest("\(name) applies to lists, not to watches", field: name)
            }
            return try openWatch(
                context, namespace: namespace, selector: selector, resourceVersion: resourceVersion, bookmarks: bookmarks,
                timeoutSeconds: timeoutSeconds)
        }
        let limit = try RequestChecks.integerQuery(request, "limit", in: 1...Self.maxListLimit) ?? Self.defaultListLimit
        // A page goes on only with the filters of the first: its position is in that list.
        let filters = [namespace, request.queryValue("labelSelector") ?? ""]
        var after: ServiceKey? = nil
        if let token = request.queryValue("continue"), !token.isEmpty {
            let position = try ContinueToken.decode(token, list: .services, filters: filters)
            guard let afterNamespace = position["ns"]?.stringValue, let afterName = position["n"]?.stringValue,
                namespace == nil || afterNamespace == namespace
            else { throw APIError.badRequest(RequestChecks.invalidContinueToken, field: "continue") }
            after = ServiceKey(namespace: afterNamespace, name: afterName)
        }
        let scope = context.principal.scope
        let page = try store.list(namespace: namespace, selector: selector, after: after, limit: limit, allowed: scope.allows)
        let token = page.next.map { key in
            ContinueToken.encode(
                .services, filters: filters, position: .object(JSONObject([("ns", .string(key.namespace)), ("n", .string(key.name))])))
        }
        var body = Responses.list(page.documents, continueToken: token)
        // The entity tag is a digest of the items: every stored document carries its uid and
        // revision, so any write to a listed service, and any creation or deletion in the
        // listed set, changes it. It is weak: `metadata.resourceVersion` moves with writes
        // anywhere, and a client holding an equal list may keep its own (a watch from it is
        // just as good).
        let etag = "W/" + Responses.digestETag(body)
        if try RequestChecks.readPreconditions(request, etag: etag) { return Responses.notModified(etag: etag) }
        body.removeLast()
        body += Array(#","metadata":{"resourceVersion":""#.utf8) + Array(String(page.resourceVersion).utf8) + Array(#""}}"#.utf8)
        return Responses.json(200, body, etag: etag)
    }

    /// `resourceVersion`: absent or `0` (nil: start from the current state), or a
    /// version number.
    static func resourceVersion(_ request: HTTPRequest) throws(APIError) -> Int? {
        guard let text = request.queryValue("resourceVersion"), text != "0" else { return nil }
        guard text.utf8.count <= 18, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let value = Int(text) else {
            throw APIError.badRequest(
                "resourceVersion must be a resource version number from a list or an event, not \"\(text)\"", field: "resourceVersion")
        }
        return value
    }

    /// `timeoutSeconds`: a positive integer (capped by the server's longest watch), or nil.
    static func timeoutSeconds(_ request: HTTPRequest) throws(APIError) -> Int? {
        try RequestChecks.integerQuery(request, "timeoutSeconds", in: 1...Int.max)
    }

    /// `GET /v1/services?watch=true`: the events after `resourceVersion` (or the current state as
    /// ADDED events), then live ones, as newline-delimited JSON (`WatchEncoding`).
    private func openWatch(
        _ context: RequestContext, namespace: String?, selector: LabelSelector, resourceVersion: Int?, bookmarks: Bool, timeoutSeconds: Int?
    ) throws -> HTTPResponse {
        guard let watches, !watches.isStopped else { throw APIError.unavailable("watches are not available: the server is shutting down") }
        // A stream of events has no entity tag (If-Match other than `*` is 412).
        if try RequestChecks.readPreconditions(context.request, etag: nil) { return Responses.notModified(etag: nil) }
        if let resourceVersion {
            let state = try store.resourceVersionState()
            if resourceVersion < state.compacted {
                throw APIError.expired(
                    "too old resource version: \(resourceVersion) (the change log starts after \(state.compacted)); list again and watch from the list's metadata.resourceVersion"
                )
            }
            if resourceVersion > state.current {
                throw APIError.expired(
                    "resource version \(resourceVersion) is newer than the current one (\(state.current)), as after a restore of the database; list again and watch from the list's metadata.resourceVersion"
                )
            }
        }
        let longest = watches.limits.maxDuration
        let duration: Duration =
            if let timeoutSeconds { min(.seconds(timeoutSeconds), longest) } else { longest * Double.random(in: 0.5...1) }
        let headers = HTTPHeaders([("Content-Type", WatchEncoding.mediaType), ("Cache-Control", "no-cache, private")])
        // Not a stream: for HEAD, libmicrohttpd 0.9.75 sends the terminating chunk of a response
        // of unknown size after the headers, bytes the client takes for the start of the next
        // response. An empty one has `Content-Length: 0` instead of the GET's chunked coding.
        if context.request.method == "HEAD" { return HTTPResponse(status: 200, headers: headers) }
        let credential = context.request.headers["Authorization"].flatMap(RegistryApplication.bearerToken).map {
            WatchHub.Credential(digest: TokenAuthenticator.digest($0), principal: context.principal)
        }
        guard
            let stream = watches.open(
                WatchHub.Request(
                    resourceVersion: resourceVersion, namespace: namespace, selector: selector, scope: context.principal.scope, bookmarks: bookmarks,
                    duration: duration, credential: credential))
        else {
            if watches.isStopped { throw APIError.unavailable("watches are not available: the server is shutting down") }
            throw APIError.tooManyRequests(
                "the server has its limit of \(watches.limits.maxWatchers) watches open; retry shortly", retryAfter: 1)
        }
        return .stream(headers: headers, stream)
    }

    /// - Remark: HTTP `GET /v1/services/{namespace}/{name}`
    func getService(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        guard let stored = try store.document(namespace: namespace, name: name) else {
            throw StoreError.notFound(namespace: namespace, name: name)
        }
        // The entity tag is the registration's: the observations added below (resolution,
        // health, conditions) are not revisions and leave it unchanged.
        if try RequestChecks.readPreconditions(context.request, etag: stored.etag) { return Responses.notModified(etag: stored.etag) }
        guard let liveness, let dns else { return Responses.json(200, stored.document, etag: stored.etag) }
        return Responses.json(200, ServiceView.document(stored, liveness: liveness, dns: dns), etag: stored.etag)
    }

    /// - Remark: HTTP `PUT /v1/services/{namespace}/{name}`
    func replaceService(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        guard case .object(var object) = try RequestChecks.jsonBodyWithoutNulls(context.request) else {
            throw ValidationFailure([FieldViolation("", .wrongType, "the body must be a JSON object")])
        }
        for (key, value) in [("namespace", namespace), ("name", name)] {
            switch object[key] {
            case nil, .null?: object[key] = .string(value)
            case .string(let given)? where given != value:
                throw APIError.badRequest("\(key) \"\(given)\" in the body does not match \"\(value)\" in the URL", field: key)
            default: break
            }
        }
        let body = object
        let decoded = ServiceDecoder.decode(.object(body))
        let dryRun = try Self.flag(context.request, "dryRun")
        let requestedType = body["type"] ?? .string(ServiceType.clusterIP.rawValue)
        return updateLater(context, dryRun: dryRun) { current in
            // A type change drops the fields the old type's document carried and the new type
            // does not use, when the body kept them as they were (`TypeDependentFields`).
            let input: ServiceInput
            if let current, requestedType != .string(current.service.type.rawValue), case .object(let stored) = ServiceEncoder.json(current) {
                input = try decodeService(.object(TypeDependentFields.dropped(from: body, current: stored)))
            } else {
                input = try decoded.get()
            }
            try RequestChecks.checkWritePreconditions(context.request, current: current)
            if let current {
                try checkEchoedFields(input, current: current)
            } else if input.revision != nil || input.uid != nil {
                throw StoreError.notFound(namespace: namespace, name: name)
            }
            return try bound(input, current: current, defaulting: true, principal: context.principal)
        } respond: { result in
            Responses.withWarnings(
                Responses.json(
                    result.created ? 201 : 200, result.document, etag: result.record.etag,
                    location: result.created ? Self.location(namespace, name) : nil),
                ServiceAdvice.warnings(result.record.service))
        }
    }

    /// Runs the update of the URL's service in the next group commit and answers after it
    /// (`respond`, or the error's problem) without holding a worker thread meanwhile: the writes
    /// of every connection then share one commit.
    func updateLater(
        _ context: RequestContext, dryRun: Bool, changedStatus: Int = 200,
        _ transform: @escaping @Sendable (ServiceRecord?) throws -> ExternalService,
        respond: @escaping @Sendable (UpdateResult) -> HTTPResponse
    ) -> HTTPResponse {
        let deferred = DeferredResponse()
        store.update(
            namespace: context.parameter("namespace"), name: context.parameter("name"), audit: context.audit, dryRun: dryRun,
            changedStatus: changedStatus, transform
        ) { result in
            switch result {
            case .success(let update): deferred.complete(respond(update))
            case .failure(let error): deferred.complete(context.problem(error))
            }
        }
        return .deferred(deferred)
    }

    /// - Remark: HTTP `PATCH /v1/services/{namespace}/{name}`
    func patchService(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        let patch = try RequestChecks.jsonBody(context.request, mediaType: "application/merge-patch+json")
        let dryRun = try Self.flag(context.request, "dryRun")
        // RFC 9110 §13.2.1: the preconditions come after what would fail without them (no such
        // service 404, an invalid result 400/422), so they are checked last.
        return updateLater(context, dryRun: dryRun) { current in
            guard let current else { throw StoreError.notFound(namespace: namespace, name: name) }
            guard case .object = patch else {
                throw ValidationFailure([FieldViolation("", .wrongType, "a merge patch of a service must be a JSON object, not \(patch.typeName)")])
            }
            let stored = ServiceEncoder.json(current)
            var patched = MergePatch.apply(patch, to: stored)
            if case .object(let object) = patched {
                for (key, value) in [("namespace", namespace), ("name", name)] where object[key] != .string(value) {
                    throw APIError.badRequest("\(key) cannot be changed by PATCH; create a new service instead", field: key)
                }
                // A type change drops what only the old type used, if the patch left it as it was.
                if case .object(let storedObject) = stored { patched = .object(TypeDependentFields.dropped(from: object, current: storedObject)) }
            }
            let input = try decodeService(patched)
            try checkEchoedFields(input, current: current)
            let service = try bound(input, current: current, defaulting: false, principal: context.principal)
            try RequestChecks.checkWritePreconditions(context.request, current: current)
            return service
        } respond: { result in
            Responses.withWarnings(Responses.json(200, result.document, etag: result.record.etag), ServiceAdvice.warnings(result.record.service))
        }
    }

    /// - Remark: HTTP `DELETE /v1/services/{namespace}/{name}`
    ///
    /// Deletes the registration; the reconciler then deletes its objects from every cluster where
    /// they are tracked (bound or pushed). The answer waits for that up to `?timeout=` seconds
    /// (default 30): 204 when done, 202 with the clusters still being cleaned (and why) otherwise.
    /// `?cascade=false` keeps the objects in the clusters and says so (200, `keptIn`).
    ///
    /// With `?dryRun=true` the preconditions are checked and nothing is deleted, in the registry
    /// or in a cluster (204 all the same).
    func deleteService(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        let cascade = context.request.queryValue("cascade") == nil ? true : try Self.flag(context.request, "cascade")
        let reconciler = push.reconciler
        let tracked = try reconciler.trackedClusters(namespace: namespace, name: name)
        // Deleting in clusters is the `push` permission's (README, roles); a dry run answers
        // what the real request would.
        if cascade && !tracked.isEmpty && !context.principal.allows(.push) {
            throw APIError.forbidden(
                "token \"\(context.principal.name)\" (role \(context.principal.role.rawValue)) lacks the push permission needed to delete the service's objects in \(tracked.joined(separator: ", ")); ?cascade=false deletes the registration and keeps them there",
                missing: "permission:push")
        }
        let dryRun = try Self.flag(context.request, "dryRun")
        let timeout = dryRun ? .zero : try PushHandlers.timeout(context.request)
        // Answered after the commit without holding a worker thread (as creates and updates are).
        let deferred = DeferredResponse()
        store.deleteLater(namespace: namespace, name: name, audit: context.audit, keepClusterObjects: !cascade && !dryRun, dryRun: dryRun) {
            current in
            try RequestChecks.checkWritePreconditions(context.request, current: current)
        } completion: { result in
            switch result {
            case .failure(let error):
                deferred.complete(context.problem(error))
            case .success:
                let response =
                    dryRun
                    ? Responses.noContent()
                    : Self.afterDeletion(namespace, name, cascade: cascade, tracked: tracked, timeout: timeout, reconciler: reconciler)
                deferred.complete(forwarding: response)
            }
        }
        return .deferred(deferred)
    }

    /// The answer to a `DELETE` once the registration is gone: `keptIn` for `cascade=false`, else
    /// 204 at once when no cluster tracks the service, or once every tracking cluster confirmed
    /// (202 with those still deleting at `timeout`).
    private static func afterDeletion(
        _ namespace: String, _ name: String, cascade: Bool, tracked: [String], timeout: Duration, reconciler: Reconciler
    ) -> HTTPResponse {
        if !cascade {
            return Responses.json(
                200,
                .object(
                    JSONObject([
                        ("namespace", .string(namespace)), ("name", .string(name)), ("cascade", .bool(false)),
                        ("keptIn", .array(tracked.map(JSONValue.string))),
                        ("detail", .string(tracked.isEmpty ? "deleted" : "deleted; its objects were kept in \(tracked.joined(separator: ", "))")),
                    ])))
        }
        guard !tracked.isEmpty else { return Responses.noContent() }
        let gather = Gather<SyncResult>(expected: tracked.count) { results in
            let failed = tracked.compactMap { results[$0] }.filter { !$0.succeeded }
            guard failed.isEmpty else {
                return Self.stillDeleting(namespace, name, clusters: failed.map(\.cluster), errors: failed.compactMap { $0.error?.description })
            }
            return Responses.noContent()
        } late: {
            Self.stillDeleting(namespace, name, clusters: tracked, errors: ["the clusters did not confirm within \(timeout.components.seconds) s"])
        }
        for cluster in tracked {
            reconciler.awaitSettled(namespace: namespace, name: name, cluster: cluster) { result in gather.add(cluster, result) }
        }
        return gather.response(deadline: timeout)
    }

    /// 202: the registration is gone; the reconciler keeps deleting the objects in `clusters`
    /// (see `GET /v1/clusters/{name}/status`).
    static func stillDeleting(_ namespace: String, _ name: String, clusters: [String], errors: [String]) -> HTTPResponse {
        Responses.json(
            202,
            JSONWriter.bytes(
                .object(
                    JSONObject([
                        ("namespace", .string(namespace)), ("name", .string(name)), ("status", .string("deleting")),
                        ("clusters", .array(clusters.map(JSONValue.string))), ("errors", .array(errors.map(JSONValue.string))),
                    ]))), location: clusters.count == 1 ? "/v1/clusters/\(clusters[0])/status" : "/v1/clusters")
    }

    // MARK: - Addresses

    /// - Remark: HTTP `GET /v1/services/{namespace}/{name}/addresses`
    func listAddresses(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        guard let record = try store.record(namespace: namespace, name: name) else {
            throw StoreError.notFound(namespace: namespace, name: name)
        }
        if try RequestChecks.readPreconditions(context.request, etag: record.etag) { return Responses.notModified(etag: record.etag) }
        let items = record.service.addresses.map { address in
            var item: [UInt8] = []
            ServiceEncoder.write(address, into: &item)
            return item
        }
        return Responses.json(200, Responses.list(items), etag: record.etag)
    }

    /// - Remark: HTTP `POST /v1/services/{namespace}/{name}/addresses`
    func addAddress(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        let body = try RequestChecks.jsonBodyWithoutNulls(context.request)
        let preference = RequestChecks.returnPreference(context.request)
        // What the body decodes to, kept for the answer (the transform runs once or twice, on
        // the same body, to the same address).
        let decoded = Mutex<EndpointAddress?>(nil)
        // RFC 9110 §13.2.1: the preconditions come after what would fail without them.
        return updateLater(context, dryRun: false, changedStatus: 201) { current in
            guard let current else { throw StoreError.notFound(namespace: namespace, name: name) }
            var service = current.service
            if service.type == .externalName {
                throw ValidationFailure([FieldViolation("", .forbidden, "an ExternalName service has no addresses")])
            }
            let address: EndpointAddress
            switch ServiceDecoder.decodeAddress(body, for: service) {
            case .success(let value): address = value
            case .failure(let failure): throw failure
            }
            decoded.withLock { $0 = address }
            try RequestChecks.checkWritePreconditions(context.request, current: current)
            // Only the addresses of the same IP (or host) can be it, found by binary search in
            // the stored order; fields read in place (`EndpointAddressList.same(at:as:)`):
            // copying each stored address out of its chunk cost more than the comparison.
            let sameTarget = service.sameTargetIndices(as: address)
            if sameTarget.contains(where: { service.addresses.same(at: $0, as: address) }) { return service }
            let ports = address.backendPorts(for: service.ports)
            if let index = sameTarget.first(where: {
                service.addresses[$0].ip == address.ip && service.addresses[$0].host == address.host
                    && service.addresses[$0].backendPorts(for: service.ports) == ports
            }) {
                throw APIError.conflict(
                    "addresses[\(index)] already has \(address.host ?? address.ip) with the same backend ports but other attributes; DELETE it first or PATCH the service",
                    field: address.host == nil ? "ip" : "host")
            }
            // The stored service is valid and normalized: only what the new address can break
            // is checked, and it is put in its place (the same result as validating and
            // normalizing the whole service again, at O(log n) instead of O(n log n)).
            let violations = ServiceValidator.validateAdding(address, to: service)
            if !violations.isEmpty { throw ValidationFailure(violations) }
            service.insertNormalized(address)
            return service
        } respond: { result in
            Self.addressAnswer(
                result, address: .added(decoded.withLock { $0 ?? EndpointAddress(ip: "") }.normalized(for: result.record.service.ports)),
                preference: preference,
                status: result.changed ? 201 : 200, location: result.changed ? Self.location(namespace, name) + "/addresses" : nil)
        }
    }

    /// The answer of an address route: by default (or with `Prefer: return=minimal`) the
    /// service's identity and new revision with the address added or removed (O(1) in the
    /// service's size, for services of thousands of addresses changed often); with `Prefer:
    /// return=representation` the stored service, as `PUT` answers it. Both carry the service's
    /// `ETag` and its warnings (`Warning` headers and a `warnings` member).
    static func addressAnswer(
        _ result: UpdateResult, address: AddressChange, preference: RequestChecks.ReturnPreference?, status: Int, location: String? = nil
    ) -> HTTPResponse {
        let warnings = ServiceAdvice.warnings(result.record.service)
        var response: HTTPResponse
        if preference == .representation {
            response = Responses.withWarnings(Responses.json(status, result.document, etag: result.record.etag, location: location), warnings)
        } else {
            let record = result.record
            response = Responses.json(
                status, minimalAddressAnswer(record, address: address, warnings: warnings), etag: record.etag, location: location)
            for warning in warnings { response.headers.add("Warning", Responses.warningValue(warning)) }
        }
        if let preference { response.headers.add("Preference-Applied", "return=\(preference.rawValue)") }
        return response
    }

    /// The minimal answer's body: `{"namespace","name","uid","revision","updatedAt",
    /// "added"|"removed"[,"warnings"]}` in that order, written straight into bytes (the address
    /// as the stored document writes it) rather than through a `JSONValue` tree.
    static func minimalAddressAnswer(_ record: ServiceRecord, address: AddressChange, warnings: [String]) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(320)
        body.append(contentsOf: #"{"namespace":"#.utf8)
        JSONWriter.writeString(record.service.namespace, into: &body)
        body.append(contentsOf: #","name":"#.utf8)
        JSONWriter.writeString(record.service.name, into: &body)
        body.append(contentsOf: #","uid":"#.utf8)
        JSONWriter.writeString(record.uid, into: &body)
        body.append(contentsOf: #","revision":"#.utf8)
        body.append(contentsOf: String(record.revision).utf8)
        body.append(contentsOf: #","updatedAt":"#.utf8)
        JSONWriter.writeString(record.updatedAt, into: &body)
        switch address {
        case .added(let added):
            body.append(contentsOf: #","added":"#.utf8)
            ServiceEncoder.write(added, into: &body)
        case .removed(let removed):
            body.append(contentsOf: #","removed":"#.utf8)
            ServiceEncoder.write(removed, into: &body)
        }
        if !warnings.isEmpty {
            body.append(contentsOf: #","warnings":["#.utf8)
            for (index, warning) in warnings.enumerated() {
                if index > 0 { body.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(warning, into: &body)
            }
            body.append(UInt8(ascii: "]"))
        }
        body.append(UInt8(ascii: "}"))
        return body
    }

    /// The address an address route added (or found registered exactly so) or removed.
    enum AddressChange {
        case added(EndpointAddress)
        case removed(EndpointAddress)
    }

    /// - Remark: HTTP `DELETE /v1/services/{namespace}/{name}/addresses/{ip}`
    func deleteAddress(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        let rawIP = context.parameter("ip")
        // The path segment is an IP, or the `host` of an address given by DNS name (issue 13).
        let ip: String
        let target: EndpointAddress
        if let parsed = try? IPAddress(parsing: rawIP) {
            ip = parsed.description
            target = EndpointAddress(ip: ip)
        } else if ServiceValidator.validateHost(rawIP, path: "ip").isEmpty {
            ip = rawIP
            target = EndpointAddress(host: ip)
        } else {
            throw APIError.badRequest("\"\(rawIP)\" is neither a valid IPv4 or IPv6 address nor a DNS name (DNS-1123 subdomain)", field: "ip")
        }
        let port = try context.request.queryValue("port").map { text throws(APIError) in
            guard let value = RequestChecks.canonicalInteger(text), (1...65535).contains(value) else {
                throw APIError.badRequest(
                    "port must be an integer from 1 to 65535 in decimal without sign or leading zeros, not \"\(text)\"", field: "port")
            }
            return value
        }
        let preference = RequestChecks.returnPreference(context.request)
        // The address removed, kept for the answer (the transform runs once or twice, to the same one).
        let removed = Mutex<EndpointAddress?>(nil)
        // RFC 9110 §13.2.1: the preconditions come after what would fail without them.
        return updateLater(context, dryRun: false) { current in
            guard let current else { throw StoreError.notFound(namespace: namespace, name: name) }
            var service = current.service
            // The addresses of that IP (or host) are next to each other in the stored order.
            let matches = service.sameTargetIndices(as: target).filter { index in
                guard service.addresses[index].isUnresolvedHost ? service.addresses[index].host == ip : service.addresses[index].ip == ip else {
                    return false
                }
                return port.map { service.addresses[index].backendPorts(for: service.ports).contains($0) } ?? true
            }
            guard !matches.isEmpty else {
                throw APIError.notFound(
                    "service \(namespace)/\(name) has no address \(ip)" + (port.map { " with backend port \($0)" } ?? ""))
            }
            guard matches.count == 1 else {
                let ports = matches.map {
                    service.addresses[$0].backendPorts(for: service.ports).compactMap { $0.map(String.init) }.joined(separator: "/")
                }
                throw APIError.badRequest(
                    "\(ip) is registered \(matches.count) times (backend ports \(ports.joined(separator: ", "))); add ?port= to choose one",
                    field: "port")
            }
            try RequestChecks.checkWritePreconditions(context.request, current: current)
            let address = service.addresses.remove(at: matches[0])
            removed.withLock { $0 = address }
            return service
        } respond: { result in
            Self.addressAnswer(result, address: .removed(removed.withLock { $0 ?? target }), preference: preference, status: 200)
        }
    }
}
