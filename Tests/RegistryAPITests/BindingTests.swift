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

/// Bindings are pushes (README, roles): an `editor` may register, change and delete services,
/// but binding one to a cluster, unbinding it and deleting its objects in a cluster need `pusher`.
@Suite(.serialized) struct BindingPermissionTests {
    let cluster: FakeCluster
    let server: TestServer
    let client: RawHTTPClient
    static let editor = ["Authorization": "Bearer editor-token-0123456789"]
    static let pusher = ["Authorization": "Bearer pusher-token-0123456789"]

    init() throws {
        let cluster = try FakeCluster()
        self.cluster = cluster
        let tokens = try writeTokensFile([
            ("writer", "editor", #"["*"]"#, "editor-token-0123456789"), ("deployer", "pusher", #"["*"]"#, "pusher-token-0123456789"),
        ])
        server = try TestServer(cluster: cluster) {
            $0.defaultClusters = ["token"]
            $0.tokensFile = tokens
        }
        client = try server.client()
    }

    private func patch(_ name: String, _ body: String, _ headers: [String: String]) throws -> ClientResponse {
        try client.request(
            "PATCH", "/v1/services/default/\(name)", headers: headers.merging(["Content-Type": "application/merge-patch+json"]) { $1 },
            body: Array(body.utf8))
    }

    @Test func editorsMayNotChangeWhereAServiceIsPushed() throws {
        // The operator's default clusters, or fewer, are the editor's to take.
        let defaulted = try client.request("POST", "/v1/services", headers: Self.editor, json: #"{"name":"a","ports":[{"port":80}]}"#)
        #expect(defaulted.status == 201 && defaulted.json?["clusters"] as? [String] == ["token"])
        let unbound = try client.request("POST", "/v1/services", headers: Self.editor, json: #"{"name":"b","ports":[{"port":80}],"clusters":[]}"#)
        #expect(unbound.status == 201)
        // Changing the bindings of a service is not: neither unbinding nor binding.
        for (name, body) in [("a", #"{"clusters":[]}"#), ("b", #"{"clusters":["token"]}"#)] {
            let refused = try patch(name, body, Self.editor)
            #expect(refused.status == 403, "\(refused.text)")
            #expect(refused.json?["missing"] as? String == "permission:push")
            #expect(refused.text.contains("token"))
        }
        let replaced = try client.request("PUT", "/v1/services/default/b", headers: Self.editor, json: #"{"ports":[{"port":80}]}"#)
        #expect(replaced.status == 403, "a replacement without the field binds to the default clusters")
        // Other changes of a bound service are an editor's.
        #expect(try patch("a", #"{"description":"x"}"#, Self.editor).status == 200)
        // A pusher binds.
        #expect(try patch("b", #"{"clusters":["token"]}"#, Self.pusher).status == 200)
    }

    @Test func editorsMayNotDeleteObjectsInClusters() throws {
        #expect(try client.request("POST", "/v1/services", headers: Self.pusher, json: #"{"name":"c","ports":[{"port":80}]}"#).status == 201)
        // Once the reconciler tracks the service in the cluster, a cascading delete deletes there.
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while ContinuousClock.now < deadline {
            let status = try client.request("GET", "/v1/services/default/c/status", headers: Self.pusher)
            if let items = status.json?["items"] as? [[String: Any]], !items.isEmpty { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        for target in ["/v1/services/default/c", "/v1/services/default/c?dryRun=true"] {
            let refused = try client.request("DELETE", target, headers: Self.editor)
            #expect(refused.status == 403, "\(target): \(refused.text)")
            #expect(refused.json?["missing"] as? String == "permission:push")
        }
        #expect(try client.request("GET", "/v1/services/default/c", headers: Self.editor).status == 200)
        // Without the cascade the registration goes and the objects stay: an editor's to do.
        let kept = try client.request("DELETE", "/v1/services/default/c?cascade=false", headers: Self.editor)
        #expect(kept.status == 200 && kept.json?["keptIn"] as? [String] == ["token"])
    }

    /// `endpoint-registry delete` deletes registrations; only `--cascade` deletes in clusters
    /// (and needs a pusher's token), as its help says.
    @Test func theCLIDeletesInClustersOnlyWithCascade() throws {
        #expect(try client.request("POST", "/v1/services", headers: Self.pusher, json: #"{"name":"d","ports":[{"port":80}]}"#).status == 201)
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while ContinuousClock.now < deadline, try cluster.object("Service", "d") == nil { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try cluster.object("Service", "d") != nil)
        var environment = ["ENDPOINT_REGISTRY_URL": "http://127.0.0.1:\(server.port)", "ENDPOINT_REGISTRY_TOKEN": "editor-token-0123456789"]
        let refused = try runCLI(["delete", "svc", "d", "--cascade"], environment: environment)
        #expect(refused.status != 0 && refused.stderr.contains("push"), "\(refused.stderr)")
        let deleted = try runCLI(["delete", "svc", "d"], environment: environment)
        #expect(deleted.status == 0 && deleted.stdout == "service/d deleted\n", "\(deleted.stderr)")
        #expect(try client.request("GET", "/v1/services/default/d", headers: Self.pusher).status == 404)
        #expect(try cluster.object("Service", "d") != nil, "kept in the cluster")
        // A pusher's --cascade deletes there too.
        environment["ENDPOINT_REGISTRY_TOKEN"] = "pusher-token-0123456789"
        #expect(try client.request("POST", "/v1/services", headers: Self.pusher, json: #"{"name":"e","ports":[{"port":80}]}"#).status == 201)
        while ContinuousClock.now < deadline, try cluster.object("Service", "e") == nil { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try runCLI(["delete", "svc", "e", "--cascade"], environment: environment).status == 0)
        #expect(try cluster.object("Service", "e") == nil)
    }
}
