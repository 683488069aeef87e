import Foundation
import TestSupport
import Testing

/// Issue 14: the address routes on a large service (validated, sorted and encoded only as far as
/// the one address needs) answer, store and record exactly what a full `PUT` of the same
/// document gives: the same status, revision, entity tag form, served bytes (uid, name and times
/// aside, which differ between two services), warnings and history.
@Suite struct LargeAddressWritesTests {
    let server: TestServer
    let client: RawHTTPClient

    init() throws {
        server = try TestServer()
        client = try server.client()
    }

    /// `document` of service `name` with the fields that differ between the two services made equal.
    private static func comparable(_ bytes: [UInt8], uid: String, name: String, timestamps: [String]) -> String {
        var text = String(decoding: bytes, as: UTF8.self)
        text = text.replacingOccurrences(of: uid, with: "UID").replacingOccurrences(of: "\"name\":\"\(name)\"", with: "\"name\":\"NAME\"")
            .replacingOccurrences(of: "/\(name)\"", with: "/NAME\"")
        for timestamp in timestamps { text = text.replacingOccurrences(of: timestamp, with: "TIME") }
        return text
    }

    private static let timestamp = try! NSRegularExpression(pattern: #"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ"#)

    private static func timestamps(_ bytes: [UInt8]) -> [String] {
        let text = String(decoding: bytes, as: UTF8.self)
        return Set(
            timestamp.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
                Range($0.range, in: text).map { String(text[$0]) }
            }
        ).sorted()
    }

    @Test func addressRoutesOnALargeServiceEqualAFullReplace() throws {
        let addresses = (0..<1_001).map { #"{"ip":"10.\#($0 / 250 % 250).\#($0 % 250 + 1).7"}"# }.joined(separator: ",")
        for name in ["routes", "put"] {
            let body = #"{"name":"\#(name)","labels":{"app":"x"},"ports":[{"port":80}],"addresses":[\#(addresses)]}"#
            #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        }
        let uids = try ["routes", "put"].map { name in try #require(try client.request("GET", "/v1/services/default/\(name)").json?["uid"] as? String)
        }
        for step in 0..<6 {
            // The whole service in the answer, as asked (RFC 7240).
            let whole = ["Prefer": "return=representation"]
            let write =
                step % 3 == 2
                ? try client.request("DELETE", "/v1/services/default/routes/addresses/10.\(step % 4).\(step + 1).7", headers: whole)
                : try client.request(
                    "POST", "/v1/services/default/routes/addresses", headers: whole, json: #"{"ip":"10.\#(step).\#(step).\#(step + 200)","zone":"z"}"#
                )
            #expect(write.header("Preference-Applied") == "return=representation")
            try #require(write.status == 201 || write.status == 200, "\(write.status) \(write.text)")
            // The same document, sent whole to the other service.
            var object = try #require(write.json)
            for field in ["uid", "revision", "createdAt", "updatedAt", "warnings"] { object[field] = nil }
            object["name"] = "put"
            let put = try client.request("PUT", "/v1/services/default/put", body: try JSONSerialization.data(withJSONObject: object).map { $0 })
            try #require(put.status == 200, "\(put.text)")
            #expect(put.json?["revision"] as? Int == write.json?["revision"] as? Int)
            #expect(put.header("ETag")?.hasPrefix("\"\(step + 2)-") == true && write.header("ETag")?.hasPrefix("\"\(step + 2)-") == true)
            // The address routes' answers carry the write warnings (here: more than 1,000
            // addresses in one Endpoints), as a replace's does.
            let warnings = [put, write].map {
                $0.headers.filter { $0.name == "Warning" }.map { $0.value.replacingOccurrences(of: "/put ", with: "/routes ") }
            }
            #expect(warnings[1] == warnings[0] && !warnings[0].isEmpty)
            let served = try ["routes", "put"].map { name in try client.request("GET", "/v1/services/default/\(name)").body }
            var answered = try #require(write.json)
            answered["warnings"] = nil
            #expect(
                NSDictionary(dictionary: answered)
                    == NSDictionary(dictionary: try #require(try JSONSerialization.jsonObject(with: Data(served[0])) as? [String: Any])))
            let times = Self.timestamps(served[0]) + Self.timestamps(served[1])
            #expect(
                Self.comparable(served[0], uid: uids[0], name: "routes", timestamps: times)
                    == Self.comparable(served[1], uid: uids[1], name: "put", timestamps: times))
        }
        let histories = try ["routes", "put"].map { name in try client.request("GET", "/v1/services/default/\(name)/history").body }
        let times = Self.timestamps(histories[0]) + Self.timestamps(histories[1])
        let comparable = [
            Self.comparable(histories[0], uid: uids[0], name: "routes", timestamps: times),
            Self.comparable(histories[1], uid: uids[1], name: "put", timestamps: times),
        ]
        // The actions (addAddress, removeAddress against replaceService) and request ids differ; all else is equal.
        let actions = try NSRegularExpression(pattern: #""(action|requestId)":"[^"]*""#)
        let stripped = comparable.map { actions.stringByReplacingMatches(in: $0, range: NSRange($0.startIndex..., in: $0), withTemplate: "") }
        #expect(stripped[0] == stripped[1])
        #expect(try client.request("GET", "/v1/services/default/routes/history").json?["items"].map { ($0 as? [Any])?.count } == 7)
    }
}
