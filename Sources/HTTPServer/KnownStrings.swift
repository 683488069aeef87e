/// Strings made from libmicrohttpd's C strings on every request, where the usual ones — methods,
/// versions, common field names — come out as the program's own constants: no length scan, UTF-8
/// validation or allocation for them (`String(cString:)` costs some 200 instructions each,
/// measured with callgrind on `GET /v1/services/{namespace}/{name}`).
struct KnownStrings: Sendable {
    private let known: [(bytes: [UInt8], string: String)]

    init(_ strings: [String]) {
        known = strings.map { (Array($0.utf8), $0) }
    }

    static let methods = KnownStrings(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    static let versions = KnownStrings(["HTTP/1.1", "HTTP/1.0"])
    static let fieldNames = KnownStrings([
        "Host", "User-Agent", "Accept", "Authorization", "Content-Type", "Content-Length", "Connection", "Accept-Encoding",
        "If-None-Match", "If-Match", "X-Request-Id", "Transfer-Encoding",
    ])

    /// `String(cString: text)`, one of the known strings when it is one (compared byte for
    /// byte, case included).
    func string(_ text: UnsafePointer<CChar>) -> String {
        for candidate in known where Self.equals(text, candidate.bytes.span) { return candidate.string }
        return String(cString: text)
    }

    private static func equals(_ text: UnsafePointer<CChar>, _ bytes: Span<UInt8>) -> Bool {
        // Stops at the first difference: `text`'s NUL differs from any byte of `bytes`.
        for index in bytes.indices where UInt8(bitPattern: text[index]) != bytes[index] { return false }
        return text[bytes.count] == 0
    }
}
