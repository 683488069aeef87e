import Foundation
public import KubernetesClient
public import RegistryCore

/// Where and how to reach a registry server.
public struct ClientSettings: Sendable {
    /// Base URL, e.g. `http://127.0.0.1:8478` or `https://registry.example.com` (no trailing `/`).
    public var server: String
    /// The bearer token, if any (read from a file or the environment, never from the command line).
    public var token: String?
    public var tls: TLSSettings
    public var timeout: Duration
    /// Called with the text of each `Warning: 299` header of every answer (client-go's
    /// `rest.WarningHandler`; kubectl prints them as `Warning: TEXT` on standard error).
    public var warningHandler: (@Sendable (String) -> Void)?
    /// How many times a request answered 429 or 5xx with `Retry-After: SECONDS` is sent again,
    /// after that many seconds (at most `maximumRetryAfter`), as client-go's REST client does
    /// (its default is 10); 0 sends each request once.
    public var maxRetries: Int
    /// Called before each such retry with a sentence saying what is tried again and when.
    public var retryNotice: (@Sendable (String) -> Void)?

    /// The longest wait a `Retry-After` obtains, in seconds.
    public static let maximumRetryAfter = 30

    public init(
        server: String, token: String?, tls: TLSSettings = TLSSettings(), timeout: Duration = .seconds(30),
        warningHandler: (@Sendable (String) -> Void)? = nil, maxRetries: Int = 0, retryNotice: (@Sendable (String) -> Void)? = nil
    ) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.token = token
        self.tls = tls
        self.timeout = timeout
        self.warningHandler = warningHandler
        self.maxRetries = maxRetries
        self.retryNotice = retryNotice
    }
}

/// `Warning` header values (RFC 9111 §5.5: `warn-code SP warn-agent SP warn-text [SP warn-date]`).
public enum WarningHeader {
    /// The warn-text of a value with code 299 (the one code the Kubernetes API server sends, and
    /// the only one client-go reports), its quoted-string unescaped; nil for another code. A value
    /// that is not in this form is given whole, so that nothing the server says is lost.
    public static func text(_ value: String) -> String? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count == 3, parts[0].count == 3, parts[0].allSatisfy(\.isNumber), parts[2].first == "\"" else { return trimmed }
        guard parts[0] == "299" else { return nil }
        var text = ""
        var escaped = false
        for character in parts[2].dropFirst() {
            if escaped {
                text.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                return text
            } else {
                text.append(character)
            }
        }
        return trimmed
    }
}

/// One RFC 9457 problem document as the server sends it, with its per-field errors.
public struct Problem: Sendable, Equatable {
    public struct FieldError: Sendable, Equatable {
        public var field: String
        public var message: String
    }

    public var status: Int
    public var title: String
    public var detail: String
    /// The field a 400/409 names (`field`), when set.
    public var field: String?
    public var errors: [FieldError]

    /// Decodes a problem+json body; a body that is not one gives a problem with the text as detail.
    public static func decode(_ body: [UInt8], status: Int) -> Problem {
        guard case .object(let object)? = try? JSONParser.parse(body) else {
            let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return Problem(status: status, title: "HTTP \(status)", detail: text, field: nil, errors: [])
        }
        func string(_ value: JSONValue?) -> String? { if case .string(let text)? = value { text } else { nil } }
        var errors: [FieldError] = []
        if case .array(let items)? = object["errors"] {
            for case .object(let item) in items {
                errors.append(FieldError(field: string(item["field"]) ?? "", message: string(item["message"]) ?? ""))
            }
        }
        return Problem(
            status: object["status"]?.intValue ?? status, title: string(object["title"]) ?? "HTTP \(status)",
            detail: string(object["detail"]) ?? "", field: string(object["field"]), errors: errors)
    }

    /// The status for messages: `HTTP 404 Not found` (the title when the body was a problem
    /// document), as kubectl's `Error from server (NotFound)` names it.
    public var statusText: String {
        title == "HTTP \(status)" || title.isEmpty ? "HTTP \(status)" : "HTTP \(status) \(title)"
    }

    /// One line per problem: `FIELD: MESSAGE` for each field error, otherwise the detail (with
    /// its field when the server named one).
    public var lines: [String] {
        if !errors.isEmpty { return errors.map { $0.field.isEmpty ? $0.message : "\($0.field): \($0.message)" } }
        let text = detail.isEmpty ? title : detail
        return [field.map { "\($0): \(text)" } ?? text]
    }
}

/// Why a call failed.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    /// No HTTP answer: connection refused, TLS, timeout.
    case transport(String)
    /// The server answered with an error status (its problem document).
    case problem(Problem)
    /// The answer could not be understood (not JSON where JSON was expected).
    case invalidResponse(String)

    public var description: String {
        switch self {
        case .transport(let message): message
        case .problem(let problem): problem.lines.joined(separator: "; ") + " (\(problem.statusText))"
        case .invalidResponse(let message): message
        }
    }
}

/// An answer of the registry.
public struct ClientResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.last { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The body parsed as JSON.
    public func json() throws(ClientError) -> JSONValue {
        do {
            return try JSONParser.parse(body)
        } catch {
            throw .invalidResponse("the server's answer (HTTP \(status)) is not JSON: \(error)")
        }
    }
}

/// A client of the registry's REST API (`openapi.yaml`) over the project's libcurl transport.
public struct RegistryClient: Sendable {
    public let settings: ClientSettings
    private let transport: any HTTPTransport

    public init(settings: ClientSettings, transport: any HTTPTransport = CurlTransport()) {
        self.settings = settings
        self.transport = transport
    }

    /// Percent-encodes one path segment (a namespace, a name).
    public static func segment(_ text: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// The path of one service: `/v1/services/NS/NAME`.
    public static func servicePath(_ namespace: String, _ name: String) -> String {
        "/v1/services/\(segment(namespace))/\(segment(name))"
    }

    /// Sends a request; answers with status ≥ 400 are thrown as `ClientError.problem`, except
    /// the statuses listed in `accept` (e.g. 404 when absence is an expected answer).
    public func send(
        _ method: String, _ path: String, query: [(String, String)] = [], headers: [(String, String)] = [], body: [UInt8] = [],
        accept: Set<Int> = []
    ) throws(ClientError) -> ClientResponse {
        var url = settings.server + path
        if !query.isEmpty {
            var allowed = CharacterSet.urlQueryAllowed
            allowed.remove(charactersIn: "&=+;")
            url += "?" + query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&")
        }
        var allHeaders = headers
        if let token = settings.token { allHeaders.append(("Authorization", "Bearer \(token)")) }
        if !allHeaders.contains(where: { $0.0.lowercased() == "accept" }) { allHeaders.append(("Accept", "application/json")) }
        allHeaders.append(("User-Agent", "endpoint-registry-cli"))
        var response: KubeResponse
        var retries = 0
        while true {
            do {
                response = try transport.send(
                    KubeRequest(method: method, url: url, headers: allHeaders, body: body, timeout: settings.timeout), tls: settings.tls)
            } catch {
                throw .transport("\(method) \(settings.server)\(path): \(error)")
            }
            guard retries < settings.maxRetries, let seconds = Self.retryAfter(response) else { break }
            retries += 1
            let wait = min(seconds, ClientSettings.maximumRetryAfter)
            let problem = Problem.decode(response.body, status: response.status)
            settings.retryNotice?(
                "\(method) \(settings.server)\(path): \(problem.lines.joined(separator: "; ")) (\(problem.statusText)); "
                    + "trying again in \(wait) s (retry \(retries) of \(settings.maxRetries))")
            Thread.sleep(forTimeInterval: Double(wait))
        }
        let answer = ClientResponse(status: response.status, headers: response.headers, body: response.body)
        if let warningHandler = settings.warningHandler {
            for header in answer.headers where header.name.lowercased() == "warning" {
                if let text = WarningHeader.text(header.value) { warningHandler(text) }
            }
        }
        if answer.status >= 400 && !accept.contains(answer.status) {
            throw .problem(Problem.decode(answer.body, status: answer.status))
        }
        return answer
    }

    /// The seconds of the `Retry-After` of a 429 or 5xx answer, when it gives them as an integer
    /// (client-go's `checkWait`: the only form it honours); nil otherwise.
    static func retryAfter(_ response: KubeResponse) -> Int? {
        guard response.status == 429 || response.status >= 500 else { return nil }
        guard let value = response.headers.last(where: { $0.name.lowercased() == "retry-after" })?.value,
            let seconds = Int(value.trimmingCharacters(in: .whitespaces)), seconds >= 0
        else { return nil }
        return seconds
    }

    /// Sends a JSON body.
    public func sendJSON(
        _ method: String, _ path: String, _ value: JSONValue, query: [(String, String)] = [], headers: [(String, String)] = [],
        contentType: String = "application/json", accept: Set<Int> = []
    ) throws(ClientError) -> ClientResponse {
        try send(method, path, query: query, headers: headers + [("Content-Type", contentType)], body: JSONWriter.bytes(value), accept: accept)
    }

    /// Every service matching the filters, following `continue` tokens.
    public func listServices(namespace: String?, labelSelector: String?) throws(ClientError) -> [JSONValue] {
        try listServicesWithVersion(namespace: namespace, labelSelector: labelSelector).items
    }

    /// Every service matching the filters, and the resource version of the first page (a watch
    /// from it misses nothing; later pages may already show newer changes, which the watch then
    /// repeats).
    public func listServicesWithVersion(
        namespace: String?, labelSelector: String?
    ) throws(ClientError) -> (
        items: [JSONValue], resourceVersion: String
    ) {
        var items: [JSONValue] = []
        var resourceVersion: String? = nil
        var continueToken: String? = nil
        repeat {
            var query: [(String, String)] = [("limit", "500")]
            if let namespace { query.append(("namespace", namespace)) }
            if let labelSelector, !labelSelector.isEmpty { query.append(("labelSelector", labelSelector)) }
            if let continueToken { query.append(("continue", continueToken)) }
            let page = try send("GET", "/v1/services", query: query).json()
            guard case .object(let object) = page, case .array(let pageItems)? = object["items"] else {
                throw .invalidResponse("GET /v1/services did not answer a list")
            }
            items += pageItems
            if resourceVersion == nil { resourceVersion = object["metadata"]?["resourceVersion"]?.stringValue }
            if case .string(let next)? = object["continue"], !next.isEmpty { continueToken = next } else { continueToken = nil }
        } while continueToken != nil
        return (items, resourceVersion ?? "0")
    }

    /// Every item of a paged list (`{"items": […], "continue": …}`, as `GET …/history`),
    /// `limit` per request, following `continue` to the last page as kubectl's chunked lists do.
    /// A `continue` the server already gave (it would loop) is an `invalidResponse`.
    public func listAllPages(_ path: String, query: [(String, String)] = [], limit: Int) throws(ClientError) -> [JSONValue] {
        var items: [JSONValue] = []
        var continueToken: String? = nil
        var tokens: Set<String> = []
        repeat {
            var pageQuery = query + [("limit", String(limit))]
            if let continueToken { pageQuery.append(("continue", continueToken)) }
            let page = try send("GET", path, query: pageQuery).json()
            guard case .array(let pageItems)? = page["items"] else { throw .invalidResponse("GET \(path) did not answer a list") }
            items += pageItems
            if case .string(let next)? = page["continue"], !next.isEmpty {
                guard tokens.insert(next).inserted else {
                    throw .invalidResponse("GET \(path) gave the continue token \(next) twice (the pages would never end)")
                }
                continueToken = next
            } else {
                continueToken = nil
            }
        } while continueToken != nil
        return items
    }

    /// How a watch ended.
    public enum WatchEnd: Sendable, Equatable {
        /// The server ended it (its timeout, or shutdown): watch again from the last version.
        case closed
        /// The version is no longer kept (410, or an ERROR event with code 410): list again.
        case expired
        /// `onEvent` asked to stop.
        case stopped
        /// The server dropped the watch (an ERROR event with code 503: it fell behind, or the
        /// server is busy): watch again from the last version received.
        case dropped(String)
    }

    /// `GET /v1/services?watch=true&resourceVersion=…`: calls `onEvent` with each event
    /// (`{"type": …, "object": …}`: ADDED, MODIFIED, DELETED or BOOKMARK) as it arrives, until
    /// the server ends the watch, `onEvent` returns false, or the version is gone. An ERROR event
    /// other than 410 and 503 is thrown as a problem; a line that is not such an event (not JSON,
    /// another type, an object that is not a service, or a stream that ends inside a line) as
    /// `invalidResponse`: the server does not answer as the API does.
    public func watchServices(
        namespace: String?, labelSelector: String?, resourceVersion: String, timeoutSeconds: Int = 300,
        onEvent: @escaping (JSONValue) -> Bool
    ) throws(ClientError) -> WatchEnd {
        var query: [(String, String)] = [
            ("watch", "true"), ("resourceVersion", resourceVersion), ("allowWatchBookmarks", "true"), ("timeoutSeconds", String(timeoutSeconds)),
        ]
        if let namespace { query.append(("namespace", namespace)) }
        if let labelSelector, !labelSelector.isEmpty { query.append(("labelSelector", labelSelector)) }
        var url = settings.server + "/v1/services?"
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+;")
        url += query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&")
        var headers: [(String, String)] = [("Accept", "application/json"), ("User-Agent", "endpoint-registry-cli")]
        if let token = settings.token { headers.append(("Authorization", "Bearer \(token)")) }
        var pending: [UInt8] = []
        var end = WatchEnd.closed
        var failure: ClientError? = nil
        let response: KubeResponse
        do {
            response = try transport.stream(
                KubeRequest(method: "GET", url: url, headers: headers, timeout: .seconds(timeoutSeconds + 30)), tls: settings.tls
            ) { bytes in
                pending += bytes
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(pending[..<newline])
                    pending.removeSubrange(...newline)
                    guard !line.isEmpty else { continue }
                    let event: JSONValue
                    do {
                        do {
                            event = try JSONParser.parse(line)
                        } catch {
                            throw MalformedEvent(description: "a line that is not JSON (\(error))")
                        }
                        try Self.checkWatchEvent(event)
                    } catch {
                        failure = .invalidResponse(
                            "GET \(settings.server)/v1/services?watch=true: \(error) (the line: \(Self.quoted(line))); the server does not answer as the API does"
                        )
                        return false
                    }
                    if event["type"]?.stringValue == "ERROR" {
                        let status = event["object"]?["code"]?.intValue ?? 500
                        if status == 410 {
                            end = .expired
                        } else if status == 503 {
                            end = .dropped(event["object"]?["message"]?.stringValue ?? "")
                        } else {
                            failure = .problem(
                                Problem(
                                    status: status, title: event["object"]?["reason"]?.stringValue ?? "Error",
                                    detail: event["object"]?["message"]?.stringValue ?? "", field: nil, errors: []))
                        }
                        return false
                    }
                    if !onEvent(event) {
                        end = .stopped
                        return false
                    }
                }
                return true
            }
        } catch {
            throw .transport("GET \(settings.server)/v1/services?watch=true: \(error)")
        }
        if response.status == 410 { return .expired }
        if response.status >= 400 { throw .problem(Problem.decode(response.body, status: response.status)) }
        if let failure { throw failure }
        if end == .closed, !pending.allSatisfy({ [0x20, 0x09, 0x0D].contains($0) }) {
            throw .invalidResponse(
                "GET \(settings.server)/v1/services?watch=true: the watch ended inside an event (the line: \(Self.quoted(pending))); the server does not answer as the API does"
            )
        }
        return end
    }

    /// Why a watch event is not one the API sends, thrown as a sentence.
    struct MalformedEvent: Error, CustomStringConvertible {
        var description: String
    }

    /// Checks the shape of one watch event: a `type` of ADDED, MODIFIED, DELETED, BOOKMARK or
    /// ERROR and an `object` that is, for the first three, a service (string `name` and
    /// `namespace`), for BOOKMARK an object with `metadata.resourceVersion`, for ERROR an object.
    static func checkWatchEvent(_ event: JSONValue) throws(MalformedEvent) {
        guard case .object(let members) = event else { throw MalformedEvent(description: "an event that is not a JSON object") }
        guard case .string(let type)? = members["type"] else { throw MalformedEvent(description: "an event without a string type") }
        guard case .object(let object)? = members["object"] else { throw MalformedEvent(description: "an event (\(type)) without an object") }
        switch type {
        case "ADDED", "MODIFIED", "DELETED":
            guard case .string? = object["name"], case .string? = object["namespace"] else {
                throw MalformedEvent(description: "an event (\(type)) whose object is not a service (no string name and namespace)")
            }
        case "BOOKMARK":
            guard case .string? = object["metadata"]?["resourceVersion"] else {
                throw MalformedEvent(description: "a BOOKMARK event without metadata.resourceVersion")
            }
        case "ERROR":
            break
        default:
            throw MalformedEvent(description: "an event of unknown type \"\(type)\" (ADDED, MODIFIED, DELETED, BOOKMARK or ERROR expected)")
        }
    }

    /// Up to 200 bytes of a line, for messages, in JSON string quotes (control characters escaped).
    static func quoted(_ bytes: [UInt8]) -> String {
        var text = String(decoding: bytes.prefix(200), as: UTF8.self)
        if bytes.count > 200 { text += "…" }
        return String(decoding: JSONWriter.bytes(.string(text)), as: UTF8.self)
    }
}
