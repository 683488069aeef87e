/// The checks made on the request line and header section before a request is handed on: the
/// places where libmicrohttpd 0.9.75 is more tolerant than RFC 9112 allows, and where tolerance
/// lets a server and an intermediary disagree about where a request starts or ends
/// ("request smuggling", RFC 9112 §11.2) or what it names.
enum RequestFraming {
    /// Where the request target says the resource is (RFC 9112 §3.2).
    enum Target: Equatable {
        /// `/path?query`: the path libmicrohttpd decoded is used.
        case origin
        /// `http://authority/path?query`: the path, still percent-encoded, without the query.
        case absolute(encodedPath: String)
        /// `*` (only meaningful for OPTIONS).
        case asterisk
    }

    /// Classifies the raw request target, refusing control characters, spaces, a percent-encoded
    /// NUL (which libmicrohttpd decodes into a C string, silently truncating the path or a query
    /// value) and forms HTTP/1.1 does not define.
    static func target(_ raw: [UInt8]) -> Result<Target, HTTPRejection> {
        guard !raw.isEmpty else { return .failure(.malformed("the request line has no target")) }
        // One pass over the target, read in place, for both (the usual one has neither): a space
        // or control character, and, RFC 3986 §2, a byte that is not ASCII (sent raw it would
        // reach the path as U+FFFD, so two different targets would name the same resource); the
        // first `%00` is noted on the way.
        let bytes = raw.span
        var nulEscape: Int?
        for index in bytes.indices {
            let byte = bytes[index]
            if byte <= 0x20 || byte >= 0x7F {
                return .failure(
                    .malformed(
                        byte >= 0x80
                            ? "the request target contains a byte that is not ASCII; percent-encode it"
                            : "the request target contains a space or a control character"))
            }
            if byte == UInt8(ascii: "%"), nulEscape == nil, index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "0"),
                bytes[index + 2] == UInt8(ascii: "0")
            {
                nulEscape = index
            }
        }
        if let index = nulEscape {
            // In the query: the parameter it is in is named (its name as sent, decoded).
            guard let query = raw.firstIndex(of: UInt8(ascii: "?")), query < index else {
                return .failure(.malformed("the request target contains a percent-encoded NUL (%00)"))
            }
            let start = raw[..<index].lastIndex(where: { $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "?") }).map { $0 + 1 } ?? index
            let pair = raw[start...].prefix { $0 != UInt8(ascii: "&") }
            let name = String(
                decoding: PercentEncoding.decodedBytes(String(decoding: pair.prefix { $0 != UInt8(ascii: "=") }, as: UTF8.self)), as: UTF8.self)
            return .failure(
                .malformed("the query parameter \"\(printable(name))\" contains a percent-encoded NUL (%00)", field: printable(name)))
        }
        if raw.first == UInt8(ascii: "/") { return .success(.origin) }
        if raw == [UInt8(ascii: "*")] { return .success(.asterisk) }
        let text = String(decoding: raw, as: UTF8.self)
        let lowered = text.lowercased()
        for scheme in ["http://", "https://"] where lowered.hasPrefix(scheme) {
            let rest = text.dropFirst(scheme.count)
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            guard authorityEnd > rest.startIndex else { return .failure(.malformed("the absolute-form target has no host")) }
            // RFC 3986 §3.2: userinfo, host (a name, an IPv4 address or a bracketed IP literal)
            // and port are made of unreserved characters, percent-escapes, sub-delimiters, `:`,
            // one `@` after the userinfo, `[` and `]`; anything else (`"`, `\\`, `<`, `{`…, a `%`
            // not starting an escape, a second `@`) is not an authority.
            let authority = Array(rest[..<authorityEnd].utf8)
            guard authority.allSatisfy(isAuthorityCharacter), authority.count(where: { $0 == UInt8(ascii: "@") }) <= 1,
                authority.indices.allSatisfy({ authority[$0] != UInt8(ascii: "%") || PercentEncoding.escapedByte(authority, at: $0) != nil })
            else {
                return .failure(.malformed("the absolute-form target's authority contains a character a URI does not allow there"))
            }
            return .success(.absolute(encodedPath: pathPart(of: raw)))
        }
        return .failure(.malformed("the request target must be a path starting with / or an absolute http(s) URI"))
    }

    private static func isAuthorityCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"), UInt8(ascii: "!"),
            UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"),
            UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"),
            UInt8(ascii: "["), UInt8(ascii: "]"):
            true
        default: false
        }
    }

    /// The path of a raw request target as sent, still percent-encoded, without the query: an
    /// absolute-form target's scheme and authority are left out (also when the target is
    /// refused, so that a logged path is always a path); any other target is kept up to its `?`.
    ///
    /// Any scheme counts (RFC 3986 §3.1: a letter, then letters, digits, `+`, `-` or `.`, then
    /// `://`): `ftp://host/x` is refused, and logged as `/x`.
    static func pathPart(of raw: [UInt8]) -> String {
        String(decoding: pathBytes(of: raw), as: UTF8.self)
    }

    /// The bytes of `pathPart(of:)`, found in place.
    static func pathBytes(of raw: [UInt8]) -> ArraySlice<UInt8> {
        let target = raw.prefix { $0 != UInt8(ascii: "?") }
        // The usual origin form: no scheme to look for.
        if target.first == UInt8(ascii: "/") { return target }
        let scheme = target.prefix { isSchemeCharacter($0) }
        if let first = scheme.first, isLetter(first), target.dropFirst(scheme.count).starts(with: "://".utf8) {
            let rest = target.dropFirst(scheme.count + 3)
            let path = rest.drop { $0 != UInt8(ascii: "/") }
            return path.isEmpty ? slash[...] : path
        }
        return target
    }

    private static let slash: [UInt8] = [UInt8(ascii: "/")]

    /// Whether `bytes` are `text`'s UTF-8, compared in place.
    static func bytes(_ bytes: ArraySlice<UInt8>, equal text: String) -> Bool {
        let (left, right) = (bytes.span, text.utf8Span.span)
        guard left.count == right.count else { return false }
        for index in left.indices where left[index] != right[index] { return false }
        return true
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
    }

    private static func isSchemeCharacter(_ byte: UInt8) -> Bool {
        isLetter(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: ".")
    }

    /// Decodes `%XX` escapes of a path (an invalid escape stays as written).
    static func percentDecoded(_ path: String) -> String {
        String(decoding: PercentEncoding.decodedBytes(path), as: UTF8.self)
    }

    /// What the header section says about the body.
    enum Body: Equatable {
        case none
        case length(Int)
        case chunked
    }

    /// Checks the header fields (RFC 9112 §3.2, §5, §6): `Host` exactly once on HTTP/1.1 (at most
    /// once on 1.0), field names are tokens, values hold no control characters, at most one
    /// `Content-Length` made of digits, never together with `Transfer-Encoding`, and
    /// `Transfer-Encoding` only as exactly `chunked` (see `transferCoding(_:)`).
    static func body(version: String, headers: HTTPHeaders) -> Result<Body, HTTPRejection> {
        // The framing fields, counted in the same pass (no array per field name).
        var hostCount = 0
        var lengthCount = 0
        var firstLength: String?
        var codingCount = 0
        for (name, value) in headers {
            guard !name.isEmpty, name.utf8BytesAll(isTokenCharacter) else {
                return .failure(.malformed("the header name \"\(printable(name))\" is not a token", field: printable(name)))
            }
            if !value.utf8BytesAll({ ($0 >= 0x20 || $0 == 0x09) && $0 != 0x7F }) {
                return .failure(.malformed("the value of header \(name) contains a control character", field: name))
            }
            // Some proxies turn `_` into `-` in field names (CGI's HTTP_X_Y mapping) and others
            // drop such fields: a `Transfer_Encoding` or `Content_Length` that this server
            // ignores could frame the request for a proxy in front of it, so the two would not
            // agree on where it ends. The framing fields spelled with `_` are refused.
            if !name.utf8BytesAll({ $0 != UInt8(ascii: "_") }), let field = Self.underscoreSpelled(name) {
                return .failure(
                    .malformed("the header name \"\(printable(name))\" spells \(field) with an underscore; send \(field)", field: printable(name)))
            }
            if name.caseInsensitiveEquals("Host") {
                hostCount += 1
            } else if name.caseInsensitiveEquals("Content-Length") {
                lengthCount += 1
                if firstLength == nil { firstLength = value }
            } else if name.caseInsensitiveEquals("Transfer-Encoding") {
                codingCount += 1
            }
        }
        if hostCount > 1 { return .failure(.malformed("the request has \(hostCount) Host headers; exactly one is allowed", field: "Host")) }
        if version == "HTTP/1.1" && hostCount == 0 { return .failure(.malformed("an HTTP/1.1 request needs a Host header", field: "Host")) }
        if codingCount > 0 {
            if lengthCount > 0 {
                return .failure(.malformed("the request has both Content-Length and Transfer-Encoding; send only one", field: "Transfer-Encoding"))
            }
            if version != "HTTP/1.1" {
                return .failure(.malformed("Transfer-Encoding is not defined for \(version) requests", field: "Transfer-Encoding"))
            }
            return transferCoding(headers.values("Transfer-Encoding"))
        }
        guard let length = firstLength else { return .success(.none) }
        if lengthCount > 1 {
            return .failure(.malformed("the request has \(lengthCount) Content-Length headers; exactly one is allowed", field: "Content-Length"))
        }
        let digits = length.trimmingWhitespace
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return .failure(.malformed("Content-Length \"\(printable(length))\" is not a decimal number of bytes", field: "Content-Length"))
        }
        guard let value = Int(digits) else { return .failure(.malformed("Content-Length \(digits) is too large", field: "Content-Length")) }
        return .success(value == 0 ? .none : .length(value))
    }

    /// The framing of an HTTP/1.1 request with `Transfer-Encoding` fields (and no `Content-Length`).
    ///
    /// libmicrohttpd 0.9.75 decides the framing itself: the body is chunked only when the first
    /// `Transfer-Encoding` field's value is exactly `chunked` (compared ignoring ASCII case; it
    /// strips the whitespace before a value, not after it); with any other value it reads the
    /// body until the connection closes, so the request never ends and nothing pipelined after it
    /// is served. A proxy may read such a value as chunked all the same: whitespace around a value
    /// is not part of it (RFC 9110 §5.5), the codings are a list (RFC 9110 §5.6.1) split over any
    /// number of fields, and chunked is the last of them (RFC 9112 §6.1). So one field whose value
    /// is exactly `chunked` is accepted, and before any body byte is read:
    /// - every other value that names `chunked` (surrounding whitespace, several fields, other
    ///   codings in the list, parameters, empty list elements), or that is not a list of codings
    ///   at all, is refused 400: the body's length cannot be determined reliably (RFC 9112 §6.3);
    /// - a list of other codings only (`gzip`) gets 501 (RFC 9112 §6.1: a coding the server does
    ///   not understand).
    static func transferCoding(_ fields: [String]) -> Result<Body, HTTPRejection> {
        if fields.count == 1, asciiLowercased(fields[0]) == "chunked" { return .success(.chunked) }
        let shown = printable(fields.joined(separator: ", "))
        let elements = fields.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.map { String($0).trimmingWhitespace }
        let names = elements.map { asciiLowercased(String($0.prefix { $0 != ";" }).trimmingWhitespace) }
        if names.contains("chunked") {
            return .failure(
                .malformed(
                    "Transfer-Encoding \"\(shown)\" is not exactly \"chunked\" in one header (no other coding, parameter or surrounding"
                        + " whitespace), so where the body ends is ambiguous; send Transfer-Encoding: chunked or Content-Length"))
        }
        guard elements.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(isTokenCharacter) }) else {
            return .failure(
                .malformed("Transfer-Encoding \"\(shown)\" is not a list of transfer codings, so where the body ends is ambiguous"))
        }
        return .failure(.unsupportedTransferCoding(printable(elements.joined(separator: ", "))))
    }

    /// `text` with ASCII letters lower-cased and every other byte kept (as libmicrohttpd compares
    /// names and `chunked`; Unicode case mapping would turn the Kelvin sign into `k`).
    static func asciiLowercased(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// The framing field (`Transfer-Encoding`, `Content-Length`, `Content-Type`) that `name`
    /// spells with `_` for `-` (compared ignoring ASCII case), or nil.
    static func underscoreSpelled(_ name: String) -> String? {
        let dashed = asciiLowercased(String(decoding: name.utf8.map { $0 == UInt8(ascii: "_") ? UInt8(ascii: "-") : $0 }, as: UTF8.self))
        return ["Transfer-Encoding", "Content-Length", "Content-Type"].first { asciiLowercased($0) == dashed }
    }

    /// RFC 9110 §5.6.2 tchar.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// The request method, which RFC 9110 §9.1 makes a token: nil when it is one, else why not
    /// (a method such as `actor=admin` or one with bytes that are not ASCII would be logged as if
    /// it were fields of the line).
    static func method(_ method: String) -> HTTPRejection? {
        guard method.isEmpty || !method.utf8BytesAll(isTokenCharacter) else { return nil }
        return .malformed("the method \"\(printable(method))\" is not a token")
    }

    /// A value safe to quote in a message: control characters and non-ASCII as `\xNN`, at most 64 bytes.
    static func printable(_ text: String) -> String {
        var result = ""
        for byte in text.utf8.prefix(64) {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") && byte != UInt8(ascii: "\"") {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                result += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return text.utf8.count > 64 ? result + "…" : result
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}

/// RFC 3986 §2.1 percent-encoding.
public enum PercentEncoding {
    /// The bytes `text` stands for once its `%XX` escapes are decoded (an invalid escape stays
    /// as written), every byte kept: a `%00` or a byte that is not UTF-8 included.
    public static func decodedBytes(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if let byte = escapedByte(bytes, at: index) {
                decoded.append(byte)
                index += 3
            } else {
                decoded.append(bytes[index])
                index += 1
            }
        }
        return decoded
    }

    /// The byte a valid `%XX` escape at `index` of `bytes` stands for; nil when there is none.
    public static func escapedByte(_ bytes: [UInt8], at index: Int) -> UInt8? {
        guard bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hexValue(bytes[index + 1]),
            let low = hexValue(bytes[index + 2])
        else { return nil }
        return high << 4 | low
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
