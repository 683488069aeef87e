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
    /// Whether the handler always runs off the worker thread (`RegistryApplication`'s long
    /// requests queue), however small the request: it takes long (an import).
    let runsOffWorker: Bool
    let handler: @Sendable (RequestContext) throws -> HTTPResponse
    let segments: [Segment]
    /// Whether the path names one service (`/v1/services/{namespace}/{name}…`): its two
    /// parameters are checked before the handler runs (`RegistryApplication.checkServicePath`).
    let namesOneService: Bool
    /// The request metrics of the first success (method and 2xx status) the route answered,
    /// set once and then read without a lock (`RegistryMetrics.recordRequest`): most of a
    /// route's requests get that answer. Held retained (released in `deinit`); an
    /// `AtomicLazyReference`'s `load` is not inlinable, and its generic call was 1.5 % of a
    /// GET's samples.
    private let usualMetrics = Atomic<Unmanaged<RequestMetrics>?>(nil)

    /// See `usualMetrics`; nil until the route's first success.
    var usualRequestMetrics: RequestMetrics? { usualMetrics.load(ordering: .acquiring)?.takeUnretainedValue() }

    /// Sets the usual request metrics unless they are set already.
    func setUsualRequestMetricsIfNil(_ metrics: RequestMetrics) {
        let retained = Unmanaged.passRetained(metrics)
        if !usualMetrics.compareExchange(expected: nil, desired: retained, ordering: .acquiringAndReleasing).exchanged {
            retained.release()
        }
    }

    deinit { usualMetrics.load(ordering: .acquiring)?.release() }

    enum Segment: Sendable, Equatable {
        /// The segment's bytes, compared with a request's as they are.
        case literal([UInt8])
        case parameter(String)
    }

    init(
        _ method: String, _ template: String, _ operationID: String, query: Set<String> = [], permission: Permission? = .read,
        evaluatesPreconditions: Bool = false, runsOffWorker: Bool = false, handler: @escaping @Sendable (RequestContext) throws -> HTTPResponse
    ) {
        self.permission = permission
        self.runsOffWorker = runsOffWorker
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
            part.hasPrefix("{") && part.hasSuffix("}") ? .parameter(String(part.dropFirst().dropLast())) : .literal(Array(part.utf8))
        }
        precondition(segments.count <= PathSegments.capacity, "route \(template): more than \(PathSegments.capacity) segments")
        precondition(
            segments.count(where: { if case .parameter = $0 { true } else { false } }) <= PathParameters.capacity,
            "route \(template): more than \(PathParameters.capacity) parameters")
    }

    /// Whether the path whose bytes are `path`, cut into `found` (as many segments as the
    /// template has), fits the template: each literal segment equal, byte for byte.
    func fits(_ path: borrowing Span<UInt8>, _ found: PathSegments) -> Bool {
        for (index, segment) in segments.enumerated() {
            guard case .literal(let literal) = segment else { continue }
            let range = found[index]
            guard range.count == literal.count else { return false }
            for offset in 0..<literal.count where path[range.lowerBound + offset] != literal[offset] { return false }
        }
        return true
    }

    /// The `{parameter}` segments of `path`, a path that `fits(_:_:)` the template.
    func parameters(_ path: String, _ found: PathSegments) -> PathParameters {
        var parameters = PathParameters()
        let bytes = path.utf8Span.span
        for (index, segment) in segments.enumerated() {
            guard case .parameter(let name) = segment else { continue }
            // Bytes between two `/` (or the end) of a string: whole scalars, so valid UTF-8.
            parameters.append(name, String(copying: try! UTF8Span(validating: bytes.extracting(found[index]))))
        }
        return parameters
    }
}

/// Where a request path's segments lie: byte offsets, after the leading `/`, for at most
/// `capacity` segments (no route has more), kept inline (no allocation per request).
struct PathSegments {
    static let capacity = 8
    private var ranges = InlineArray<8, Range<Int>>(repeating: 0..<0)
    private(set) var count = 0

    /// The segments of `path` (`/` then non-empty segments separated by `/`); nil when it is not
    /// that shape or has more than `capacity` segments (no route matches it).
    init?(_ path: borrowing Span<UInt8>) {
        guard path.count > 1, path[0] == UInt8(ascii: "/") else { return nil }
        var start = 1
        for index in 1...path.count where index == path.count || path[index] == UInt8(ascii: "/") {
            guard index > start, count < Self.capacity else { return nil }
            ranges[count] = start..<index
            count += 1
            start = index + 1
        }
    }

    subscript(index: Int) -> Range<Int> { ranges[index] }
}

/// The `{parameter}` values of a matched path, in template order. A route has at most three, so
/// they are kept in three slots (no array allocated per request) and looked up by a linear
/// scan (cheaper than hashing each name).
public struct PathParameters: Sendable, Equatable {
    /// The most parameters a route has (checked when a route is made).
    static let capacity = 3
    private var first: (name: String, value: String)?
    private var second: (name: String, value: String)?
    private var third: (name: String, value: String)?

    public init() {}

    /// Parameters from `name: value` pairs (for tests and callers that build a context by hand);
    /// at most three.
    public init(_ pairs: KeyValuePairs<String, String>) {
        precondition(pairs.count <= 3, "a route has at most three parameters")
        for pair in pairs { append(pair.key, pair.value) }
    }

    mutating func append(_ name: String, _ value: String) {
        if first == nil {
            first = (name, value)
        } else if second == nil {
            second = (name, value)
        } else {
            precondition(third == nil, "a route has at most three parameters")
            third = (name, value)
        }
    }

    /// The value of parameter `name`, or nil when the route has no such parameter.
    public subscript(name: String) -> String? {
        if let first, first.name == name { return first.value }
        if let second, second.name == name { return second.value }
        if let third, third.name == name { return third.value }
        return nil
    }

    public static func == (lhs: PathParameters, rhs: PathParameters) -> Bool {
        func same(_ a: (name: String, value: String)?, _ b: (name: String, value: String)?) -> Bool {
            a?.name == b?.name && a?.value == b?.value
        }
        return same(lhs.first, rhs.first) && same(lhs.second, rhs.second) && same(lhs.third, rhs.third)
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
        let bytes = path.utf8Span.span
        // The segments after the leading `/`, found in place; an empty one matches no route.
        guard let found = PathSegments(bytes), found.count < bySegmentCount.count else { return .notFound }
        // RFC 9110 §9.3.2: HEAD is served wherever GET is, with GET's headers and no body
        // (the transport leaves the body out).
        let lookup = method == "HEAD" ? "GET" : method
        var allowed: [String] = []
        for index in bySegmentCount[found.count] where routes[index].fits(bytes, found) {
            if routes[index].method == lookup { return .found(routes[index], routes[index].parameters(path, found)) }
            allowed.append(routes[index].method)
            if routes[index].method == "GET" { allowed.append("HEAD") }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed)
    }
}
