public import RegistryCore

/// An RFC 9457 problem document, with an `errors` extension listing field-level problems.
public struct ProblemDetails: Sendable {
    public static let mediaType = "application/problem+json"

    /// Short slug identifying the problem type; the `type` member is `urn:problem-type:endpoint-registry:<slug>`.
    public var slug: String
    public var title: String
    public var status: Int
    public var detail: String
    public var violations: [FieldViolation] = []
    /// Extra members (e.g. `limit` for 413).
    public var extensions: [(String, JSONValue)] = []
    /// Seconds a client should wait before retrying (sent as `Retry-After`), for 503s.
    public var retryAfterSeconds: Int?

    public init(slug: String, title: String, status: Int, detail: String, violations: [FieldViolation] = []) {
        self.slug = slug
        self.title = title
        self.status = status
        self.detail = detail
        self.violations = violations
    }

    public func json(instance: String, requestID: String?) -> JSONValue {
        var object = JSONObject()
        object["type"] = .string("urn:problem-type:endpoint-registry:\(slug)")
        object["title"] = .string(title)
        object["status"] = .integer(status)
        object["detail"] = .string(detail)
        object["instance"] = .string(instance)
        if let requestID { object["requestId"] = .string(requestID) }
        if !violations.isEmpty {
            object["errors"] = .array(
                violations.map { violation in
                    .object(
                        JSONObject([
                            ("field", .string(violation.field)), ("reason", .string(violation.kind.rawValue)),
                            ("message", .string(violation.message)),
                        ]))
                })
        }
        for (key, value) in extensions { object[key] = value }
        return .object(object)
    }
}
