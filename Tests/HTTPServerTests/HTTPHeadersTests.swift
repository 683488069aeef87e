import HTTPServer
import Testing

/// Field names compare case-insensitively in ASCII only (RFC 9110 §5.1).
@Suite struct HTTPHeadersTests {
    @Test func namesCompareCaseInsensitivelyInASCII() {
        let headers = HTTPHeaders([("content-TYPE", "application/json"), ("X-Request-Id", "a"), ("x-request-id", "b"), ("Ä-x", "1")])
        #expect(headers["Content-Type"] == "application/json")
        #expect(headers["CONTENT-type"] == "application/json")
        #expect(headers["X-REQUEST-ID"] == "a")
        #expect(headers.values("x-Request-ID") == ["a", "b"])
        #expect(headers["Content-Typf"] == nil)
        #expect(headers["Content-Type "] == nil)
        // `@` and `` ` `` differ only in the bit that case folding flips: they are not letters.
        #expect(HTTPHeaders([("a@b", "1")])["a`b"] == nil)
        #expect(headers["ä-x"] == nil)
        #expect(headers["Ä-x"] == "1")
    }
}
