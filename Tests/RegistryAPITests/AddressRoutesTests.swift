import Foundation
import TestSupport
import Testing

@Suite struct AddressRoutesTests {
    let server: TestServer
    let client: RawHTTPClient

    init() throws {
        server = try TestServer()
        client = try server.client()
        let body = #"{"name":"rgw","ports":[{"port":80}],"addresses":[{"ip":"192.168.7.50","port":8080},{"ip":"192.168.7.50","port":8081}]}"#
        _ = try client.request("POST", "/v1/services", json: body)
    }

    /// The service's addresses; fails the test when the route does not answer a list.
    private func addresses() throws -> [[String: Any]] {
        let response = try client.request("GET", "/v1/services/default/rgw/addresses")
        try #require(response.status == 200, "\(response.status) \(response.text)")
        return try #require(response.json?["items"] as? [[String: Any]], "\(response.text)")
    }

    @Test func addsAnAddressAtomicallyAndIdempotently() throws {
        let added = try client.request("POST", "/v1/services/default/rgw/addresses", json: #"{"ip":"192.168.7.51","port":8080}"#)
        #expect(added.status == 201)
        #expect(added.json?["revision"] as? Int == 2)
        let again = try client.request("POST", "/v1/services/default/rgw/addresses", json: #"{"ip":"192.168.7.51","port":8080,"ready":true}"#)
        #expect(again.status == 200)
        #expect(again.json?["revision"] as? Int == 2)
        #expect(try addresses().count == 3)
        let conflicting = try client.request("POST", "/v1/services/default/rgw/addresses", json: #"{"ip":"192.168.7.51","port":8080,"ready":false}"#)
        #expect(conflicting.status == 409)
    }

    /// The answer names the address added or removed and the service's new revision (its size
    /// does not grow with the service); `Prefer: return=representation` (RFC 7240) asks for the
    /// whole service instead, `return=minimal` for the default, both acknowledged.
    @Test func answersTheChangedAddressOrTheWholeServiceAsPreferred() throws {
        let added = try client.request("POST", "/v1/services/default/rgw/addresses", json: #"{"ip":"192.168.7.51","port":8080}"#)
        #expect(added.status == 201)
        let body = try #require(added.json)
        #expect(Set(body.keys) == ["namespace", "name", "uid", "revision", "updatedAt", "added"])
        #expect(body["revision"] as? Int == 2 && body["name"] as? String == "rgw" && body["namespace"] as? String == "default")
        #expect(NSDictionary(dictionary: try #require(body["added"] as? [String: Any])) == ["ip": "192.168.7.51", "port": 8080, "ready": true])
        #expect(added.header("Preference-Applied") == nil)
        let served = try client.request("GET", "/v1/services/default/rgw")
        #expect(added.header("ETag") == served.header("ETag") && body["uid"] as? String == served.json?["uid"] as? String)
        // Stored form: a port equal to the target port is left out.
        let minimal = try client.request(
            "POST", "/v1/services/default/rgw/addresses", headers: ["Prefer": "return=minimal"], json: #"{"ip":"192.168.7.60","port":80}"#)
        #expect(minimal.status == 201 && minimal.header("Preference-Applied") == "return=minimal")
        #expect(NSDictionary(dictionary: try #require(minimal.json?["added"] as? [String: Any])) == ["ip": "192.168.7.60", "ready": true])
        let whole = try client.request(
            "POST", "/v1/services/default/rgw/addresses", headers: ["Prefer": #"respond-async, return="representation"; x=1"#],
            json: #"{"ip":"192.168.7.61"}"#)
        #expect(whole.status == 201 && whole.header("Preference-Applied") == "return=representation")
        #expect(whole.body == (try client.request("GET", "/v1/services/default/rgw")).body)
        #expect((whole.json?["addresses"] as? [Any])?.count == 5)
        let removed = try client.request("DELETE", "/v1/services/default/rgw/addresses/192.168.7.51")
        #expect(removed.status == 200 && removed.json?["revision"] as? Int == 5)
        #expect(
            NSDictionary(dictionary: try #require(removed.json?["removed"] as? [String: Any])) == ["ip": "192.168.7.51", "port": 8080, "ready": true])
        #expect(removed.header("ETag") == (try client.request("GET", "/v1/services/default/rgw")).header("ETag"))
        // Only the first `return` preference counts (RFC 7240 §2): an unknown one means the default.
        let unknownFirst = try client.request(
            "POST", "/v1/services/default/rgw/addresses", headers: ["Prefer": "return=everything, return=representation"],
            json: #"{"ip":"192.168.7.62"}"#)
        #expect(unknownFirst.status == 201 && unknownFirst.header("Preference-Applied") == nil && unknownFirst.json?["added"] != nil)
        let removedWhole = try client.request(
            "DELETE", "/v1/services/default/rgw/addresses/192.168.7.60", headers: ["Prefer": "return=representation"])
        #expect((removedWhole.json?["addresses"] as? [Any])?.count == 4 && removedWhole.json?["revision"] as? Int == 7)
    }

    /// The audit log records what the route answered: 201 for an address added, 200 for one
    /// already there.
    @Test func auditsAddsWithTheStatusAnswered() throws {
        let body = #"{"ip":"192.168.7.70"}"#
        #expect(try client.request("POST", "/v1/services/default/rgw/addresses", json: body).status == 201)
        #expect(try client.request("POST", "/v1/services/default/rgw/addresses", json: body).status == 200)
        let log = try client.request("GET", "/v1/audit?action=addAddress&limit=100")
        let statuses = ((log.json?["items"] as? [[String: Any]]) ?? []).compactMap { $0["status"] as? Int }
        #expect(statuses.sorted() == [200, 201], "\(log.text)")
    }

    /// A refused value is not echoed back whole (nor into the audit log); a port with a leading
    /// zero is no port.
    @Test func refusesWithoutEchoingHugeValues() throws {
        let huge = String(repeating: "z", count: 200_000)
        let refused = try client.request("POST", "/v1/services/default/rgw/addresses", json: #"{"ip":"192.168.7.71","hostname":"\#(huge)"}"#)
        #expect(refused.status == 422)
        #expect(refused.body.count < 8_000, "\(refused.body.count) bytes")
        #expect(refused.text.contains("bytes left out"))
        let log = try client.request("GET", "/v1/audit?limit=100")
        #expect(log.body.count < 50_000)
        #expect(try client.request("DELETE", "/v1/services/default/rgw/addresses/192.168.7.50?port=08080").status == 400)
    }

    @Test func canonicalizesAndValidatesTheAddress() throws {
        let ipv6 = try client.request("POST", "/v1/services/default/rgw/addresses", json: #"{"ip":"2001:DB8:0::1"}"#)
        #expect(ipv6.status == 201)
        #expect(try addresses().last?["ip"] as? String == "2001:db8::1")
        let invalid = try client.request("POST", "/v1/services/default/rgw/addresses", json: #"{"ip":"fe80::1","hostname":"A_B"}"#)
        #expect(invalid.status == 422)
        #expect(invalid.problemFields == ["ip", "hostname"])
        let unknown = try client.request("POST", "/v1/services/default/rgw/addresses", json: #"{"ip":"10.0.0.1","weight":3}"#)
        #expect(unknown.status == 400)
        let missing = try client.request("POST", "/v1/services/default/none/addresses", json: #"{"ip":"10.0.0.1"}"#)
        #expect(missing.status == 404)
    }

    @Test func removesOneAddressChoosingByPort() throws {
        let ambiguous = try client.request("DELETE", "/v1/services/default/rgw/addresses/192.168.7.50")
        #expect(ambiguous.status == 400)
        #expect(ambiguous.problemFields == ["port"])
        let removed = try client.request("DELETE", "/v1/services/default/rgw/addresses/192.168.7.50?port=8081")
        #expect(removed.status == 200)
        #expect(removed.json?["revision"] as? Int == 2)
        #expect(try addresses().map { $0["port"] as? Int } == [8080])
        #expect(try client.request("DELETE", "/v1/services/default/rgw/addresses/192.168.7.50?port=8081").status == 404)
        #expect(try client.request("DELETE", "/v1/services/default/rgw/addresses/192.168.7.50").status == 200)
        #expect(try addresses().isEmpty)
        // Neither an IP nor a DNS name (a `host`): 400; a DNS name that is not registered: 404.
        #expect(try client.request("DELETE", "/v1/services/default/rgw/addresses/not_an_ip").status == 400)
        #expect(try client.request("DELETE", "/v1/services/default/rgw/addresses/not-an-ip").status == 404)
        #expect(try client.request("DELETE", "/v1/services/default/rgw/addresses/10.0.0.1?port=99999").status == 400)
    }

    @Test func honoursIfMatchOnAddressWrites() throws {
        let etag = try #require(try client.request("GET", "/v1/services/default/rgw").header("ETag"))
        #expect(
            try client.request("POST", "/v1/services/default/rgw/addresses", headers: ["If-Match": "\"7-x\""], json: #"{"ip":"10.0.0.9"}"#).status
                == 412)
        #expect(
            try client.request("POST", "/v1/services/default/rgw/addresses", headers: ["If-Match": etag], json: #"{"ip":"10.0.0.9"}"#).status == 201)
    }

    @Test func concurrentAddsAllLand() async throws {
        let port = server.port
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    let client = try RawHTTPClient(port: port)
                    for index in 1...25 {
                        let response = try client.request(
                            "POST", "/v1/services/default/rgw/addresses", json: #"{"ip":"10.\#(worker).0.\#(index)"}"#)
                        guard response.status == 201 else { throw ClientError.malformed("status \(response.status)") }
                    }
                }
            }
            try await group.waitForAll()
        }
        // A fresh connection: the suite's own one sat idle through the adds, and a connection
        // that sends nothing is closed after --header-timeout (10 s), which a loaded machine can reach.
        let service = try server.client().request("GET", "/v1/services/default/rgw").json
        #expect((service?["addresses"] as? [Any])?.count == 102)
        #expect(service?["revision"] as? Int == 101)
    }
}
