public import HTTPServer
public import Logging
public import RegistryCore
public import RegistryStorage

/// The one place where errors become HTTP responses. Anything not recognised is a 500 with a
/// generic detail; the real error is logged, never sent.
enum ErrorMapping {
    static func problem(for error: any Error, logger: Logger) -> ProblemDetails {
        switch error {
        case let error as APIError: return problem(for: error)
        case let failure as ValidationFailure:
            if failure.hasUnknownFields {
                let unknown = failure.violations.filter { $0.kind == .unknownField }.map(\.field)
                return ProblemDetails(
                    slug: "unknown-fields", title: "Unknown fields", status: 400,
                    detail: "the request has fields this API does not define: \(unknown.joined(separator: ", "))",
                    violations: failure.violations)
            }
            let count = failure.violations.count
            return ProblemDetails(
                slug: "invalid-fields", title: "Invalid fields", status: 422,
                detail: "\(count) field\(count == 1 ? " is" : "s are") invalid: "
                    + failure.violations.prefix(3).map(\.description).joined(separator: "; ") + (count > 3 ? "; …" : ""),
                violations: failure.violations)
        case let error as JSONSyntaxError:
            return ProblemDetails(slug: "malformed-json", title: "Malformed JSON", status: 400, detail: "the body is not valid JSON: \(error)")
        case let error as LabelSelector.ParseError:
            return ProblemDetails(
                slug: "invalid-query", title: "Invalid query parameter", status: 400, detail: "labelSelector: \(error.message)",
                violations: [FieldViolation("labelSelector", .invalid, error.message)])
        case let error as StoreError:
            switch error {
            case .notFound(let namespace, let name):
                return ProblemDetails(slug: "not-found", title: "Not found", status: 404, detail: "service \(namespace)/\(name) does not exist")
            case .importConflicts:
                return ProblemDetails(
                    slug: "import-conflict", title: "Conflict", status: 409,
                    detail: "\(error); nothing was imported. Use onConflict=skip or onConflict=replace")
            case .alreadyExists(let namespace, let name):
                return ProblemDetails(
                    slug: "already-exists", title: "Already exists", status: 409,
                    detail: "service \(namespace)/\(name) already exists; use PUT or PATCH on /v1/services/\(namespace)/\(name) to change it")
            case .database(let sqlite) where sqlite.primaryCode == 5 || sqlite.primaryCode == 6:
                logger.warning("database busy", metadata: ["error": "\(sqlite)"])
                return ProblemDetails(slug: "unavailable", title: "Service unavailable", status: 503, detail: "the database is busy; retry shortly")
            case .database(let sqlite) where sqlite.primaryCode == 13:
                logger.error("database full", metadata: ["error": "\(sqlite)"])
                return ProblemDetails(slug: "unavailable", title: "Service unavailable", status: 503, detail: "the disk holding the database is full")
            default:
                logger.error("storage failure", metadata: ["error": "\(error)"])
                return internalError
            }
        default:
            logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            return internalError
        }
    }

    static let internalError = ProblemDetails(
        slug: "internal", title: "Internal server error", status: 500, detail: "the server failed to handle the request; see its log")

    static func problem(for error: APIError) -> ProblemDetails {
        switch error {
        case .malformedBody(let detail):
            return ProblemDetails(slug: "malformed-body", title: "Malformed request body", status: 400, detail: detail)
        case .badRequest(let detail, let field):
            return ProblemDetails(
                slug: "bad-request", title: "Bad request", status: 400, detail: detail,
                violations: field.map { [FieldViolation($0, .invalid, detail)] } ?? [])
        case .notFound(let detail):
            return ProblemDetails(slug: "not-found", title: "Not found", status: 404, detail: detail)
        case .routeNotFound(let path):
            return ProblemDetails(slug: "no-route", title: "Not found", status: 404, detail: "no route matches \(path); see /openapi.yaml")
        case .methodNotAllowed(let method, let allowed):
            return ProblemDetails(
                slug: "method-not-allowed", title: "Method not allowed", status: 405,
                detail: "\(method) is not allowed here; allowed: \(allowed.joined(separator: ", "))")
        case .unsupportedMediaType(let got, let expected):
            return ProblemDetails(
                slug: "unsupported-media-type", title: "Unsupported media type", status: 415,
                detail: "Content-Type must be \(expected)" + (got.map { ", not \($0)" } ?? " (it is missing)"))
        case .notAcceptable(let detail):
            return ProblemDetails(slug: "not-acceptable", title: "Not acceptable", status: 406, detail: detail)
        case .payloadTooLarge(let limit):
            var problem = ProblemDetails(
                slug: "payload-too-large", title: "Payload too large", status: 413,
                detail: "the request body is larger than the limit of \(limit) bytes")
            problem.extensions = [("limit", .integer(limit))]
            return problem
        case .conflict(let detail, let field):
            return ProblemDetails(
                slug: "conflict", title: "Conflict", status: 409, detail: detail,
                violations: field.map { [FieldViolation($0, .invalid, detail)] } ?? [])
        case .preconditionFailed(let detail):
            return ProblemDetails(slug: "precondition-failed", title: "Precondition failed", status: 412, detail: detail)
        case .unauthorized(let detail, _):
            return ProblemDetails(slug: "unauthorized", title: "Unauthorized", status: 401, detail: detail)
        case .forbidden(let detail, let missing):
            var problem = ProblemDetails(slug: "forbidden", title: "Forbidden", status: 403, detail: detail)
            problem.extensions = [("missing", .string(missing))]
            return problem
        case .badGateway(let detail):
            return ProblemDetails(slug: "cluster-error", title: "Cluster error", status: 502, detail: detail)
        case .gatewayTimeout(let detail):
            return ProblemDetails(slug: "cluster-timeout", title: "Cluster timeout", status: 504, detail: detail)
        case .unavailable(let detail):
            return ProblemDetails(slug: "unavailable", title: "Service unavailable", status: 503, detail: detail)
        }
    }
}
