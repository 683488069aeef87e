import Crypto
import HTTPServer
import RegistryCore

/// Builders for the responses the handlers send.
enum Responses {
    static let jsonType = "application/json"

    static func json(_ status: Int, _ body: [UInt8], etag: String? = nil, location: String? = nil) -> HTTPResponse {
        // Room for the `X-Request-Id` that `RegistryApplication` adds to every response.
        var headers = HTTPHeaders([("Content-Type", jsonType)], reservingCapacity: 4)
        if let etag { headers.add("ETag", etag) }
        if let location { headers.add("Location", location) }
        return HTTPResponse(status: status, headers: headers, body: body)
    }

    /// A write's response with `warnings`: each as a `Warning: 299 - "…"` header (RFC 9111
    /// §5.5, as the Kubernetes API server sends them) and, when there are any, as a `warnings`
    /// list added to the JSON object of the body.
    static func withWarnings(_ response: HTTPResponse, _ warnings: [String]) -> HTTPResponse {
        guard !warnings.isEmpty else { return response }
        var response = response
        for warning in warnings { response.headers.add("Warning", warningValue(warning)) }
        // The body is a stored service document, written by `JSONWriter` without spaces and
        // without a `warnings` member: the list is appended as its last member, byte for byte
        // what parsing and writing it again would give, without parsing a large document.
        let document = response.body
        if document.count > 2, document.first == UInt8(ascii: "{"), document.last == UInt8(ascii: "}") {
            // One copy into a buffer of the final size (the document is shared with the caches:
            // trimming it in place would copy it first, and appending could grow it once more).
            let list = JSONWriter.bytes(.array(warnings.map(JSONValue.string)))
            let member = #","warnings":"#.utf8
            var body: [UInt8] = []
            body.reserveCapacity(document.count + member.count + list.count)
            body.append(contentsOf: document[..<(document.count - 1)])
            body.append(contentsOf: member)
            body.append(contentsOf: list)
            body.append(UInt8(ascii: "}"))
            response.body = body
            return response
        }
        // Anything else is the server's own JSON too; should it not parse, the headers still carry the warnings.
        if case .object(var object)? = try? JSONParser.parse(document) {
            object["warnings"] = .array(warnings.map(JSONValue.string))
            response.body = JSONWriter.bytes(.object(object))
        }
        return response
    }

    /// A `Warning` header value: code 299, agent `-`, the text quoted (quotes and control
    /// characters replaced, so that the header stays one valid quoted-string).
    ///
    /// Byte by byte: the characters replaced are ASCII, and no byte of a multi-byte UTF-8
    /// sequence is below 0x80 (one per warning per answer: an address added to a service of
    /// 10,000 addresses carries one, and a `Character` per scalar cost ~11 µs of it).
    static func warningValue(_ text: String) -> String {
        var bytes: [UInt8] = Array("299 - \"".utf8)
        bytes.reserveCapacity(bytes.count + text.utf8.count + 1)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "'"))
            case UInt8(ascii: "\\"), 0x00..<0x20: bytes.append(UInt8(ascii: " "))
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
        return String(decoding: bytes, as: UTF8.self)
    }

    static func json(_ status: Int, _ value: JSONValue) -> HTTPResponse {
        json(status, JSONWriter.bytes(value))
    }

    /// A strong entity tag from the SHA-256 of `bytes` (its first 128 bits, hex): `"3f9a…"`.
    static func digestETag(_ bytes: [UInt8]) -> String {
        let digest = SHA256.hash(data: bytes)
        return "\"" + digest.prefix(16).map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined() + "\""
    }

    /// 304, with the representation's `ETag` when it has one.
    static func notModified(etag: String?) -> HTTPResponse {
        HTTPResponse(status: 304, headers: HTTPHeaders(etag.map { [("ETag", $0)] } ?? []))
    }

    static func noContent() -> HTTPResponse {
        HTTPResponse(status: 204)
    }

    /// `{"items":[…]}` (plus `continue` when set) from already-encoded items.
    static func list(_ items: [[UInt8]], continueToken: String? = nil) -> [UInt8] {
        var body: [UInt8] = Array(#"{"items":["#.utf8)
        body.reserveCapacity(items.reduce(64) { $0 + $1.count + 1 })
        for (index, item) in items.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body += item
        }
        body.append(UInt8(ascii: "]"))
        if let continueToken {
            body += Array(#","continue":"#.utf8)
            JSONWriter.writeString(continueToken, into: &body)
        }
        body.append(UInt8(ascii: "}"))
        return body
    }
}
