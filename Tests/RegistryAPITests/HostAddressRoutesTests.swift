import Foundation
import Liveness
import Synchronization
import TestSupport
import Testing

/// Issue 13 through the API, with a table resolver (no DNS query leaves the test): `host`
/// addresses, their `resolution` and conditions in the service document, the rendering of the
/// resolved IPs, and the read-only views outside the registration's ETag.
@Suite struct HostAddressRoutesTests {
    let resolver = TableResolver()
    let server: TestServer
    let client: RawHTTPClient

    init() throws {
        resolver.answers.withLock {
            $0["db.example.test"] = .success(["192.0.2.40", "2001:db8::40", "127.0.0.1"])
            $0["down.example.test"] = .failure(.failed("SERVFAIL"))
        }
        server = try TestServer(resolver: resolver)
        client = try server.client()
    }

    private func addresses(_ document: [String: Any]?) -> [[String: Any]] { document?["addresses"] as? [[String: Any]] ?? [] }

    private func renderedIPs() throws -> [String] {
        let response = try client.request("GET", "/v1/services/default/db/manifests?format=json&endpoints=endpointslices")
        let items = response.json?["items"] as? [[String: Any]] ?? []
        return items.filter { $0["kind"] as? String == "EndpointSlice" }
            .flatMap { ($0["endpoints"] as? [[String: Any]]) ?? [] }
            .compactMap { ($0["addresses"] as? [String])?.first }.sorted()
    }

    @Test func aHostAddressRendersItsResolvedIPsAndTheDocumentShowsTheResolution() throws {
        let created = try client.request(
            "POST", "/v1/services",
            json:
                #"{"name":"db","ports":[{"port":5432}],"addresses":[{"host":"db.example.test","zone":"z1"},{"ip":"192.0.2.40"}],"dnsGraceSeconds":60}"#
        )
        #expect(created.status == 201, "\(created.text)")
        // The write answer is the registration: host as written, the DNS settings with their defaults.
        #expect(created.json?["dnsRefreshSeconds"] as? Int == 30 && created.json?["dnsGraceSeconds"] as? Int == 60)
        #expect(addresses(created.json).last?["host"] as? String == "db.example.test")
        #expect(addresses(created.json).last?["resolution"] == nil)
        #expect(try eventually { try renderedIPs() == ["192.0.2.40", "2001:db8::40"] })
        let read = try client.request("GET", "/v1/services/default/db")
        let resolution = try #require(addresses(read.json).last?["resolution"] as? [String: Any], "\(read.text)")
        #expect(resolution["addresses"] as? [String] == ["192.0.2.40", "2001:db8::40"])
        #expect((resolution["dropped"] as? [String: String])?["127.0.0.1"]?.contains("loopback") == true)
        #expect(resolution["resolvedAt"] is String && resolution["ttlSeconds"] as? Int == 30)
        #expect((read.json?["status"] as? [String: Any])?["conditions"] as? [Any] != nil)
        // The ETag is the registration's; PUT of the GET'd document changes nothing.
        #expect(read.header("ETag") == created.header("ETag"))
        let put = try client.request("PUT", "/v1/services/default/db", body: read.body)
        #expect(put.status == 200, "\(put.text)")
        #expect(put.json?["revision"] as? Int == 1)
        let conditional = try client.request("GET", "/v1/services/default/db", headers: ["If-None-Match": read.header("ETag") ?? ""])
        #expect(conditional.status == 304)
    }

    @Test func failuresAndMissingNamesRaiseConditions() throws {
        let created = try client.request(
            "POST", "/v1/services",
            json:
                #"{"name":"db","ports":[{"port":5432}],"addresses":[{"host":"down.example.test"},{"host":"gone.example.test"}],"dnsGraceSeconds":0}"#)
        #expect(created.status == 201, "\(created.text)")
        func conditions() throws -> [String: [String: Any]] {
            let read = try client.request("GET", "/v1/services/default/db")
            let list = ((read.json?["status"] as? [String: Any])?["conditions"] as? [[String: Any]]) ?? []
            return Dictionary(list.map { ($0["type"] as? String ?? "", $0) }) { first, _ in first }
        }
        #expect(try eventually { try conditions().count == 2 })
        let found = try conditions()
        #expect(found["DNSResolutionFailed"]?["message"] as? String != nil)
        #expect(found["DNSNameNotFound"]?["reason"] as? String == "GracePeriodExpired")
        #expect(try renderedIPs().isEmpty)
        let health = try client.request("GET", "/v1/services/default/db/health")
        #expect((health.json?["conditions"] as? [[String: Any]])?.count == 2, "\(health.text)")
    }

    @Test func hostAndIPAreExclusiveAndValidatedWithTheFieldNamed() throws {
        let response = try client.request(
            "POST", "/v1/services",
            json:
                #"{"name":"db","ports":[{"port":5432}],"addresses":[{"ip":"192.0.2.1","host":"db.example.test"},{"host":"Not_A_Name"},{}],"dnsRefreshSeconds":4}"#
        )
        #expect(response.status == 422)
        let fields = Set(((response.json?["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
        #expect(fields == ["addresses[0].host", "addresses[1].host", "addresses[2].ip", "dnsRefreshSeconds"], "\(response.text)")
    }

    @Test func theAddressesSubResourceTakesHosts() throws {
        _ = try client.request("POST", "/v1/services", json: #"{"name":"db","ports":[{"port":5432}],"addresses":[{"ip":"192.0.2.40"}]}"#)
        let added = try client.request("POST", "/v1/services/default/db/addresses", json: #"{"host":"db.example.test"}"#)
        #expect(added.status == 201, "\(added.text)")
        let again = try client.request("POST", "/v1/services/default/db/addresses", json: #"{"host":"db.example.test"}"#)
        #expect(again.status == 200)
        #expect(try eventually { try renderedIPs() == ["192.0.2.40", "2001:db8::40"] })
        let removed = try client.request("DELETE", "/v1/services/default/db/addresses/db.example.test")
        #expect(removed.status == 200, "\(removed.text)")
        #expect((removed.json?["removed"] as? [String: Any])?["host"] as? String == "db.example.test")
        #expect(addresses(try client.request("GET", "/v1/services/default/db").json).count == 1)
        #expect(try eventually { try renderedIPs() == ["192.0.2.40"] })
    }
}
