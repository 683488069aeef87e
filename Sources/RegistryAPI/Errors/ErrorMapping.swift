import Coordination
import HTTPServer
import Logging
import RegistryCore
import RegistryStorage

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
            let count = failure.count
            // The number of errors found (a field can have several); "at least" when parts of the
            // request were not examined (`ValidationFailure.complete`).
            var problem = ProblemDetails(
                slug: "invalid-fields", title: "Invalid fields", status: 422,
                detail: "\(failure.complete ? "" : "at least ")\(count) field error\(count == 1 ? "" : "s")"
                    + (failure.complete ? "" : " (a list beyond its bound is refused without examining its items)") + ": "
                    + failure.violations.prefix(3).map(\.description).joined(separator: "; ") + (count > 3 ? "; …" : "")
                    + (failure.omitted > 0 ? " (the first \(failure.violations.count) are listed, and \(failure.omitted) more)" : ""),
                violations: failure.violations)
            if failure.omitted > 0 { problem.extensions = [("omittedErrors", .integer(failure.omitted))] }
            return problem
        case let rejection as HTTPRejection:
            return problem(for: rejection)
        case let error as JSONSyntaxError:
            // Named like a field error: where in the document parsing stopped ("" at its top level).
            var problem = ProblemDetails(
                slug: "malformed-json", title: "Malformed JSON", status: 400, detail: "the body is not valid JSON: \(error)",
                violations: [FieldViolation(error.field, .invalid, "not valid JSON: line \(error.line), column \(error.column): \(error.message)")])
            problem.extensions = [("line", .integer(error.line)), ("column", .integer(error.column))]
            return problem
        case let error as ManifestDocuments.ReadError:
            switch error {
            case .invalid(let failure): return problem(for: failure, logger: logger)
            case .syntax(let syntax):
                // As malformed JSON: a body that does not parse is a 400, named by position.
                var problem = ProblemDetails(
                    slug: "malformed-yaml", title: "Malformed YAML", status: 400, detail: "the body is not valid YAML: \(syntax)",
                    violations: error.violations)
                if let line = syntax.line, let column = syntax.column {
                    problem.extensions = [("line", .integer(line)), ("column", .integer(column))]
                }
                return problem
            }
        case let error as LabelSelector.ParseError:
            return ProblemDetails(
                slug: "invalid-query", title: "Invalid query parameter", status: 400, detail: "labelSelector: \(error.message)",
                violations: [FieldViolation("labelSelector", .invalid, error.message)])
        case let error as LeaderLeaseError:
            var problem = ProblemDetails(slug: "unavailable", title: "Service unavailable", status: 503, detail: error.message)
            problem.retryAfterSeconds = 1
            return problem
        case let fault as StorageFault:
            return problem(for: fault, logger: logger)
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
            case .unreadable:
                logger.error("storage failure", metadata: ["error": "\(error)"])
                return internalError
            case .fault(let fault):
                return problem(for: fault, logger: logger)
            case .migration, .fenced:
                // `.fenced` belongs to the background work, which no request runs.
                logger.error("storage failure", metadata: ["error": "\(error)"])
                return internalError
            }
        default:
            logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            return internalError
        }
    }

    /// A database fault: 507 when the disk is full (RFC 4918 §11.5), 503 with `Retry-After`
    /// for a passing lock or a condition someone must fix, 500 for anything else.
    static func problem(for fault: StorageFault, logger: Logger) -> ProblemDetails {
        switch fault.reason {
        case .busy:
            logger.warning("database busy", metadata: ["error": "\(fault.message)"])
            var problem = ProblemDetails(
                slug: "unavailable", title: "Service unavailable", status: 503, detail: "the database is busy; retry shortly")
            problem.retryAfterSeconds = 1
            return problem
        case .diskFull:
            logger.error("database write failed: disk full", metadata: ["error": "\(fault.message)"])
            var problem = ProblemDetails(
                slug: "insufficient-storage", title: "Insufficient storage", status: 507,
                detail: "\(fault.summary); nothing was written. Retry once space has been freed")
            problem.retryAfterSeconds = 30
            return problem
        case .readOnly, .ioError, .corrupt, .cannotOpen, .notDurable:
            logger.log(
                level: fault.reason == .notDurable ? .critical : .error, "database unusable",
                metadata: ["reason": "\(fault.reason.rawValue)", "error": "\(fault.message)"])
            // A write that could not be made durable is committed, perhaps seen by readers, but
            // not known to be on disk: neither "nothing was written" nor a retry that could
            // succeed before a restart.
            let consequence =
                fault.reason == .notDurable
                ? "the write was not acknowledged and may be lost. The server must be restarted" : "nothing was written"
            var problem = ProblemDetails(
                slug: "storage-unavailable", title: "Service unavailable", status: 503, detail: "\(fault.summary); \(consequence)")
            problem.extensions = [("reason", .string(fault.reason.rawValue))]
            problem.retryAfterSeconds = 30
            return problem
        case .unavailable:
            // A lost connection may fail after the server committed, so "nothing was written"
            // is not claimed; the revision (GET) tells.
            logger.error("database unreachable", metadata: ["error": "\(fault.message)"])
            var problem = ProblemDetails(
                slug: "storage-unavailable", title: "Service unavailable", status: 503,
                detail: "\(fault.summary); retry shortly (a write may or may not have been applied: read the service to know)")
            problem.extensions = [("reason", .string(fault.reason.rawValue))]
            problem.retryAfterSeconds = 5
            return problem
        case .internal:
            logger.error("storage failure", metadata: ["error": "\(fault.message)"])
            return internalError
        }
    }

    /// Requests the transport refused before routing (RFC 9112 framing, connection limits).
    static func problem(for rejection: HTTPRejection) -> ProblemDetails {
        switch rejection {
        case .malformed(_, let field):
            return ProblemDetails(
                slug: "malformed-request", title: "Malformed request", status: 400, detail: rejection.detail,
                violations: field.map { [FieldViolation($0, .invalid, rejection.detail)] } ?? [])
        case .unsupportedTransferCoding:
            return ProblemDetails(slug: "unsupported-transfer-coding", title: "Not implemented", status: 501, detail: rejection.detail)
        case .headerSectionTooLarge(let limit):
            var problem = ProblemDetails(
                slug: "headers-too-large", title: "Request header fields too large", status: 431, detail: rejection.detail)
            problem.extensions = [("limit", .integer(limit))]
            return problem
        case .serverFull, .clientConnectionLimit, .bodyBudgetExhausted:
            return ProblemDetails(slug: "unavailable", title: "Service unavailable", status: 503, detail: rejection.detail)
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
            // A method is a token of any length: a long one is not echoed whole (cut where the log's message cuts it).
            let limit = LogEscaping.maxMessageMethodBytes
            let shown = method.count > limit ? method.prefix(limit) + "…" : method
            return ProblemDetails(
                slug: "method-not-allowed", title: "Method not allowed", status: 405,
                detail: "\(shown) is not allowed here; allowed: \(allowed.joined(separator: ", "))")
        case .unsupportedMediaType(let got, let accepted):
            let expected = accepted.joined(separator: " or ")
            return ProblemDetails(
                slug: "unsupported-media-type", title: "Unsupported media type", status: 415,
                detail: "Content-Type must be \(expected)" + (got.map { ", not \($0)" } ?? " (it is missing)"),
                violations: [FieldViolation("Content-Type", .notSupported, "must be \(expected)")])
        case .notAcceptable(let detail):
            return ProblemDetails(
                slug: "not-acceptable", title: "Not acceptable", status: 406, detail: detail,
                violations: [FieldViolation("Accept", .notSupported, detail)])
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
        case .preconditionFailed(let detail, let header):
            return ProblemDetails(
                slug: "precondition-failed", title: "Precondition failed", status: 412, detail: detail,
                violations: [FieldViolation(header, .invalid, detail)])
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
        case .expired(let detail):
            return ProblemDetails(
                slug: "expired", title: "Gone", status: 410, detail: detail, violations: [FieldViolation("resourceVersion", .invalid, detail)])
        case .tooManyRequests(let detail, let retryAfter):
            var problem = ProblemDetails(slug: "too-many-requests", title: "Too many requests", status: 429, detail: detail)
            problem.retryAfterSeconds = retryAfter
            return problem
        }
    }
}
