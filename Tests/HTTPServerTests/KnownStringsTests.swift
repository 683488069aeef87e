import Testing

@testable import HTTPServer

/// `KnownStrings.string(_:)` reads a C string as `String(cString:)` does, whether or not it is
/// one of the known ones — a prefix, an extension or another case of a known one included.
@Suite struct KnownStringsTests {
    @Test(arguments: [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "", "G", "GE", "GETX", "get", "Get", "PUTS", "CONNECT", "HTTP/1.1",
        "HTTP/1.0", "HTTP/1", "HTTP/1.10", "HTTP/2.0", "Host", "host", "Hos", "Hostname", "User-Agent", "X-Request-Id", "X-Request-Idx",
        "Transfer-Encoding", "é", "GET\u{7F}",
    ])
    func readsAsStringDoes(_ text: String) {
        for known in [KnownStrings.methods, KnownStrings.versions, KnownStrings.fieldNames] {
            text.withCString { pointer in
                #expect(known.string(pointer) == String(cString: pointer))
            }
        }
    }
}
