import RegistryCore

/// Failures decided by the HTTP layer itself (as opposed to domain or storage errors).
public enum APIError: Error, Sendable {
    case malformedBody(String)
    case badRequest(String, field: String? = nil)
    case notFound(String)
    case routeNotFound(path: String)
    case methodNotAllowed(method: String, allowed: [String])
    /// 415: the body's `Content-Type` (`got`, nil when missing) is none of `accepted`.
    case unsupportedMediaType(got: String?, accepted: [String])
    case notAcceptable(String)
    case payloadTooLarge(limit: Int)
    case conflict(String, field: String? = nil)
    /// 412; `header`: the precondition that failed (`If-Match` or `If-None-Match`), named in `errors`.
    case preconditionFailed(String, header: String)
    /// No or an unknown bearer token.
    case unauthorized(String, invalidToken: Bool)
    /// The token is known but may not do this; `missing` names the permission or namespace.
    case forbidden(String, missing: String)
    case unavailable(String)
    /// 410: a watch's `resourceVersion` is older than the kept change log (or newer than the
    /// current version): the client lists again and watches from the list's version.
    case expired(String)
    /// 429: a bounded resource (the watch slots) is in use; retry after `retryAfter` seconds.
    case tooManyRequests(String, retryAfter: Int)
    /// A cluster's API server failed the request.
    case badGateway(String)
    /// A cluster did not answer within the request's deadline.
    case gatewayTimeout(String)
}
