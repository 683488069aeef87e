import Foundation
import KubernetesClient
import RegistryAPI
import RegistryCore
import Synchronization
import TestSupport
import Testing

private let ceph: String = {
    var addresses: [String] = []
    for host in 50...55 { for port in [8080, 8081] { addresses.append(#"{"ip":"192.168.7.\#(host)","port":\#(port)}"#) } }
    return
        #"{"name":"ocs-external-rgw-lb","ports":[{"protocol":"TCP","port":80,"targetPort":80}],"addresses":[\#(addresses.joined(separator: ","))]}"#
}()

private func actions(_ response: ClientResponse, cluster: Int = 0) -> [String] {
    let clusters = response.json?["clusters"] as? [[String: Any]]
    let objects = (clusters?[cluster]["objects"] as? [[String: Any]]) ?? []
    return objects.map { "\($0["kind"] ?? "")/\($0["name"] ?? ""):\($0["action"] ?? "")" }
}

@Suite(.serialized) struct PushTests {
    let cluster: FakeCluster
    let server: TestServer
    let client: RawHTTPClient

    init() throws {
        let cluster = try FakeCluster()
        self.cluster = cluster
        server = try TestServer(cluster: cluster)
        client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: ceph).status == 201)
    }

    private func push(_ body: String = #"{"clusters":["token"]}"#, service: String = "default/ocs-external-rgw-lb") throws -> ClientResponse {
        try client.request("POST", "/v1/services/\(service)/push", json: body)
    }

    @Test func listsClustersWithoutSecretsAndProbesThem() throws {
        let response = try client.request("GET", "/v1/clusters?probe=true")
        let items = try #require(response.json?["items"] as? [[String: Any]])
        let byName = Dictionary(items.map { ($0["name"] as? String ?? "", $0) }) { first, _ in first }
        #expect(Set(byName.keys) == ["token", "cert", "readonly", "tokenfile", "exec", "untrusted"])
        #expect(byName["token"]?["auth"] as? String == "token" && byName["token"]?["usable"] as? Bool == true)
        #expect(byName["cert"]?["auth"] as? String == "clientCertificate")
        #expect(byName["exec"]?["usable"] as? Bool == false && (byName["exec"]?["reason"] as? String)?.contains("exec") == true)
        #expect(byName["token"]?["version"] as? String == "v1.37.0-fake")
        #expect(byName["untrusted"]?["reachable"] as? Bool == false)
        #expect(!response.text.contains("admin-token") && !response.text.contains("BEGIN"))
    }

    @Test func pushesCreatesThenReportsUnchangedAndStoresExactObjects() throws {
        let first = try push()
        #expect(first.status == 200, "\(first.text)")
        #expect(first.json?["status"] as? String == "success")
        let objectNames = ["Service/ocs-external-rgw-lb", "Endpoints/ocs-external-rgw-lb", "EndpointSlice/", "EndpointSlice/"]
        func kinds(_ actions: [String], _ action: String) -> [String] {
            // Slice names end in a hash; keep the kind.
            actions.map { $0.hasPrefix("EndpointSlice/") && $0.hasSuffix(":\(action)") ? "EndpointSlice/:\(action)" : $0 }
        }
        #expect(kinds(actions(first), "created") == objectNames.map { "\($0):created" })
        let objects = (first.json?["clusters"] as? [[String: Any]])?[0]["objects"] as? [[String: Any]]
        let endpointsWarnings = objects?.first { $0["kind"] as? String == "Endpoints" }?["warnings"] as? [String]
        #expect(endpointsWarnings?.first?.contains("v1 Endpoints is deprecated") == true)

        let service = try #require(try cluster.object("Service", "ocs-external-rgw-lb"))
        let spec = try #require(service["spec"] as? [String: Any])
        #expect(spec["selector"] == nil)
        #expect((spec["ports"] as? [[String: Any]])?.first?["port"] as? Int == 80)
        #expect(((service["metadata"] as? [String: Any])?["labels"] as? [String: String])?["app.kubernetes.io/managed-by"] == "endpoint-registry")
        #expect(
            (((service["metadata"] as? [String: Any])?["managedFields"] as? [[String: Any]])?.first?["manager"] as? String) == "endpoint-registry")
        let endpoints = try #require(try cluster.object("Endpoints", "ocs-external-rgw-lb"))
        let subsets = try #require(endpoints["subsets"] as? [[String: Any]])
        #expect(subsets.count == 2)
        #expect(subsets.map { ($0["addresses"] as? [Any])?.count } == [6, 6])
        #expect(subsets.map { ($0["ports"] as? [[String: Any]])?.first?["port"] as? Int } == [8080, 8081])
        let slices = try cluster.objects().filter { $0["kind"] as? String == "EndpointSlice" }
        #expect(slices.count == 2)
        for slice in slices {
            let labels = (slice["metadata"] as? [String: Any])?["labels"] as? [String: String]
            #expect(labels?["kubernetes.io/service-name"] == "ocs-external-rgw-lb")
            #expect(labels?["endpointslice.kubernetes.io/managed-by"] == "endpoint-registry")
            #expect((slice["endpoints"] as? [Any])?.count == 6)
        }

        let second = try push()
        #expect(kinds(actions(second), "unchanged") == objectNames.map { "\($0):unchanged" })
        let metrics = try client.request("GET", "/metrics").text
        #expect(metrics.contains(#"endpoint_registry_push_objects_total{cluster="token",action="created"} 4"#))
        #expect(metrics.contains(#"endpoint_registry_push_objects_total{cluster="token",action="unchanged"} 4"#))
    }

    @Test func prunesWhatNoLongerRendersAndReportsStatus() throws {
        _ = try push()
        let status = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/status")
        let first = try #require((status.json?["items"] as? [[String: Any]])?.first)
        #expect(first["cluster"] as? String == "token" && first["outOfDate"] as? Bool == false && first["revision"] as? Int == 1)
        let patched = try client.request(
            "PATCH", "/v1/services/default/ocs-external-rgw-lb", headers: ["Content-Type": "application/merge-patch+json"],
            json: #"{"addresses":[{"ip":"192.168.7.50","port":8080},{"ip":"192.168.7.51","port":8080}],"endpointsMode":"endpointslices"}"#)
        #expect(patched.status == 200)
        let stale = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/status")
        #expect((stale.json?["items"] as? [[String: Any]])?.first?["outOfDate"] as? Bool == true)
        let again = try push()
        let result = actions(again)
        #expect(result.contains { $0.hasPrefix("Endpoints/") && $0.hasSuffix(":deleted") }, "\(result)")
        #expect(result.contains { $0.hasPrefix("EndpointSlice/") && $0.hasSuffix(":deleted") })
        #expect(result.contains { $0.hasPrefix("EndpointSlice/") && $0.hasSuffix(":configured") })
        #expect(try cluster.object("Endpoints", "ocs-external-rgw-lb") == nil)
        #expect(try cluster.objects().filter { $0["kind"] as? String == "EndpointSlice" }.count == 1)
    }

    @Test func dryRunValidatesWithoutPersisting() throws {
        let dry = try push(#"{"clusters":["token"],"dryRun":true}"#)
        #expect(dry.status == 200 && dry.json?["dryRun"] as? Bool == true)
        #expect(actions(dry).count == 4)
        #expect(actions(dry).allSatisfy { $0.hasSuffix(":created") }, "\(actions(dry))")
        #expect(try cluster.objects().isEmpty)
        let requests = try cluster.call("GET", "/_fake/requests").body
        #expect(requests.contains("dryRun=All") && requests.contains("fieldManager=endpoint-registry") && requests.contains("force=true"))
        // A dry run records no push: the status lists no cluster.
        let status = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/status")
        #expect(status.status == 200)
        #expect((status.json?["items"] as? [Any])?.isEmpty == true, "\(status.text)")
    }

    @Test func authenticatesWithClientCertificatesAndTokenFiles() throws {
        #expect(try push(#"{"clusters":["cert"]}"#).status == 200)
        #expect(try push(#"{"clusters":["tokenfile"]}"#).status == 200)
        // The API server rotates the token: after a 401 the file is read again.
        try cluster.call("POST", "/_fake/tokens", json: #"{"admin-token":"admin","file-token-2":"filer"}"#)
        try "file-token-2".write(to: cluster.tokenFile, atomically: true, encoding: .utf8)
        let rotated = try push(#"{"clusters":["tokenfile"]}"#)
        #expect(rotated.status == 200, "\(rotated.text)")
    }

    @Test func reportsPartialFailurePerClusterWithTheAPIServersReason() throws {
        let response = try push(#"{"clusters":["token","readonly"]}"#)
        #expect(response.status == 207)
        #expect(response.json?["status"] as? String == "partial")
        let clusters = try #require(response.json?["clusters"] as? [[String: Any]])
        #expect(clusters[0]["status"] as? String == "success" && clusters[1]["status"] as? String == "failure")
        let failed = try #require((clusters[1]["objects"] as? [[String: Any]])?.first)
        let detail = (failed["error"] as? [String: Any])?["detail"] as? String
        #expect(detail?.hasPrefix("Service/default/ocs-external-rgw-lb on cluster readonly: Forbidden") == true, "\(detail ?? "")")
        let audit = try client.request("GET", "/v1/audit?action=pushService")
        let outcomes = (audit.json?["items"] as? [[String: Any]])?.compactMap { $0["outcome"] as? String }
        #expect(outcomes?.sorted() == ["failure", "success"])
        #expect(try client.request("GET", "/v1/services/default/ocs-external-rgw-lb").json?["revision"] as? Int == 1)
    }

    @Test func refusesUnknownOrUnusableClustersAndBadBodies() throws {
        let unknown = try push(#"{"clusters":["nope"]}"#)
        #expect(unknown.status == 422 && unknown.problemFields == ["clusters[0]"])
        #expect(try push(#"{"clusters":["exec"]}"#).status == 422)
        #expect(try push(#"{"cluster":["token"]}"#).status == 400)
        #expect(try push(#"{"clusters":"token"}"#).status == 422)
        #expect(try push(#"{"clusters":["token"]}"#, service: "default/none").status == 404)
    }

    @Test func leavesOtherOwnersObjectsAloneUnlessAdopted() throws {
        let foreign =
            #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"ocs-external-rgw-lb","namespace":"default"},"spec":{"ports":[{"port":80}]}}"#
        #expect(
            try cluster.call(
                "PATCH", "/api/v1/namespaces/default/services/ocs-external-rgw-lb?fieldManager=kubectl", json: foreign,
                contentType: "application/apply-patch+yaml"
            ).status == 201)
        let refused = try push()
        #expect(refused.status == 207)
        #expect(actions(refused).contains("Service/ocs-external-rgw-lb:conflict"))
        #expect(try cluster.object("Endpoints", "ocs-external-rgw-lb") == nil)
        let adopted = try push(#"{"clusters":["token"],"adopt":true}"#)
        #expect(adopted.status == 200, "\(adopted.text)")
        #expect(actions(adopted).contains("Service/ocs-external-rgw-lb:configured"))
    }

    @Test func retriesServerErrorsRateLimitsAndDroppedConnections() throws {
        try cluster.call(
            "POST", "/_fake/faults",
            json:
                #"[{"method":"PATCH","path":"/services/","status":500,"times":2},{"method":"PATCH","path":"/endpoints/","status":429,"retryAfter":1,"times":1},{"method":"PATCH","path":"/endpointslices/","drop":true,"times":1}]"#
        )
        let response = try push()
        #expect(response.status == 200, "\(response.text)")
        // A cluster that keeps failing with 503: the push waits for the retries up to ?timeout=,
        // then answers 202 pointing at the status, which names the API server's reason.
        try cluster.call("POST", "/_fake/faults", json: #"[{"method":"GET","path":"/services/","status":503,"times":1000}]"#)
        let failing = try client.request("POST", "/v1/services/default/ocs-external-rgw-lb/push?timeout=2", json: #"{"clusters":["token"]}"#)
        #expect(failing.status == 202, "\(failing.text)")
        #expect(failing.header("Location") == "/v1/services/default/ocs-external-rgw-lb/status")
        let status = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/status")
        let item = try #require((status.json?["items"] as? [[String: Any]])?.first)
        #expect(item["state"] as? String == "failing", "\(status.text)")
        #expect((item["lastError"] as? [String: Any])?["reason"] as? String == "InternalError")
        try cluster.call("POST", "/_fake/faults", json: "[]")
    }

    @Test func diffsLiveObjectsByContent() throws {
        _ = try push()
        let clean = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/diff?cluster=token")
        #expect(clean.json?["inSync"] as? Bool == true, "\(clean.text)")
        // Someone edits the Endpoints behind the registry's back.
        let edited =
            #"{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"ocs-external-rgw-lb","namespace":"default","labels":{"app.kubernetes.io/managed-by":"endpoint-registry","endpointslice.kubernetes.io/skip-mirror":"true"}},"subsets":[{"addresses":[{"ip":"192.168.7.50"}],"ports":[{"port":8080}]}]}"#
        #expect(
            try cluster.call(
                "PATCH", "/api/v1/namespaces/default/endpoints/ocs-external-rgw-lb?fieldManager=kubectl&force=true", json: edited,
                contentType: "application/apply-patch+yaml"
            ).status == 200)
        let drifted = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/diff?cluster=token")
        #expect(drifted.json?["inSync"] as? Bool == false)
        let fields = (drifted.json?["drift"] as? [[String: Any]])?.compactMap { $0["field"] as? String }
        #expect(fields == ["subsets"])
        #expect(try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/diff").status == 400)
        #expect(try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/diff?cluster=nope").status == 400)
    }

    @Test func cascadeDeletesFromEveryClusterItWasPushedTo() throws {
        _ = try push(#"{"clusters":["token","cert"]}"#)
        #expect(try cluster.objects().count == 4)
        let deleted = try client.request("DELETE", "/v1/services/default/ocs-external-rgw-lb?cascade=true")
        #expect(deleted.status == 204, "\(deleted.text)")
        #expect(try cluster.objects().isEmpty)
        #expect(try client.request("GET", "/v1/services/default/ocs-external-rgw-lb").status == 404)
    }

    /// A push still applying when its service is deleted: the delete waits for it and deletes
    /// what it created; with `cascade=false` the objects stay and nothing is left tracked (a
    /// row left behind made the reconciler delete them at the next start, or showed the old
    /// push as the status of a service created again under the name).
    @Test func aDeleteDuringAPushDeletesWhatThePushCreatesOrKeepsItUntracked() throws {
        for cascade in [true, false] {
            if !cascade { #expect(try client.request("POST", "/v1/services", json: ceph).status == 201) }
            // The first write to the cluster waits: the push is still applying when the delete comes.
            try cluster.call("POST", "/_fake/faults", json: #"[{"method":"PATCH","path":"/services/","delay":1.5,"times":1}]"#)
            let pushed = Mutex<Int?>(nil)
            let pushing = Thread { [port = server.port] in
                let status = try? RawHTTPClient(port: port).request(
                    "POST", "/v1/services/default/ocs-external-rgw-lb/push?timeout=20", json: #"{"clusters":["token"]}"#
                ).status
                pushed.withLock { $0 = status }
            }
            pushing.start()
            Thread.sleep(forTimeInterval: 0.5)
            let deleted = try client.request("DELETE", "/v1/services/default/ocs-external-rgw-lb" + (cascade ? "" : "?cascade=false"))
            #expect(deleted.status == (cascade ? 204 : 200), "\(deleted.text)")
            if !cascade { #expect(deleted.json?["keptIn"] as? [String] == ["token"]) }
            let deadline = Date().addingTimeInterval(20)
            while pushed.withLock({ $0 }) == nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            #expect(pushed.withLock { $0 } != nil)
            Thread.sleep(forTimeInterval: 0.5)
            let left = try cluster.objects().count
            #expect((left == 0) == cascade, "cascade=\(cascade): \(left) objects")
            // Created again under the name: no state of the old registration shows.
            #expect(try client.request("POST", "/v1/services", json: ceph).status == 201)
            let status = try client.request("GET", "/v1/services/default/ocs-external-rgw-lb/status")
            #expect((status.json?["items"] as? [[String: Any]])?.isEmpty == true, "\(status.text)")
            #expect(try client.request("DELETE", "/v1/services/default/ocs-external-rgw-lb?cascade=false").status == 200)
        }
    }

    @Test func pushesManyServicesWithOneSummary() throws {
        for index in 0..<5 {
            _ = try client.request(
                "POST", "/v1/services",
                json: #"{"namespace":"bulk","name":"s\#(index)","ports":[{"port":80}],"addresses":[{"ip":"10.1.0.\#(index + 1)"}]}"#)
        }
        let response = try client.request("POST", "/v1/push?namespace=bulk", json: #"{"clusters":["token"]}"#)
        #expect(response.status == 200, "\(response.text)")
        #expect(response.json?["services"] as? Int == 5 && response.json?["failed"] as? Int == 0)
        #expect(try cluster.objects().filter { ($0["metadata"] as? [String: Any])?["namespace"] as? String == "bulk" }.count == 15)
    }
}
