import Crypto
import Foundation
import HTTPServer
import RegistryCore

/// Checks shared by the handlers: media types, bodies, conditional headers, query parameters.
enum RequestChecks {
    /// The media type without parameters, lower-cased (`application/json; charset=utf-8` → `application/json`).
    static func mediaType(_ header: String?) -> String? {
        guard let header else { return nil }
        let type = header.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        return type?.isEmpty == false ? type : nil
    }

    static func requireContentType(_ request: HTTPRequest, _ expected: String) throws(APIError) {
        let header = request.headers["Content-Type"]
        if header == expected { return }  // the usual spelling, without parameters
        let type = mediaType(header)
        guard type == expected else { throw .unsupportedMediaType(got: header, accepted: [expected]) }
    }

    /// The body parsed as JSON after checking its media type.
    static func jsonBody(_ request: HTTPRequest, mediaType: String = "application/json") throws -> JSONValue {
        try requireContentType(request, mediaType)
        guard !request.body.isEmpty else { throw APIError.malformedBody("the request needs a JSON body") }
        return try JSONParser.parse(request.body)
    }

    /// The body parsed as JSON, refusing `null` anywhere (422 naming each field): in the contract
    /// no field of a create, replace, address or push body is nullable, so a field is given
    /// or left out (only a merge patch uses `null`, to remove a member).
    static func jsonBodyWithoutNulls(_ request: HTTPRequest) throws -> JSONValue {
        let body = try jsonBody(request)
        // Paths are built only for a body that has a null somewhere (most have none).
        func containsNull(_ value: JSONValue) -> Bool {
            switch value {
            case .null: true
            case .array(let items): items.contains(where: containsNull)
            case .object(let members): members.contains { containsNull($0.value) }
            default: false
            }
        }
        guard containsNull(body) else { return body }
        var violations: [FieldViolation] = []
        func scan(_ value: JSONValue, _ path: String) {
            switch value {
            case .null:
                violations.append(FieldViolation(path, .wrongType, "must not be null: leave the field out to mean its absence or default"))
            case .array(let items):
                for (index, item) in items.enumerated() { scan(item, "\(path)[\(index)]") }
            case .object(let members):
                for member in members { scan(member.value, path.isEmpty ? member.key : "\(path).\(member.key)") }
            default: break
            }
        }
        scan(body, "")
        if !violations.isEmpty { throw ValidationFailure(violations) }
        return body
    }

    /// What the client asked an address route to answer with, by its `Prefer: return=…`
    /// (RFC 7240 §4.2): `.representation` for the stored service, `.minimal` for the changed
    /// address; nil when it did not ask or gave another value. Only the first `return`
    /// preference counts (RFC 7240 §2: names compare case-insensitively, values exactly);
    /// other preferences, and malformed ones (an unterminated quoted string), are ignored.
    static func returnPreference(_ request: HTTPRequest) -> ReturnPreference? {
        for field in request.headers.values("Prefer") {
            for preference in preferences(field) where preference.name.lowercased() == "return" {
                return preference.value.flatMap(ReturnPreference.init(rawValue:))
            }
        }
        return nil
    }

    /// The preferences of one `Prefer` field value (RFC 7240 §2: `token [BWS "=" BWS word]
    /// *(OWS ";" [OWS parameter])`, comma-separated, `word` a token or a quoted string): each
    /// name with its value, quotes removed and `\`-escapes resolved; parameters are skipped.
    /// Commas and semicolons inside quoted strings separate nothing; an element with an empty
    /// name or an unterminated quoted string is left out.
    static func preferences(_ field: String) -> [(name: String, value: String?)] {
        splitOutsideQuotes(Substring(field), on: ",").compactMap { element in
            // The preference itself: up to its first `;` (its parameters follow).
            guard let head = splitOutsideQuotes(element, on: ";").first else { return nil }
            let parts = head.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, !name.contains("\"") else { return nil }
            guard parts.count == 2 else { return (name, nil) }
            let word = parts[1].trimmingCharacters(in: .whitespaces)
            guard word.hasPrefix("\"") else { return (name, word.isEmpty ? nil : word) }
            // A closed quoted string (an unterminated one was left out by the split), nothing after it.
            guard word.count >= 2, word.hasSuffix("\"") else { return nil }
            var value = ""
            var escaped = false
            for character in word.dropFirst().dropLast() {
                if !escaped && character == "\\" {
                    escaped = true
                } else {
                    value.append(character)
                    escaped = false
                }
            }
            return (name, value.isEmpty ? nil : value)
        }
    }

    /// `text` split at each `separator` outside quoted strings (`"…"`, with `\`-escapes); the
    /// last piece is left out when a quoted string in it is not terminated.
    private static func splitOutsideQuotes(_ text: Substring, on separator: Character) -> [Substring] {
        var pieces: [Substring] = []
        var start = text.startIndex
        var (quoted, escaped) = (false, false)
        for index in text.indices {
            let character = text[index]
            if quoted {
                if escaped {
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    quoted = false
                }
            } else if character == "\"" {
                quoted = true
            } else if character == separator {
                pieces.append(text[start..<index])
                start = text.index(after: index)
            }
        }
        if !quoted { pieces.append(text[start...]) }
        return pieces
    }

    /// `Prefer: return=` values (RFC 7240 §4.2).
    enum ReturnPreference: String {
        case minimal
        case representation
    }

    /// The request fields the API reads whose value is one item, not a list: `Authorization`
    /// (RFC 9110 §11.6.2), `Content-Type` (§8.3), `User-Agent` (§10.1.5) and `X-Request-Id`. RFC
    /// 9110 §5.3: a sender MUST NOT send a field more than once unless its definition allows a
    /// comma-separated list, so a request that does is refused rather than read as its first (or
    /// last) value, which another party on the way may read differently. The list-valued fields
    /// it reads (`Accept`, `If-Match`, `If-None-Match`) may repeat and are combined in order
    /// (`HTTPHeaders.list(_:)`).
    static let singletonFields = ["Authorization", "Content-Type", "User-Agent", "X-Request-Id"]

    /// 400 naming the field when a field of `singletonFields` is sent more than once.
    static func checkSingletonFields(_ request: HTTPRequest) throws(APIError) {
        for name in singletonFields {
            let count = request.headers.count(of: name)
            guard count <= 1 else {
                throw .badRequest("the request has \(count) \(name) headers; \(name) takes one value and may be sent once", field: name)
            }
        }
    }

    /// 400 naming the path when its raw form (`HTTPRequest.rawPath`, before libmicrohttpd decodes
    /// it) would be routed differently once decoded, or by another party on the way:
    /// - a percent-encoded `/` (`%2F`) or `\` (`%5C`): an encoded reserved character is data,
    ///   not a delimiter (RFC 3986 §2.2), yet decoding makes it one (`default%2Fweb` would name
    ///   `default/web`); no namespace, name or address contains either;
    /// - a `.` or `..` segment, written as such or percent-encoded (`%2E%2E`): RFC 3986 §5.2.4
    ///   removes them, so a proxy and the server may see different resources; none is named so.
    /// (A percent-encoded NUL is refused by the transport.)
    static func checkPath(_ request: HTTPRequest) throws(APIError) {
        // Most paths have neither: checked in place, without copying the path.
        guard request.rawPath.containsUTF8Byte(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: ".") }) else { return }
        let raw = Array(request.rawPath.utf8)
        let shown = request.rawPath.count > 200 ? String(request.rawPath.prefix(200)) + "…" : request.rawPath
        for index in raw.indices.dropLast(2) where raw[index] == UInt8(ascii: "%") {
            let escape = String(decoding: raw[(index + 1)...(index + 2)], as: UTF8.self).uppercased()
            guard escape == "2F" || escape == "5C" else { continue }
            throw .badRequest(
                "the path \"\(shown)\" has a percent-encoded \(escape == "2F" ? "\"/\"" : "backslash") (%\(escape)), which is data and"
                    + " not a separator (RFC 3986 §2.2); no namespace, name or address contains one",
                field: "path")
        }
        for segment in raw.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            let decoded = String(decoding: segment, as: UTF8.self).replacingOccurrences(of: "%2E", with: ".")
                .replacingOccurrences(of: "%2e", with: ".")
            guard decoded == "." || decoded == ".." else { continue }
            throw .badRequest(
                "the path \"\(shown)\" has a \"\(decoded)\" segment: RFC 3986 §5.2.4 removes dot segments, so where it leads depends on"
                    + " who reads it; no namespace, name or address is \".\" or \"..\"; send the path without it",
                field: "path")
        }
    }

    /// Entity tags listed in a conditional header (`*` kept as is).
    static func entityTags(_ header: String) -> [String] {
        header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// `text` as a decimal integer written the one way it prints (no sign, no leading zeros, no
    /// spaces: `+1`, `01` and `1.0` are not `1`); nil otherwise.
    static func canonicalInteger(_ text: String) -> Int? {
        guard let value = Int(text), String(value) == text else { return nil }
        return value
    }

    /// The query parameter `name` as a canonical integer in `range` (400 naming it otherwise);
    /// nil when absent. An unbounded range reads "a positive integer" (from 1) in the message.
    static func integerQuery(_ request: HTTPRequest, _ name: String, in range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let text = request.queryValue(name) else { return nil }
        guard let value = canonicalInteger(text), range.contains(value) else {
            let expected =
                range.upperBound == Int.max && range.lowerBound == 1
                ? "a positive integer" : "an integer from \(range.lowerBound) to \(range.upperBound)"
            throw .badRequest("\(name) must be \(expected), not \"\(text)\"", field: name)
        }
        return value
    }

    /// `If-Match` / `If-None-Match` on a write: 412 when the current state does not satisfy them.
    static func checkWritePreconditions(_ request: HTTPRequest, current: ServiceRecord?) throws(APIError) {
        if let ifMatch = request.headers.list("If-Match") {
            let tags = entityTags(ifMatch)
            guard let current else {
                throw .preconditionFailed("If-Match is set but the service does not exist", header: "If-Match")
            }
            guard tags.contains("*") || strongMatch(tags, current.etag) else {
                throw .preconditionFailed(
                    "If-Match \(ifMatch) does not match the current ETag \(current.etag); fetch the service again", header: "If-Match")
            }
        }
        if let ifNoneMatch = request.headers.list("If-None-Match"), let current {
            let tags = entityTags(ifNoneMatch).map(weakened)
            if tags.contains("*") || tags.contains(weakened(current.etag)) {
                throw .preconditionFailed("If-None-Match \(ifNoneMatch) matches the current service (ETag \(current.etag))", header: "If-None-Match")
            }
        }
    }

    /// The preconditions of a read (`GET`/`HEAD`) that would otherwise answer 2xx with `etag`
    /// (nil: the representation has none), in RFC 9110 §13.2.2 order:
    /// 1. `If-Match` (§13.1.1): `*` is true (there is a representation); a list of entity tags is
    ///    true only when one equals `etag` by strong comparison (§8.8.3.2: a weak or missing ETag
    ///    never matches). False: 412.
    /// 2. `If-None-Match` (§13.1.2): `*`, or a tag equal to `etag` by weak comparison, is false:
    ///    the answer is 304 (this returns true).
    ///
    /// No resource here has a modification date, so `If-Unmodified-Since` and
    /// `If-Modified-Since` are ignored (§13.1.3, §13.1.4).
    static func readPreconditions(_ request: HTTPRequest, etag: String?) throws(APIError) -> Bool {
        if let ifMatch = request.headers.list("If-Match") {
            let tags = entityTags(ifMatch)
            guard tags.contains("*") || etag.map({ strongMatch(tags, $0) }) == true else {
                let current =
                    switch etag {
                    case nil: "this resource has no entity tag"
                    case let tag? where tag.hasPrefix("W/"): "the current entity tag \(tag) is weak and never matches"
                    case let tag?: "the current entity tag is \(tag)"
                    }
                throw .preconditionFailed("If-Match \(ifMatch) does not match (strong comparison): \(current)", header: "If-Match")
            }
        }
        guard let header = request.headers.list("If-None-Match") else { return false }
        let tags = entityTags(header).map(weakened)
        return tags.contains("*") || etag.map { tags.contains(weakened($0)) } == true
    }

    /// The preconditions of a write whose target has no entity tag of its own (a collection, a
    /// processing resource: `POST /v1/services`, `/v1/import`, `/v1/push`, `…/push`), before its
    /// content is processed. `hasRepresentation`: whether the target can be read (`GET` on the
    /// same path). `If-Match` is true only for `*` on a target with a representation: a
    /// collection's entity tag (if any) is weak and never matches strongly (RFC 9110 §13.1.1);
    /// `If-None-Match: *` is false on a target with a representation (§13.1.2). False: 412.
    static func checkPreconditionsWithoutEntity(_ request: HTTPRequest, hasRepresentation: Bool) throws(APIError) {
        if let ifMatch = request.headers.list("If-Match"), !(hasRepresentation && entityTags(ifMatch).contains("*")) {
            throw .preconditionFailed(
                "If-Match \(ifMatch) does not match: \(request.rawPath) has no strong entity tag"
                    + (hasRepresentation ? " (only If-Match: * matches it)" : " and no representation"), header: "If-Match")
        }
        if hasRepresentation, let ifNoneMatch = request.headers.list("If-None-Match"), entityTags(ifNoneMatch).contains("*") {
            throw .preconditionFailed("If-None-Match * does not hold: \(request.rawPath) exists", header: "If-None-Match")
        }
    }

    /// Whether `tags` holds `etag` by strong comparison (RFC 9110 §8.8.3.2: both strong, equal).
    private static func strongMatch(_ tags: [String], _ etag: String) -> Bool {
        !etag.hasPrefix("W/") && tags.contains(etag)
    }

    private static func weakened(_ tag: String) -> String {
        tag.hasPrefix("W/") ? String(tag.dropFirst(2)) : tag
    }

    /// Query parameters whose empty value means something (as on the Kubernetes API server): an
    /// empty `labelSelector` selects everything, an empty `continue` asks for the first page.
    static let emptyValueAllowed: Set<String> = ["labelSelector", "continue"]

    /// 400 naming the parameter for one the route does not define (typos are errors, not
    /// silently ignored), one given more than once (no parameter of this API is a list:
    /// `?port=8080&port=8081` is not read as either), and one given without a value (`?namespace`
    /// or `?namespace=`, except where an empty value means something: `emptyValueAllowed`).
    /// The 400's detail for a `continue` that does not page the list asked for. Tokens are not
    /// secrets (like the API server's, they are the position in the list and its filters):
    /// one that is malformed or belongs to another list, service or filters is refused.
    static let invalidContinueToken = "continue token is not a valid one for this list (malformed, or from another list or other filters)"

    /// `text` cut to its first 64 characters, with `…` when it was longer.
    static func shortened(_ text: String) -> String {
        text.count > 64 ? text.prefix(64) + "…" : text
    }

    static func checkQuery(_ request: HTTPRequest, allowed: Set<String>) throws(APIError) {
        guard !request.query.isEmpty else { return }
        let unknown = Set(request.query.map(\.name)).subtracting(allowed).sorted()
        guard unknown.isEmpty else {
            let known = allowed.isEmpty ? "this route takes none" : "known: \(allowed.sorted().joined(separator: ", "))"
            // Names as sent can be any length: each is cut, and at most five are listed, so that
            // the answer stays small whatever the query.
            var listed = unknown.prefix(5).map(Self.shortened).joined(separator: ", ")
            if unknown.count > 5 { listed += " and \(unknown.count - 5) more" }
            throw .badRequest(
                "unknown query parameter\(unknown.count == 1 ? "" : "s") \(listed) (\(known))", field: Self.shortened(unknown[0]))
        }
        var seen: Set<String> = []
        for (name, value) in request.query {
            guard seen.insert(name).inserted else {
                let count = request.query.filter { $0.name == name }.count
                throw .badRequest("query parameter \(Self.shortened(name)) is given \(count) times; it takes one value", field: name)
            }
            if value == nil || (value == "" && !emptyValueAllowed.contains(name)) {
                throw .badRequest("query parameter \(Self.shortened(name)) needs a value (\(name)=…)", field: name)
            }
        }
    }
}

/// Opaque pagination tokens: base64url of `{"l": list, "q": filters digest, "p": position}`.
///
/// A token names a position in the list it came from: `list` is the route's list and the
/// filters are what select its items (the namespace filter and label selector, the service of a
/// history, the audit log's filters). A token given to another list, or with other filters, is
/// refused (400 naming `continue`), as the Kubernetes API server refuses a continue key outside
/// the listed prefix; `limit` may change from page to page. The position only says where the
/// next page starts: what a page holds is still filtered by the caller's rights.
enum ContinueToken {
    enum List: String, Sendable {
        case services, history, audit
    }

    /// The token for the page after `position` (a JSON value the list decodes again).
    static func encode(_ list: List, filters: [String?], position: JSONValue) -> String {
        let json = JSONWriter.bytes(
            .object(JSONObject([("l", .string(list.rawValue)), ("q", .string(digest(filters))), ("p", position)])))
        return Data(json).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The position a token names, when it was issued for `list` with the same `filters`.
    /// - Throws: `APIError.badRequest` naming `continue`: not a token of this server, or one of
    ///   another list or other filters.
    static func decode(_ token: String, list: List, filters: [String?]) throws(APIError) -> JSONValue {
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard token.utf8.count <= 4_096, let data = Data(base64Encoded: base64), let object = try? JSONParser.parse(Array(data)),
            let issuedFor = object["l"]?.stringValue, let query = object["q"]?.stringValue, let position = object["p"]
        else {
            throw .badRequest(RequestChecks.invalidContinueToken, field: "continue")
        }
        guard issuedFor == list.rawValue, query == digest(filters) else {
            throw .badRequest(
                "continue token was issued for another list or other filters; list again without continue, or with the filters it came with",
                field: "continue")
        }
        return position
    }

    /// The first 16 hex digits of the SHA-256 of the filters (absent ones told apart from empty).
    private static func digest(_ filters: [String?]) -> String {
        var bytes: [UInt8] = []
        for filter in filters {
            if let filter {
                bytes += [1] + Array(filter.utf8) + [0]
            } else {
                bytes.append(2)
            }
        }
        return SHA256.hash(data: bytes).prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}
