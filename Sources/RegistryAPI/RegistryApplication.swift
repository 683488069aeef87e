import Foundation
import Synchronization
public import HTTPServer
public import Logging
import RegistryCore
import RegistryResources
public import RegistryStorage

/// The HTTP application: routes every request to its handler, maps errors to problem+json in
/// one place, stamps `X-Request-Id`, and logs one line per request.
public final class RegistryApplication: HTTPHandler {
    public let router: Router
    private let store: ServiceStore
    private let logger: Logger

    public init(store: ServiceStore, logger: Logger) {
        self.store = store
        self.logger = logger
        self.router = Router(
            routes: RegistryApplication.routes(
                services: ServiceHandlers(store: store), manifests: ManifestHandlers(store: store, cache: RenderCache()), store: store))
    }

    static func routes(services: ServiceHandlers, manifests: ManifestHandlers, store: ServiceStore) -> [Route] {
        [
            Route("GET", "/healthz", "getHealth") { _ in Responses.json(200, .object(JSONObject([("status", .string("ok"))]))) },
            Route("GET", "/readyz", "getReadiness") { _ in
                do {
                    try store.ping()
                } catch {
                    throw APIError.unavailable("the database is not usable: \(error)")
                }
                return Responses.json(200, .object(JSONObject([("status", .string("ready"))])))
            },
            Route("GET", "/openapi.yaml", "getOpenAPIDocument") { _ in
                HTTPResponse(
                    status: 200, headers: HTTPHeaders([("Content-Type", "application/yaml")]),
                    body: Array(RegistryResources.openAPIDocument.utf8))
            },
            Route("POST", "/v1/services", "createService", handler: services.createService),
            Route("GET", "/v1/services", "listServices", query: ["namespace", "labelSelector", "limit", "continue"], handler: services.listServices),
            Route("GET", "/v1/services/{namespace}/{name}", "getService", handler: services.getService),
            Route("PUT", "/v1/services/{namespace}/{name}", "replaceService", handler: services.replaceService),
            Route("PATCH", "/v1/services/{namespace}/{name}", "patchService", handler: services.patchService),
            Route("DELETE", "/v1/services/{namespace}/{name}", "deleteService", handler: services.deleteService),
            Route("GET", "/v1/services/{namespace}/{name}/addresses", "listAddresses", handler: services.listAddresses),
            Route("POST", "/v1/services/{namespace}/{name}/addresses", "addAddress", handler: services.addAddress),
            Route("DELETE", "/v1/services/{namespace}/{name}/addresses/{ip}", "deleteAddress", query: ["port"], handler: services.deleteAddress),
            Route(
                "GET", "/v1/services/{namespace}/{name}/manifests", "getServiceManifests", query: ["format", "endpoints"],
                handler: manifests.getServiceManifests),
            Route(
                "GET", "/v1/manifests", "listManifests", query: ["namespace", "labelSelector", "format", "endpoints"],
                handler: manifests.listManifests),
            Route("POST", "/v1/import", "importManifests", query: ["dryRun", "onConflict", "namespace"], handler: manifests.importManifests),
        ]
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        let started = ContinuousClock.now
        let requestID = RegistryApplication.requestID(from: request)
        var response: HTTPResponse
        var operation = "-"
        do {
            switch router.match(method: request.method, path: request.path) {
            case .found(let route, let parameters):
                operation = route.operationID
                try RequestChecks.checkQuery(request, allowed: route.queryParameters)
                response = try route.handler(RequestContext(request: request, parameters: parameters, requestID: requestID))
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
        }
        response.headers.add("X-Request-Id", requestID)
        log(request, response: response, operation: operation, requestID: requestID, started: started)
        return response
    }

    public func bodyTooLarge(_ request: HTTPRequest, limit: Int) -> HTTPResponse {
        let requestID = RegistryApplication.requestID(from: request)
        var response = problemResponse(ErrorMapping.problem(for: APIError.payloadTooLarge(limit: limit)), request: request, requestID: requestID)
        response.headers.add("X-Request-Id", requestID)
        response.headers.add("Connection", "close")
        log(request, response: response, operation: "-", requestID: requestID, started: .now)
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

    private func log(_ request: HTTPRequest, response: HTTPResponse, operation: String, requestID: String, started: ContinuousClock.Instant) {
        guard logger.logLevel <= .info else { return }
        let elapsed = ContinuousClock.now - started
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        logger.info(
            "\(request.method) \(request.path) \(response.status)",
            metadata: [
                "durationMs": "\((milliseconds * 1000).rounded() / 1000)", "operation": "\(operation)", "requestId": "\(requestID)",
            ])
    }
}
