import Foundation
import TestSupport
import Testing
import Yams

@Suite struct ManifestRoutesTests {
    let server: TestServer
    let client: RawHTTPClient

    init() throws {
        server = try TestServer()
        client = try server.client()
    }

    private func fixture(_ name: String) throws -> [UInt8] {
        Array(try String(contentsOf: Paths.fixtures.appending(path: name), encoding: .utf8).utf8)
    }

    private func importYAML(_ body: [UInt8], query: String = "") throws -> ClientResponse {
        try client.request("POST", "/v1/import\(query)", headers: ["Content-Type": "application/yaml"], body: body)
    }

    @Test func importsEverySeedFixture() throws {
        for name in ["seed-001-ceph-rgw.yaml", "seed-003-external-svc.yaml", "seed-003-externalname.yaml", "seed-004-external-etcd.yaml"] {
            let response = try importYAML(try fixture(name))
            #expect(response.status == 200, "\(name): \(response.text)")
            let services = response.json?["services"] as? [[String: Any]]
            #expect(services?.first?["action"] as? String == "created", "\(name)")
        }
        let rgw = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb").json
        #expect((rgw?["addresses"] as? [Any])?.count == 12)
        let refused = try importYAML(try fixture("seed-003-selector-service.yaml"))
        #expect(refused.status == 200)
        #expect((refused.json?["services"] as? [Any])?.isEmpty == true)
        let reason = (refused.json?["refused"] as? [[String: Any]])?.first?["reason"] as? String
        #expect(reason?.contains("selector") == true)
    }

    @Test func rendersJSONByDefaultAndYAMLOnRequest() throws {
        _ = try importYAML(try fixture("seed-001-ceph-rgw.yaml"))
        let yaml = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/manifests", headers: ["Accept": "application/yaml"])
        #expect(yaml.status == 200)
        #expect(yaml.header("Content-Type") == "application/yaml")
        #expect(yaml.header("Vary") == "Accept")
        let documents = try Array(Yams.load_all(yaml: yaml.text)).compactMap { $0 as? [String: Any] }
        // The seed's Endpoints-only manifest imports as `both` (the mirroring controller cannot mirror it).
        #expect(documents.map { $0["kind"] as? String } == ["Service", "Endpoints", "EndpointSlice", "EndpointSlice"])
        let json = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/manifests", headers: ["Accept": "application/json"])
        #expect(json.header("Content-Type") == "application/json")
        #expect(json.json?["kind"] as? String == "List")
        let query = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/manifests?format=json&endpoints=both")
        #expect(
            (query.json?["items"] as? [[String: Any]])?.map { $0["kind"] as? String } == ["Service", "Endpoints", "EndpointSlice", "EndpointSlice"])
        #expect(try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/manifests", headers: ["Accept": "text/html"]).status == 406)
        // No Accept, or one that takes anything: JSON, the contract's first media type (what a
        // generated client parses). q-values choose (RFC 9110 §12.5.1); q=0 refuses a type.
        for (accept, type) in [
            (nil, "application/json"), ("*/*", "application/json"), ("application/*", "application/json"), ("text/*", "application/yaml"),
            ("application/json;q=0.5, application/yaml", "application/yaml"), ("text/yaml, application/json", "application/yaml"),
            ("application/yaml;q=0, */*;q=0.1", "application/json"),
        ] as [(String?, String)] {
            let answer = try client.request(
                "GET", "/v1/services/default/ocs-external-rgw-lb/manifests", headers: accept.map { ["Accept": $0] } ?? [:])
            #expect(answer.status == 200 && answer.header("Content-Type") == type, "Accept: \(accept ?? "none")")
        }
        #expect(
            try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/manifests", headers: ["Accept": "application/json;q=0"]).status
                == 406)
        #expect(try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/manifests?format=xml").status == 400)
        #expect(try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/manifests?endpoints=all").status == 400)
        #expect(try client.request("GET", "/v1/services/default/none/manifests").status == 404)
    }

    @Test func renderingIsDeterministicAndConditional() throws {
        _ = try importYAML(try fixture("seed-004-external-etcd.yaml"))
        let first = try client.request("GET", "/v1/services/default/etcd-supporting-kubernetes/manifests")
        let second = try client.request("GET", "/v1/services/default/etcd-supporting-kubernetes/manifests")
        #expect(first.body == second.body)
        let etag = try #require(first.header("ETag"))
        #expect(
            try client.request("GET", "/v1/services/default/etcd-supporting-kubernetes/manifests", headers: ["If-None-Match": etag]).status == 304)
        _ = try client.request("POST", "/v1/services/default/etcd-supporting-kubernetes/addresses", json: #"{"ip":"10.20.30.43"}"#)
        let changed = try client.request("GET", "/v1/services/default/etcd-supporting-kubernetes/manifests")
        #expect(changed.header("ETag") != etag)
        #expect(changed.text.contains("10.20.30.43"))
    }

    @Test func importingTheRenderingGivesTheSameRegistration() throws {
        let body =
            #"{"namespace":"data","name":"pg","description":"primary","labels":{"tier":"db","flag":"true"},"endpointsMode":"endpointslices","ports":[{"name":"sql","port":5432},{"name":"metrics","port":9187,"targetPort":9000}],"addresses":[{"ip":"fd00::7","ports":{"sql":6432},"hostname":"pg-0","zone":"z1"},{"ip":"10.0.0.5","ready":false}]}"#
        let created = try client.request("POST", "/v1/services", json: body)
        #expect(created.status == 201)
        let manifests = try client.request("GET", "/v1/services/data/pg/manifests?format=yaml")
        let again = try importYAML(manifests.body)
        #expect((again.json?["services"] as? [[String: Any]])?.first?["action"] as? String == "unchanged", "\(again.text)")
    }

    @Test func listsManifestsOfManyServicesInOrder() throws {
        for (namespace, name) in [("b", "two"), ("a", "one"), ("a", "zero")] {
            _ = try client.request(
                "POST", "/v1/services",
                json: #"{"namespace":"\#(namespace)","name":"\#(name)","labels":{"x":"y"},"ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"}]}"#)
        }
        let all = try client.request("GET", "/v1/manifests?format=json")
        let items = try #require(all.json?["items"] as? [[String: Any]])
        let keys = items.map { item -> String in
            let metadata = item["metadata"] as? [String: Any]
            return "\(metadata?["namespace"] ?? "")/\(item["kind"] ?? "")"
        }
        #expect(
            keys == [
                "a/Service", "a/Endpoints", "a/EndpointSlice", "a/Service", "a/Endpoints", "a/EndpointSlice", "b/Service", "b/Endpoints",
                "b/EndpointSlice",
            ])
        let names = items.filter { $0["kind"] as? String == "Service" }.map { ($0["metadata"] as? [String: Any])?["name"] as? String }
        #expect(names == ["one", "zero", "two"])
        let filtered = try client.request("GET", "/v1/manifests?namespace=b&labelSelector=x%3Dy&format=yaml")
        #expect(try Array(Yams.load_all(yaml: filtered.text)).count == 3)
    }

    @Test func warnsAboutEndpointsOverOneThousandAddresses() throws {
        let addresses = (0..<1001).map { #"{"ip":"10.9.\#($0 / 250).\#($0 % 250 + 1)"}"# }.joined(separator: ",")
        _ = try client.request("POST", "/v1/services", json: #"{"name":"big","ports":[{"port":80}],"addresses":[\#(addresses)]}"#)
        let response = try client.request("GET", "/v1/services/default/big/manifests?format=yaml")
        #expect(response.header("Warning")?.hasPrefix("299 - \"Endpoints default/big holds 1001 addresses") == true)
        #expect(response.text.hasPrefix("# WARNING:"))
    }

    @Test func importConflictsAndDryRun() throws {
        let etcd = try fixture("seed-004-external-etcd.yaml")
        let dry = try importYAML(etcd, query: "?dryRun=true")
        #expect(dry.json?["dryRun"] as? Bool == true)
        #expect((dry.json?["services"] as? [[String: Any]])?.first?["action"] as? String == "created")
        #expect(try client.request("GET", "/v1/services/default/etcd-supporting-kubernetes").status == 404)
        #expect(try importYAML(etcd).status == 200)
        #expect((try importYAML(etcd).json?["services"] as? [[String: Any]])?.first?["action"] as? String == "unchanged")
        let changed = Array(String(decoding: etcd, as: UTF8.self).replacingOccurrences(of: "10.20.30.42", with: "10.20.30.99").utf8)
        let conflict = try importYAML(changed)
        #expect(conflict.status == 409)
        #expect(try client.request("GET", "/v1/services/default/etcd-supporting-kubernetes").text.contains("10.20.30.42"))
        #expect((try importYAML(changed, query: "?onConflict=skip").json?["services"] as? [[String: Any]])?.first?["action"] as? String == "skipped")
        let replaced = try importYAML(changed, query: "?onConflict=replace")
        #expect((replaced.json?["services"] as? [[String: Any]])?.first?["action"] as? String == "updated")
        #expect(try client.request("GET", "/v1/services/default/etcd-supporting-kubernetes").text.contains("10.20.30.99"))
        #expect(try importYAML(etcd, query: "?onConflict=merge").status == 400)
        #expect(try importYAML(etcd, query: "?dryRun=maybe").status == 400)
    }

    @Test func anInvalidDocumentFailsTheWholeImport() throws {
        let body =
            try fixture("seed-004-external-etcd.yaml")
            + Array("\n---\napiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\nspec: {ports: [{port: 80}]}\n".utf8)
        let response = try importYAML(body)
        #expect(response.status == 422)
        #expect(response.problemFields.contains { $0.hasPrefix("documents[2]") && $0.hasSuffix("name") })
        #expect(try client.request("GET", "/v1/services/default/etcd-supporting-kubernetes").status == 404)
        // A body that does not parse is malformed (400), as malformed JSON is, named by position.
        let malformed = try importYAML(Array("a: 'unterminated\n".utf8))
        #expect(malformed.status == 400)
        #expect((malformed.json?["type"] as? String)?.hasSuffix(":malformed-yaml") == true)
        #expect(malformed.problemFields == [""])
        #expect(malformed.json?["line"] as? Int == 2 && malformed.json?["column"] as? Int == 1)
        #expect(
            malformed.json?["detail"] as? String
                == "the body is not valid YAML: line 2, column 1: found unexpected end of stream (while scanning a quoted scalar at line 1, column 4)"
        )
        let duplicated = try importYAML(Array("apiVersion: v1\nkind: Service\nkind: Service\n".utf8))
        // Where the key first appears.
        #expect(duplicated.status == 400 && duplicated.json?["line"] as? Int == 2, "\(duplicated.text)")
        let notUTF8 = try importYAML(Array("apiVersion: v1\nkind: ".utf8) + [0xFF])
        #expect(notUTF8.status == 400 && (notUTF8.json?["type"] as? String)?.hasSuffix(":malformed-yaml") == true)
        #expect(notUTF8.json?["line"] as? Int == 2 && notUTF8.json?["column"] as? Int == 7, "\(notUTF8.text)")
        // A byte order mark is not content.
        let marked = try importYAML([0xEF, 0xBB, 0xBF] + Array("apiVersion: v1\nkind: List\nitems: []\n".utf8))
        #expect(marked.status == 200, "\(marked.text)")
        // What parses but JSON cannot hold stays a field error (422).
        #expect(try importYAML(Array("? [a, b]\n: c\n".utf8)).status == 422)
        #expect(try client.request("POST", "/v1/import", headers: ["Content-Type": "text/plain"], body: [1]).status == 415)
        let json = try client.request("POST", "/v1/import", json: #"{"apiVersion":"v1","kind":"List","items":[]}"#)
        #expect(json.status == 200)
    }
}
