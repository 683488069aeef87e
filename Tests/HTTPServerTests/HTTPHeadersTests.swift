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

    /// `count(of:)` counts what `values(_:)` returns, case-insensitively, without the copies.
    @Test func countsFieldsOfAName() {
        let headers = HTTPHeaders([("X-Request-Id", "a"), ("x-request-id", "b"), ("Host", "h")])
        #expect(headers.count(of: "X-REQUEST-ID") == 2 && headers.values("X-REQUEST-ID").count == 2)
        #expect(headers.count(of: "Host") == 1 && headers.count(of: "Accept") == 0)
    }
}
