import Foundation
import TestSupport
import Testing

/// The seed cases of `Tests/Fixtures/`, registered through the API as their authors meant them.
@Suite struct SeedCaseTests {
    let server: TestServer
    let client: RawHTTPClient

    init() throws {
        server = try TestServer()
        client = try server.client()
    }

    @Test func cephGatewaysSixHostsTimesTwoPortsBehindPort80() throws {
        var addresses: [String] = []
        for host in 50...55 {
            for port in [8080, 8081] { addresses.append(#"{"ip":"192.168.7.\#(host)","port":\#(port)}"#) }
        }
        let body =
            #"{"name":"ocs-external-rgw-lb","ports":[{"protocol":"TCP","port":80,"targetPort":80}],"addresses":[\#(addresses.joined(separator: ","))]}"#
        let created = try client.request("POST", "/v1/services", json: body)
        #expect(created.status == 201)
        let stored = try #require(try client.request("GET", "/v1/services/default/ocs-external-rgw-lb").json)
        let storedAddresses = try #require(stored["addresses"] as? [[String: Any]])
        func backends(_ addresses: [[String: Any]]) -> [String] { addresses.map { "\($0["ip"] ?? "-"):\($0["port"] ?? "-")" } }
        #expect(storedAddresses.count == 12)
        #expect(Set(backends(storedAddresses)).count == 12)

        // Rendered as the Endpoints a person would write: one subset per backend port, six hosts each.
        let rendered = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/manifests?format=json&endpoints=endpoints")
        let items = try #require(rendered.json?["items"] as? [[String: Any]])
        #expect(items.map { $0["kind"] as? String } == ["Service", "Endpoints"])
        let subsets = try #require(items.last?["subsets"] as? [[String: Any]])
        #expect(subsets.map { ($0["addresses"] as? [Any])?.count } == [6, 6])
        #expect(subsets.map { ($0["ports"] as? [[String: Any]])?.first?["port"] as? Int } == [8080, 8081])

        // The article's manifest (one subset per ip and port), imported, means the same 12 backends.
        let manifest = try String(contentsOf: Paths.fixtures.appending(path: "seed-001-ceph-rgw.yaml"), encoding: .utf8)
        let imported = try client.request(
            "POST", "/v1/import?namespace=article", headers: ["Content-Type": "application/yaml"], body: Array(manifest.utf8))
        #expect(imported.status == 200, "\(imported.text)")
        let importedAddresses = try #require(
            try client.request("GET", "/v1/services/article/ocs-external-rgw-lb/addresses").json?["items"] as? [[String: Any]])
        #expect(backends(importedAddresses) == backends(storedAddresses))
    }

    @Test func externalEtcd() throws {
        let body =
            #"{"namespace":"default","name":"etcd-supporting-kubernetes","type":"ClusterIP","ports":[{"protocol":"TCP","port":2379,"targetPort":2379}],"addresses":[{"ip":"10.20.30.40"},{"ip":"10.20.30.41"},{"ip":"10.20.30.42"}]}"#
        #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        let addresses = try client.request("GET", "/v1/services/default/etcd-supporting-kubernetes/addresses").json?["items"] as? [[String: Any]]
        #expect(addresses?.map { $0["ip"] as? String } == ["10.20.30.40", "10.20.30.41", "10.20.30.42"])
    }

    @Test func externalWebSiteWithANamedPort() throws {
        let body =
            #"{"name":"external-svc","ports":[{"name":"web","protocol":"TCP","port":80,"targetPort":80}],"addresses":[{"ip":"139.59.205.180"}]}"#
        let created = try client.request("POST", "/v1/services", json: body)
        #expect(created.status == 201)
        #expect((created.json?["ports"] as? [[String: Any]])?.first?["name"] as? String == "web")
    }

    @Test func externalNameService() throws {
        let body = #"{"name":"rtfm-service","type":"ExternalName","externalName":"rtfm.co.ua","ports":[{"port":80}]}"#
        let created = try client.request("POST", "/v1/services", json: body)
        #expect(created.status == 201)
        #expect(created.json?["externalName"] as? String == "rtfm.co.ua")
        let withAddress = try client.request("POST", "/v1/services/default/rtfm-service/addresses", json: #"{"ip":"10.0.0.1"}"#)
        #expect(withAddress.status == 422)
    }
}
