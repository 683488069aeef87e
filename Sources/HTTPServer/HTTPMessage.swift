import Foundation

/// Header fields of a message: case-insensitive names, order kept, repeated names allowed.
public struct HTTPHeaders: Sendable, Sequence {
    private var fields: [(name: String, value: String)]

    public init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    /// `fields` with room for `capacity` fields in all: a response's headers built in one
    /// allocation when the fields added later are known (`ETag`, `X-Request-Id`).
    public init(_ fields: [(name: String, value: String)], reservingCapacity capacity: Int) {
        self.fields = []
        self.fields.reserveCapacity(Swift.max(capacity, fields.count))
        // One by one: `append(contentsOf:)` costs more than the copy of the usual one field.
        for index in fields.indices { self.fields.append(fields[index]) }
    }

    /// The first value of `name` (compared case-insensitively), if any. For a field defined as a
    /// list use `list(_:)`; a singleton field sent more than once should be refused, not read here.
    public subscript(name: String) -> String? {
        // By index: iterating `fields` copies each pair (two reference counts a field).
        for index in fields.indices where fields[index].name.caseInsensitiveEquals(name) {
            return fields[index].value
        }
        return nil
    }

    /// How many fields named `name` there are (compared case-insensitively), without copying
    /// their values: asked of every request for the singleton fields.
    public func count(of name: String) -> Int {
        var count = 0
        for index in fields.indices where fields[index].name.caseInsensitiveEquals(name) { count += 1 }
        return count
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    /// The values of a list-valued field (`Accept`, `If-Match`, …) combined in order into one
    /// comma-separated value, as RFC 9110 §5.3 lets a recipient do; nil when the field is absent.
    public func list(_ name: String) -> String? {
        // Usually absent, or sent once: then one pass and no arrays (asked of every GET, for the
        // preconditions).
        guard let first = fields.indices.first(where: { fields[$0].name.caseInsensitiveEquals(name) }) else { return nil }
        guard fields[(first + 1)...].contains(where: { $0.name.caseInsensitiveEquals(name) }) else { return fields[first].value }
        return values(name).joined(separator: ", ")
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    /// Replaces the value of the field at `index` (in order of arrival); nothing when out of range.
    mutating func replaceValue(at index: Int, with value: String) {
        guard fields.indices.contains(index) else { return }
        fields[index].value = value
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }
}

extension String {
    /// Field names are tokens, compared case-insensitively in ASCII (RFC 9110 §5.1); byte by byte,
    /// without building lower-cased copies.
    func caseInsensitiveEquals(_ other: String) -> Bool {
        // The length first, without making the spans: most names compared differ in it.
        guard utf8.count == other.utf8.count else { return false }
        let (left, right) = (utf8Span.span, other.utf8Span.span)
        for index in left.indices {
            let (a, b) = (left[index], right[index])
            guard a == b || (a | 0x20 == b | 0x20 && (a | 0x20) >= UInt8(ascii: "a") && (a | 0x20) <= UInt8(ascii: "z")) else { return false }
        }
        return true
    }

    /// Whether every UTF-8 byte satisfies `predicate`, read in place: iterating `utf8` costs
    /// ten times as much in the checks every request goes through. (RegistryCore's
    /// `allUTF8Bytes` is the same for the modules above it; this module depends on none.)
    func utf8BytesAll(_ predicate: (UInt8) -> Bool) -> Bool {
        let bytes = utf8Span.span
        for index in bytes.indices where !predicate(bytes[index]) { return false }
        return true
    }
}

/// One parsed request as the transport received it. The path is percent-decoded by
/// libmicrohttpd; query values are decoded and kept in order (a flag without `=` has value `nil`).
public struct HTTPRequest: Sendable {
    public var method: String
    public var path: String
    /// The path exactly as the request target gave it: still percent-encoded, without the query
    /// (for the absolute form, without the scheme and authority). `%2F` here is data, not a
    /// separator (RFC 3986 §2.2), though `path` shows it as `/`.
    public var rawPath: String
    /// The protocol version of the request line (`HTTP/1.1`, `HTTP/1.0`).
    public var version: String
    public var query: [(name: String, value: String?)]
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The client's IP address as the socket sees it (`127.0.0.1`, `::1`); empty when unknown.
    public var remoteAddress = ""

    public init(
        method: String, path: String, rawPath: String? = nil, version: String = "HTTP/1.1", query: [(name: String, value: String?)] = [],
        headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []
    ) {
        self.method = method
        self.path = path
        self.rawPath = rawPath ?? path
        self.version = version
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The value given for a query parameter (the last one when it is repeated; a bare flag
    /// yields `""`).
    public func queryValue(_ name: String) -> String? {
        query.last(where: { $0.name == name }).map { $0.value ?? "" }
    }
}

/// A complete response; the transport adds `Content-Length` and `Date`.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    /// The body's first part and the parts after it: most bodies are one array, kept without
    /// a list around it (no allocation for the list on every response).
    private var firstSegment: [UInt8]
    private var laterSegments: [[UInt8]]
    /// Set by `HTTPResponse.deferred(_:)`: the real response comes later (see `DeferredResponse`).
    public var deferred: DeferredResponse? = nil
    /// Set by `HTTPResponse.stream(status:headers:_:)`: the body is written later (see `ResponseStream`).
    public var stream: ResponseStream? = nil

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.firstSegment = body
        self.laterSegments = []
    }

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), segments: [[UInt8]]) {
        self.status = status
        self.headers = headers
        self.firstSegment = segments.first ?? []
        self.laterSegments = Array(segments.dropFirst())
    }

    /// The body as consecutive parts (at least one). A large body made of buffers kept
    /// elsewhere (a cache) is sent from those buffers, not copied per response or per connection.
    public var segments: [[UInt8]] {
        get { [firstSegment] + laterSegments }
        set {
            firstSegment = newValue.first ?? []
            laterSegments = Array(newValue.dropFirst())
        }
    }

    /// How many parts the body has (`segments.count`, without building the list).
    public var segmentCount: Int { 1 + laterSegments.count }

    /// The whole body (joined when it has several segments).
    public var body: [UInt8] {
        get { laterSegments.isEmpty ? firstSegment : Array(segments.joined()) }
        set {
            firstSegment = newValue
            laterSegments = []
        }
    }

    /// Length of the body in bytes.
    public var bodyCount: Int { laterSegments.reduce(firstSegment.count) { $0 + $1.count } }
}

/// Why the transport refused a request without handing it to `HTTPHandler.handle`. The handler
/// renders it (`HTTPHandler.reject`); the transport closes the connection after the answer.
public enum HTTPRejection: Error, Sendable, Equatable {
    /// 400: the request line or header section breaks HTTP/1.1's message syntax (RFC 9112) in a
    /// way that could make the server and an intermediary read different requests (framing,
    /// line endings, `Host`, control characters, a percent-encoded NUL in the target).
    /// `field` names the query parameter or header field at fault, when there is one.
    case malformed(String, field: String? = nil)
    /// 501: a transfer coding other than `chunked` (RFC 9112 §6.1: "A server that receives a
    /// request message with a transfer coding it does not understand SHOULD respond with 501").
    case unsupportedTransferCoding(String)
    /// 431: the request line and header section are larger than `limit` bytes.
    case headerSectionTooLarge(limit: Int)
    /// 503: every one of the `limit` connection slots is taken.
    case serverFull(limit: Int)
    /// 503: the client's address already has `limit` connections open.
    case clientConnectionLimit(limit: Int)
    /// 503: the bodies being received use up the budget of `budget` bytes.
    case bodyBudgetExhausted(budget: Int)

    /// The query parameter or header field the rejection is about, when there is one.
    public var field: String? {
        if case .malformed(_, let field) = self { return field }
        return nil
    }

    /// The HTTP status the rejection is answered with.
    public var status: Int {
        switch self {
        case .malformed: 400
        case .unsupportedTransferCoding: 501
        case .headerSectionTooLarge: 431
        case .serverFull, .clientConnectionLimit, .bodyBudgetExhausted: 503
        }
    }

    /// Seconds a client should wait before retrying (`Retry-After`), for temporary conditions.
    public var retryAfterSeconds: Int? {
        switch self {
        case .serverFull, .clientConnectionLimit, .bodyBudgetExhausted: 1
        default: nil
        }
    }

    /// One sentence saying what was wrong, for the problem's `detail`.
    public var detail: String {
        switch self {
        case .malformed(let reason, _): reason
        case .unsupportedTransferCoding(let coding):
            "Transfer-Encoding \"\(coding)\" is not supported; send the body with Content-Length or Transfer-Encoding: chunked"
        case .headerSectionTooLarge(let limit): "the request line and headers are larger than the limit of \(limit) bytes"
        case .serverFull(let limit): "the server is serving its limit of \(limit) connections; retry shortly"
        case .clientConnectionLimit(let limit): "this client address already has its limit of \(limit) connections open; retry on one of them"
        case .bodyBudgetExhausted(let budget):
            "the server is receiving too many request bodies at once (budget \(budget) bytes); retry shortly"
        }
    }
}

/// What the server calls for every request. Called concurrently from the worker threads, so
/// implementations must be thread-safe; a call may block (it holds one worker thread).
public protocol HTTPHandler: Sendable {
    /// Answers a request whose body arrived within the limit.
    func handle(_ request: HTTPRequest) -> HTTPResponse
    /// Answers a request whose body is larger than `limit` bytes; `request.body` is empty.
    func bodyTooLarge(_ request: HTTPRequest, limit: Int) -> HTTPResponse
    /// Called with the headers of a request that announces a body, before any body byte is
    /// read: a response answers now (the body is never read and the connection closes), nil
    /// lets the body be received. Used to refuse unauthenticated or unauthorized uploads early.
    func admit(_ request: HTTPRequest) -> HTTPResponse?
    /// Renders a request the transport refused. The transport adds `Connection: close`.
    func reject(_ request: HTTPRequest, reason: HTTPRejection) -> HTTPResponse
    /// A message of libmicrohttpd, without its line ending, at most 511 bytes (`…` when it was
    /// cut): mostly about a request it refused or a connection it dropped itself (an HTTP/2
    /// preface, too many headers, broken chunked framing), which a client can cause at will; also
    /// a failure to start. It may quote what a client sent (escape it before writing it). Called
    /// from any thread, also while the server starts.
    func libraryMessage(_ message: String)
}

extension HTTPHandler {
    /// Default: every request that passed the transport's checks may send its body.
    public func admit(_ request: HTTPRequest) -> HTTPResponse? { nil }

    /// Default: one line on standard error, control characters and non-ASCII as `\xNN`.
    public func libraryMessage(_ message: String) {
        var line = ""
        for byte in message.utf8 {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") {
                line.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                line += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Default: a plain-text answer with the rejection's status and detail.
    public func reject(_ request: HTTPRequest, reason: HTTPRejection) -> HTTPResponse {
        var headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")])
        if let seconds = reason.retryAfterSeconds { headers.add("Retry-After", String(seconds)) }
        return HTTPResponse(status: reason.status, headers: headers, body: Array((reason.detail + "\n").utf8))
    }
}
