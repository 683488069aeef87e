import Foundation
import TestSupport
import Testing

/// Issue 12 over HTTP: warnings on writes and imports (body and `Warning: 299` headers),
/// `?strict=true`, and the new fields round-tripping through the API.
@Suite struct ModelWarningsTests {
    let server: TestServer
    let client: RawHTTPClient

    init() throws {
        server = try TestServer()
        client = try server.client()
    }

    private func importYAML(_ yaml: String, query: String = "") throws -> ClientResponse {
        try client.request("POST", "/v1/import\(query)", headers: ["Content-Type": "application/yaml"], body: Array(yaml.utf8))
    }

    static let ceph = """
        apiVersion: v1
        kind: Service
        metadata: {name: rgw}
        spec: {ports: [{port: 80}]}
        ---
        apiVersion: v1
        kind: Endpoints
        metadata: {name: rgw}
        subsets:
        - addresses: [{ip: 192.0.2.1}, {ip: 192.0.2.2}]
          ports: [{port: 8080}]
        - addresses: [{ip: 192.0.2.1}, {ip: 192.0.2.2}]
          ports: [{port: 8081}]
        """

    /// The warnings list is the last member of the written document, which is otherwise the
    /// stored one byte for byte (what `GET` serves).
    @Test func warningsAreAppendedToTheStoredDocument() throws {
        let addresses = (0..<1_001).map { #"{"ip":"10.0.\#($0 / 250).\#($0 % 250 + 1)"}"# }.joined(separator: ",")
        let created = try client.request(
            "POST", "/v1/services", headers: ["Content-Type": "application/json"],
            json: #"{"namespace":"default","name":"big","ports":[{"port":80}],"addresses":["# + addresses + "]}")
        #expect(created.status == 201, "\(created.text)")
        #expect(created.headers.contains { $0.name.lowercased() == "warning" })
        let stored = try client.request("GET", "/v1/services/default/big")
        let warnings = try #require(created.json?["warnings"] as? [String])
        #expect(warnings.count == 1 && warnings[0].contains("1001 addresses"))
        let suffix = Array(#","warnings":["#.utf8)
        let cut = try #require(created.body.indices.reversed().first { created.body[$0...].starts(with: suffix) })
        #expect(Array(created.body[..<cut]) + [UInt8(ascii: "}")] == stored.body)
    }

    @Test func importOfAnUnmirrorableEndpointsChoosesBothAndSaysWhy() throws {
        let response = try importYAML(Self.ceph, query: "?dryRun=true")
        #expect(response.status == 200, "\(response.text)")
        let warnings = try #require(response.json?["warnings"] as? [[String: Any]])
        #expect(warnings.count == 1)
        #expect((warnings.first?["message"] as? String)?.contains("RepackSubsets") == true)
        #expect(warnings.first?["notKept"] as? Bool == false)
        #expect(response.header("Warning")?.hasPrefix("299 - \"") == true)
        // A choice, not something dropped: strict accepts it.
        let strict = try importYAML(Self.ceph, query: "?strict=true")
        #expect(strict.status == 200, "\(strict.text)")
        let stored = try client.request("GET", "/v1/services/default/rgw").json
        #expect(stored?["endpointsMode"] as? String == "both")
    }

    @Test func strictRefusesWhatWouldBeDropped() throws {
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: db}
            spec: {clusterIP: 10.96.0.9, ports: [{port: 5432}]}
            """
        let lenient = try importYAML(yaml, query: "?dryRun=true")
        #expect(lenient.status == 200)
        #expect((lenient.json?["warnings"] as? [[String: Any]])?.first?["field"] as? String == "documents[0].spec.clusterIP")
        let strict = try importYAML(yaml, query: "?strict=true")
        #expect(strict.status == 422, "\(strict.text)")
        #expect(strict.text.contains("documents[0].spec.clusterIP"))
        #expect(try client.request("GET", "/v1/services/default/db").status == 404)
    }

    @Test func writesReturnWarningsInTheBodyAndAsHeaders() throws {
        let created = try client.request(
            "POST", "/v1/services",
            json: #"{"name":"dns","type":"Headless","ports":[{"port":53,"protocol":"UDP"}],"addresses":[{"ip":"192.0.2.53","port":5353}]}"#)
        #expect(created.status == 201, "\(created.text)")
        let warnings = try #require(created.json?["warnings"] as? [String])
        #expect(warnings.count == 1 && warnings[0].contains("no port translation"))
        #expect(created.header("Warning")?.contains("no port translation") == true)
        // The document with its warnings can be sent back as is.
        var document = try #require(created.json)
        document["description"] = "resolver"
        let body = try JSONSerialization.data(withJSONObject: document)
        let replaced = try client.request(
            "PUT", "/v1/services/default/dns", headers: ["Content-Type": "application/json"], body: Array(body))
        #expect(replaced.status == 200, "\(replaced.text)")
        let read = try client.request("GET", "/v1/services/default/dns")
        #expect(read.json?["warnings"] == nil)
    }

    @Test func loadBalancerRoundTripsThroughTheAPI() throws {
        let created = try client.request(
            "POST", "/v1/services",
            json:
                #"{"name":"s3","type":"LoadBalancer","ports":[{"port":80,"nodePort":30080}],"loadBalancerClass":"metallb.io/l2","externalTrafficPolicy":"Local","addresses":[{"ip":"192.0.2.10"}]}"#
        )
        #expect(created.status == 201, "\(created.text)")
        #expect(created.json?["warnings"] == nil)
        #expect(created.json?["allocateLoadBalancerNodePorts"] as? Bool == true)
        let manifests = try client.request("GET", "/v1/services/default/s3/manifests?format=yaml")
        #expect(manifests.text.contains("type: LoadBalancer") && manifests.text.contains("nodePort: 30080"))
        let invalid = try client.request(
            "POST", "/v1/services", json: #"{"name":"bad","ports":[{"port":80,"nodePort":30080}]}"#)
        #expect(invalid.status == 422)
        #expect(invalid.text.contains("may not be used when `type` is 'ClusterIP'"))
    }
}
