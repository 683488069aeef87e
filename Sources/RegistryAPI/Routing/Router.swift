public import HTTPServer
import RegistryStorage
import Synchronization

/// What a handler gets: the request, the path parameters, the request id and who is asking.
public struct RequestContext: Sendable {
    public var request: HTTPRequest
    public var parameters: PathParameters
    public var requestID: String
    public var principal: Principal
    public var operationID: String
    /// Maps errors found after the handler returned (see `problem(_:)`).
    let application: RegistryApplication

    /// The problem+json answer for an error found after the handler returned (a deferred
    /// response), mapped as a thrown one would be.
    func problem(_ error: any Error) -> HTTPResponse {
        application.errorResponse(error, request: request, requestID: requestID)
    }

    /// Attribution of the changes this request makes, for the audit log.
    var audit: AuditContext { AuditContext(actor: principal.name, requestID: requestID, action: operationID) }

    public func parameter(_ name: String) -> String { parameters[name] ?? "" }
}

/// A route: method, path template with `{parameter}` segments, the OpenAPI operationId, the
/// query parameters it accepts, and its handler. Immutable, and a class so that passing the
/// matched route along a request costs one reference count, not one per field.
public final class Route: Sendable {
    public let method: String
    public let template: String
    public let operationID: String
    public let queryParameters: Set<String>
    /// What the caller needs; nil for routes open to everyone.
    public let permission: Permission?
    /// Whether the handler evaluates `If-Match`/`If-None-Match` against the resource's own entity
    /// tag (the writes of one service and its addresses); the preconditions of other writes are
    /// evaluated before the handler (`RequestChecks.checkPreconditionsWithoutEntity`), those of
    /// reads against the `ETag` of the answer (`RequestChecks.readPreconditions`).
    public let evaluatesPreconditions: Bool
    let handler: @Sendable (RequestContext) throws -> HTTPResponse
    let segments: [Segment]
    /// Whether the path names one service (`/v1/services/{namespace}/{name}…`): its two
    /// parameters are checked before the handler runs (`RegistryApplication.checkServicePath`).
    let namesOneService: Bool
    /// The request metrics of the first success (method and 2xx status) the route answered,
    /// set once and then read without a lock (`RegistryMetrics.recordRequest`): most of a
    /// route's requests get that answer.
    let usualRequestMetrics = AtomicLazyReference<RequestMetrics>()

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    init(
        _ method: String, _ template: String, _ operationID: String, query: Set<String> = [], permission: Permission? = .read,
        evaluatesPreconditions: Bool = false, handler: @escaping @Sendable (RequestContext) throws -> HTTPResponse
    ) {
        self.permission = permission
        self.evaluatesPreconditions = evaluatesPreconditions
        self.method = method
        self.template = template
        self.operationID = operationID
        self.queryParameters = query
        self.handler = handler
        // Written as they are in every request's log line (`LogLine.field(_:plainWord:)`).
        precondition(LogEscaping.isPlainWord(template) && LogEscaping.isPlainWord(operationID), "route \(template) \(operationID)")
        self.namesOneService = template.hasPrefix("/v1/services/{namespace}/{name}")
        self.segments = template.split(separator: "/").map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? .parameter(String(part.dropFirst().dropLast())) : .literal(String(part))
        }
    }

    /// Whether `path` (`/` then as many non-empty segments as the template has, separated by
    /// `/`: what `Router` sends) fits the template: each literal segment equal. Walks the path in
    /// place (no array of segments, no copies), so that the routes that do not match (or match
    /// with another method) cost next to nothing.
    func fits(_ path: String) -> Bool {
        var fits = true
        walk(path) { segment, value in
            if case .literal(let literal) = segment, !literal.utf8.elementsEqual(value) { fits = false }
            return fits
        }
        return fits
    }

    /// The `{parameter}` segments of a path that `fits(_:)` the template.
    func parameters(_ path: String) -> PathParameters {
        var parameters = PathParameters()
        walk(path) { segment, value in
            if case .parameter(let name) = segment { parameters.append(name, String(Substring(value))) }
            return true
        }
        return parameters
    }

    /// Calls `body` with each of the template's segments and the path's segment at its place,
    /// while `body` returns true.
    private func walk(_ path: String, _ body: (Segment, Substring.UTF8View) -> Bool) {
        let utf8 = Substring(path).utf8
        var start = utf8.index(after: utf8.startIndex)
        for segment in segments {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
            guard body(segment, utf8[start..<end]) else { return }
            start = end == utf8.endIndex ? end : utf8.index(after: end)
        }
    }
}

/// The `{parameter}` values of a matched path, in template order. A route has at most three, so
/// they are kept as a list and looked up by a linear scan (cheaper than hashing each name).
public struct PathParameters: Sendable, Equatable {
    private var pairs: [(name: String, value: String)] = []

    public init() { pairs.reserveCapacity(3) }

    /// Parameters from `name: value` pairs (for tests and callers that build a context by hand).
    public init(_ pairs: KeyValuePairs<String, String>) {
        self.pairs = pairs.map { ($0.key, $0.value) }
    }

    mutating func append(_ name: String, _ value: String) { pairs.append((name, value)) }

    /// The value of parameter `name`, or nil when the route has no such parameter.
    public subscript(name: String) -> String? {
        for pair in pairs where pair.name == name { return pair.value }
        return nil
    }

    public static func == (lhs: PathParameters, rhs: PathParameters) -> Bool {
        lhs.pairs.elementsEqual(rhs.pairs) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// Matches requests to routes: 404 when no path matches, 405 (with the allowed methods) when the
/// path matches under other methods, 400 for query parameters the route does not define. HEAD
/// matches every GET route.
public struct Router: Sendable {
    public let routes: [Route]
    /// Indices into `routes` by number of path segments, in `routes` order: a request is compared
    /// only with the routes of its length.
    private let bySegmentCount: [[Int]]

    public enum Match {
        case found(Route, PathParameters)
        case notFound
        case methodNotAllowed([String])
    }

    public init(routes: [Route]) {
        self.routes = routes
        var buckets: [[Int]] = Array(repeating: [], count: (routes.map(\.segments.count).max() ?? 0) + 1)
        for (index, route) in routes.enumerated() { buckets[route.segments.count].append(index) }
        self.bySegmentCount = buckets
    }

    public func match(method: String, path: String) -> Match {
        // The segments after the leading `/`, counted in place; an empty one matches no route.
        guard path.utf8.first == UInt8(ascii: "/") else { return .notFound }
        var count = 1
        var previous = UInt8(ascii: "/")
        for byte in path.utf8.dropFirst() {
            if byte == UInt8(ascii: "/") {
                guard previous != UInt8(ascii: "/") else { return .notFound }
                count += 1
            }
            previous = byte
        }
        guard previous != UInt8(ascii: "/"), count < bySegmentCount.count else { return .notFound }
        // RFC 9110 §9.3.2: HEAD is served wherever GET is, with GET's headers and no body
        // (the transport leaves the body out).
        let lookup = method == "HEAD" ? "GET" : method
        var allowed: [String] = []
        for index in bySegmentCount[count] where routes[index].fits(path) {
            if routes[index].method == lookup { return .found(routes[index], routes[index].parameters(path)) }
            allowed.append(routes[index].method)
            if routes[index].method == "GET" { allowed.append("HEAD") }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed)
    }
}
