/// Header fields of a message: case-insensitive names, order kept, repeated names allowed.
public struct HTTPHeaders: Sendable, Sequence {
    private var fields: [(name: String, value: String)]

    public init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    /// The first value of `name` (compared case-insensitively), if any.
    public subscript(name: String) -> String? {
        for field in fields where field.name.caseInsensitiveEquals(name) {
            return field.value
        }
        return nil
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }
}

extension String {
    fileprivate func caseInsensitiveEquals(_ other: String) -> Bool {
        utf8.count == other.utf8.count && lowercased() == other.lowercased()
    }
}

/// One parsed request as the transport received it. The path is percent-decoded by
/// libmicrohttpd; query values are decoded and kept in order (a flag without `=` has value `nil`).
public struct HTTPRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [(name: String, value: String?)]
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(
        method: String, path: String, query: [(name: String, value: String?)] = [],
        headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The last value given for a query parameter (a bare flag yields `""`).
    public func queryValue(_ name: String) -> String? {
        query.last(where: { $0.name == name }).map { $0.value ?? "" }
    }
}

/// A complete response; the transport adds `Content-Length` and `Date`.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Set by `HTTPResponse.deferred(_:)`: the real response comes later (see `DeferredResponse`).
    public var deferred: DeferredResponse? = nil

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// What the server calls for every request. Called concurrently from the worker threads, so
/// implementations must be thread-safe; a call may block (it holds one worker thread).
public protocol HTTPHandler: Sendable {
    /// Answers a request whose body arrived within the limit.
    func handle(_ request: HTTPRequest) -> HTTPResponse
    /// Answers a request whose body is larger than `limit` bytes; `request.body` is empty.
    func bodyTooLarge(_ request: HTTPRequest, limit: Int) -> HTTPResponse
}
