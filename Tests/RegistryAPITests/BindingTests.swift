import Foundation
import RegistryAPI
import TestSupport
import Testing

/// The `clusters` field: validated, defaulted from `--default-clusters`, revisioned.
@Suite(.serialized) struct BindingTests {
    let cluster: FakeCluster
    let server: TestServer
    let client: RawHTTPClient

    init() throws {
        let cluster = try FakeCluster()
        self.cluster = cluster
        server = try TestServer(cluster: cluster) { $0.defaultClusters = ["token"] }
        client = try server.client()
    }

    @Test func unknownOrMalformedClustersAreRefusedNamingTheField() throws {
        let unknown = try client.request("POST", "/v1/services", json: #"{"name":"a","ports":[{"port":80}],"clusters":["nope"]}"#)
        #expect(unknown.status == 422)
        #expect(unknown.problemFields == ["clusters[0]"])
        #expect(unknown.text.contains("known: "))
        let wrongType = try client.request("POST", "/v1/services", json: #"{"name":"a","ports":[{"port":80}],"clusters":[7]}"#)
        #expect(wrongType.status == 422 || wrongType.status == 400)
        #expect(wrongType.problemFields == ["clusters[0]"])
        let spaces = try client.request("POST", "/v1/services", json: #"{"name":"a","ports":[{"port":80}],"clusters":["a b"]}"#)
        #expect(spaces.problemFields.contains("clusters[0]"))
        let unusable = try client.request("POST", "/v1/services", json: #"{"name":"a","ports":[{"port":80}],"clusters":["exec"]}"#)
        #expect(unusable.status == 422)
        #expect(unusable.problemFields == ["clusters[0]"])
        #expect(unusable.text.contains("not usable"))
        let twice = try client.request("POST", "/v1/services", json: #"{"name":"a","ports":[{"port":80}],"clusters":["token","token"]}"#)
        #expect(twice.problemFields.contains("clusters[1]"))
    }

    @Test func defaultsApplyOnCreateAndBindingIsAnOrdinaryWrite() throws {
        let created = try client.request("POST", "/v1/services", json: #"{"name":"b","ports":[{"port":80}]}"#)
        #expect(created.status == 201)
        #expect(created.json?["clusters"] as? [String] == ["token"])
        let unbound = try client.request(
            "PATCH", "/v1/services/default/b", headers: ["Content-Type": "application/merge-patch+json"], body: Array(#"{"clusters":[]}"#.utf8))
        #expect(unbound.status == 200)
        #expect(unbound.json?["clusters"] as? [String] == [])
        #expect(unbound.json?["revision"] as? Int == 2)
        let explicit = try client.request("POST", "/v1/services", json: #"{"name":"c","ports":[{"port":80}],"clusters":[]}"#)
        #expect(explicit.json?["clusters"] as? [String] == [])
    }
}
