import Foundation
import HTTPServer
import KubernetesClient
import RegistryAPI
import RegistryCore
import TestSupport
import Testing

private let rgw =
    #"{"namespace":"storage","name":"rgw","description":"S3","labels":{"app":"ceph"},"ports":[{"port":80}],"addresses":[{"ip":"192.168.7.50","port":8080},{"ip":"192.168.7.51","port":8080}],"endpointsMode":"endpointslices","clusters":["token"]}"#

/// The reconciler against the fake API server, through the real server: bound services appear,
/// stay and are repaired without any push.
@Suite(.serialized) struct ReconcileEndToEndTests {
    let cluster: FakeCluster
    let server: TestServer
    let client: RawHTTPClient

    init() throws {
        let cluster = try FakeCluster()
        self.cluster = cluster
        server = try TestServer(cluster: cluster) { configuration in
            configuration.resyncIntervalSeconds = 1
            configuration.shutdownGraceSeconds = 2
        }
        client = try server.client()
    }

    private func state(_ service: String = "storage/rgw", cluster name: String = "token") throws -> [String: Any]? {
        let status = try client.request("GET", "/v1/services/\(service)/status")
        return (status.json?["items"] as? [[String: Any]])?.first { $0["cluster"] as? String == name }
    }

    private func slices() throws -> [[String: Any]] {
        try cluster.objects().filter { $0["kind"] as? String == "EndpointSlice" }
    }

    @Test func aBoundServiceAppearsAndDriftIsRepairedWithinAResync() throws {
        #expect(try client.request("POST", "/v1/services", json: rgw).status == 201)
        #expect(try eventually { try state()?["state"] as? String == "synced" })
        #expect(try state()?["revision"] as? Int == 1)
        #expect(try state()?["lastSyncTime"] as? String != nil)
        #expect(try state()?["outOfDate"] as? Bool == false)
        let slice = try #require(try slices().first)
        let sliceName = try #require((slice["metadata"] as? [String: Any])?["name"] as? String)
        let slicePath = "/apis/discovery.k8s.io/v1/namespaces/storage/endpointslices/\(sliceName)"

        // A slice deleted in the cluster comes back.
        #expect(try cluster.call("DELETE", slicePath).status == 200)
        #expect(try eventually { try cluster.object("EndpointSlice", sliceName) != nil })

        // A label edited in the cluster is set back.
        #expect(
            try cluster.call(
                "PATCH", "/api/v1/namespaces/storage/services/rgw", json: #"{"metadata":{"labels":{"app":"other"}}}"#,
                contentType: "application/merge-patch+json"
            ).status == 200)
        #expect(
            try eventually {
                ((try cluster.object("Service", "rgw")?["metadata"] as? [String: Any])?["labels"] as? [String: String])?["app"] == "ceph"
            })

        // An address edited in the cluster is set back.
        #expect(
            try cluster.call(
                "PATCH", slicePath, json: #"{"endpoints":[{"addresses":["192.168.7.99"],"conditions":{"ready":true}}]}"#,
                contentType: "application/merge-patch+json"
            ).status == 200)
        #expect(
            try eventually {
                let endpoints = (try cluster.object("EndpointSlice", sliceName)?["endpoints"] as? [[String: Any]]) ?? []
                return endpoints.compactMap { ($0["addresses"] as? [String])?.first }.sorted() == ["192.168.7.50", "192.168.7.51"]
            })
        #expect(try eventually { try state()?["state"] as? String == "synced" })
        let diff = try client.request("GET", "/v1/services/storage/rgw/diff?cluster=token")
        #expect(diff.json?["inSync"] as? Bool == true, "\(diff.text)")

        // The resync of an unchanged cluster only reads, with label-selected lists.
        _ = try cluster.call("POST", "/_fake/reset-requests")
        Thread.sleep(forTimeInterval: 2.5)
        let log = try cluster.call("GET", "/_fake/requests").body
        #expect(!log.contains("\"PATCH\"") && !log.contains("\"DELETE\""), "\(log.prefix(400))")
        #expect(log.contains("labelSelector=app%2Ekubernetes%2Eio%2Fmanaged%2Dby%3Dendpoint%2Dregistry"))
        #expect(log.contains("labelSelector=endpointslice%2Ekubernetes%2Eio%2Fmanaged%2Dby%3Dendpoint%2Dregistry"))

        // An address change reaches the cluster without a push.
        #expect(try client.request("POST", "/v1/services/storage/rgw/addresses", json: #"{"ip":"192.168.7.52","port":8080}"#).status == 201)
        #expect(
            try eventually {
                let endpoints = (try cluster.object("EndpointSlice", sliceName)?["endpoints"] as? [[String: Any]]) ?? []
                return endpoints.count == 3
            })
        #expect(try eventually { try state()?["revision"] as? Int == 2 && state()?["state"] as? String == "synced" })

        // Unbinding removes our objects there.
        #expect(
            try client.request(
                "PATCH", "/v1/services/storage/rgw", headers: ["Content-Type": "application/merge-patch+json"], json: #"{"clusters":[]}"#
            ).status == 200)
        #expect(try eventually { try cluster.objects().isEmpty })
        #expect(try eventually { try state() == nil })
    }

    @Test func mirroredSlicesAreLeftAloneAndTheServiceStaysInSync() throws {
        let body = rgw.replacingOccurrences(of: #""endpointsMode":"endpointslices""#, with: #""endpointsMode":"endpoints""#)
        #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        #expect(try eventually { try state()?["state"] as? String == "synced" })
        // The fake's mirroring controller made a slice with every label of our Endpoints.
        let mirrored = try #require(try slices().first)
        let labels = (mirrored["metadata"] as? [String: Any])?["labels"] as? [String: String]
        #expect(labels?["app.kubernetes.io/managed-by"] == "endpoint-registry")
        #expect(labels?["endpointslice.kubernetes.io/managed-by"] == "endpointslicemirroring-controller.k8s.io")
        Thread.sleep(forTimeInterval: 2.5)
        #expect(try slices().count == 1)
        let log = try cluster.call("GET", "/_fake/requests").body
        #expect(!log.contains("endpointslices/rgw-"), "a mirrored slice was touched")
        #expect(try state()?["state"] as? String == "synced")
        // Switching to slices deletes our Endpoints (and with it the mirrored slice).
        #expect(
            try client.request(
                "PATCH", "/v1/services/storage/rgw", headers: ["Content-Type": "application/merge-patch+json"],
                json: #"{"endpointsMode":"endpointslices"}"#
            ).status == 200)
        #expect(try eventually { try cluster.object("Endpoints", "rgw") == nil })
        #expect(
            try eventually {
                try slices().map { ((($0["metadata"] as? [String: Any])?["labels"] as? [String: String])?["endpointslice.kubernetes.io/managed-by"]) }
                    == ["endpoint-registry"]
            })
    }

    /// Backend ports 30687,16171 and 5814,57961 hash alike (FNV-1a-32): two slices all the same,
    /// written once, kept in sync by the resyncs, and the renamed one pruned when a port set goes.
    @Test func portSetsWhoseHashesCollideGetTwoSlicesThatStayInSync() throws {
        let body =
            #"{"namespace":"col","name":"c","ports":[{"name":"a","port":80},{"name":"b","port":81}],"addresses":[{"ip":"192.0.2.1","ports":{"a":30687,"b":16171}},{"ip":"192.0.2.2","ports":{"a":5814,"b":57961}}],"endpointsMode":"endpointslices","clusters":["token"]}"#
        #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        #expect(try eventually { try state("col/c")?["state"] as? String == "synced" })
        func sliceIPs() throws -> [String: [String]] {
            var byName: [String: [String]] = [:]
            for slice in try slices() {
                let name = (slice["metadata"] as? [String: Any])?["name"] as? String ?? ""
                byName[name] = ((slice["endpoints"] as? [[String: Any]]) ?? []).flatMap { ($0["addresses"] as? [String]) ?? [] }
            }
            return byName
        }
        #expect(try sliceIPs() == ["c-ipv4-2e0e0067": ["192.0.2.2"], "c-ipv4-2e0e0067-c1": ["192.0.2.1"]])
        // Two resyncs later nothing was written again (no slice flipping between two contents).
        _ = try cluster.call("POST", "/_fake/reset-requests")
        Thread.sleep(forTimeInterval: 2.5)
        let log = try cluster.call("GET", "/_fake/requests").body
        #expect(!log.contains("\"PATCH\"") && !log.contains("\"DELETE\""), "\(log.prefix(400))")
        #expect(try state("col/c")?["state"] as? String == "synced")
        let diff = try client.request("GET", "/v1/services/col/c/diff?cluster=token")
        #expect(diff.json?["inSync"] as? Bool == true, "\(diff.text)")
        // Without 192.0.2.2 the other port set takes the plain name; the `-c1` slice is pruned.
        #expect(
            try client.request(
                "PATCH", "/v1/services/col/c", headers: ["Content-Type": "application/merge-patch+json"],
                json: #"{"addresses":[{"ip":"192.0.2.1","ports":{"a":30687,"b":16171}}]}"#
            ).status == 200)
        #expect(try eventually { try sliceIPs() == ["c-ipv4-2e0e0067": ["192.0.2.1"]] })
        #expect(try eventually { try state("col/c")?["state"] as? String == "synced" && state("col/c")?["revision"] as? Int == 2 })
    }

    /// The GET of another owner's Service answered 200 with JSON and trailing bytes, or with a
    /// body beyond the bound: the sync fails (status failing, retried), nothing is written over
    /// the object; answered properly again, it is the conflict it always was.
    @Test func aMalformedOrOversizedAnswerFailsTheSyncInsteadOfMeaningAbsent() throws {
        #expect(try cluster.applyForeignService(namespace: "garb", name: "garb", selector: "x") == 201)
        let live = try cluster.call("GET", "/api/v1/namespaces/garb/services/garb").body
        let garbage = String(decoding: JSONWriter.bytes(.string(live + "trailing-garbage")), as: UTF8.self)
        try cluster.call("POST", "/_fake/faults", json: #"[{"method":"GET","path":"/services/garb$","body":\#(garbage),"times":100000}]"#)
        _ = try cluster.call("POST", "/_fake/reset-requests")
        let body = #"{"namespace":"garb","name":"garb","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.1"}],"clusters":["token"]}"#
        #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        #expect(try eventually { try state("garb/garb")?["state"] as? String == "failing" })
        let lastError = try #require(try state("garb/garb")?["lastError"] as? [String: Any])
        #expect(lastError["reason"] as? String == "InvalidResponse", "\(lastError)")
        #expect((lastError["detail"] as? String)?.contains("Service/garb/garb on cluster token") == true, "\(lastError)")
        #expect(try state("garb/garb")?["nextAttemptTime"] as? String != nil)
        let log = try cluster.call("GET", "/_fake/requests").body
        #expect(!log.contains("\"PATCH\""), "\(log.prefix(400))")
        #expect((try cluster.object("Service", "garb")?["spec"] as? [String: Any])?["selector"] != nil)

        // A body beyond the bound: aborted, the same failure with its own reason.
        try cluster.call(
            "POST", "/_fake/faults",
            json: #"[{"method":"GET","path":"/services/garb$","bodyBytes":\#(KubernetesAPI.maxObjectResponseBytes + 4096),"times":100000}]"#)
        #expect(
            try eventually {
                ((try state("garb/garb")?["lastError"] as? [String: Any])?["reason"] as? String) == "ResponseTooLarge"
            })
        #expect((try cluster.object("Service", "garb")?["spec"] as? [String: Any])?["selector"] != nil)

        // Answered properly: the conflict with the other owner, as always.
        try cluster.call("POST", "/_fake/faults", json: "[]")
        let pushed = try client.request("POST", "/v1/services/garb/garb/push", json: "{}")
        #expect(pushed.text.contains("exists and is not managed by endpoint-registry"), "\(pushed.text)")
    }

    @Test func failingCarriesTheAPIServersReasonAndTheClusterStatusCountsIt() throws {
        let body = rgw.replacingOccurrences(of: #""clusters":["token"]"#, with: #""clusters":["readonly"]"#)
        #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        #expect(try eventually { try state(cluster: "readonly")?["state"] as? String == "failing" })
        let failing = try #require(try state(cluster: "readonly"))
        let lastError = try #require(failing["lastError"] as? [String: Any])
        #expect(lastError["reason"] as? String == "Forbidden")
        #expect(lastError["code"] as? Int == 403)
        #expect((failing["attempts"] as? Int ?? 0) >= 1)
        #expect(failing["nextAttemptTime"] as? String != nil)
        let clusterStatus = try client.request("GET", "/v1/clusters/readonly/status")
        #expect((clusterStatus.json?["counts"] as? [String: Int])?["failing"] == 1, "\(clusterStatus.text)")
        #expect(((clusterStatus.json?["notSynced"] as? [[String: Any]])?.first?["name"] as? String) == "rgw")
        #expect(try client.request("GET", "/v1/clusters/nope/status").status == 404)
        let metrics = try client.request("GET", "/metrics").text
        #expect(metrics.contains(#"endpoint_registry_services_not_synced{cluster="readonly"} 1"#), "\(metrics)")
        #expect(metrics.contains("endpoint_registry_reconcile_retries_total"))
    }

    @Test func aPushWithNoBoundClusterIsRefusedListingTheKnownOnes() throws {
        let body = rgw.replacingOccurrences(of: #","clusters":["token"]"#, with: "")
        #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        let refused = try client.request("POST", "/v1/services/storage/rgw/push", json: "{}")
        #expect(refused.status == 422, "\(refused.text)")
        #expect(refused.problemFields == ["clusters"])
        #expect(refused.text.contains("known: token, cert, readonly, tokenfile, untrusted") || refused.text.contains("known: "))
        #expect(try cluster.objects().isEmpty)
        // Named explicitly, it goes there once.
        let pushed = try client.request("POST", "/v1/services/storage/rgw/push", json: #"{"clusters":["token"],"dryRun":true}"#)
        #expect(pushed.status == 200, "\(pushed.text)")
    }

    @Test func adoptingAServiceWithASelectorRemovesIt() throws {
        #expect(try cluster.applyForeignService(namespace: "storage", name: "rgw", selector: "rgw") == 201)
        // The endpoints controller owns the Endpoints of a Service with a selector.
        #expect(
            ((try cluster.object("Endpoints", "rgw")?["metadata"] as? [String: Any])?["labels"] as? [String: String])?[
                "endpoints.kubernetes.io/managed-by"] == "endpoint-controller")
        #expect(try client.request("POST", "/v1/services", json: rgw).status == 201)
        #expect(try eventually { try state()?["state"] as? String == "failing" })
        let detail = ((try state()?["lastError"] as? [String: Any])?["detail"] as? String) ?? ""
        #expect(detail.contains("selector (app=rgw)") && detail.contains("endpoints controller"), "\(detail)")
        let adopted = try client.request("POST", "/v1/services/storage/rgw/push", json: #"{"adopt":true}"#)
        #expect(adopted.status == 200, "\(adopted.text)")
        #expect(adopted.text.contains("removed spec.selector (app=rgw)"))
        let spec = try #require(try cluster.object("Service", "rgw")?["spec"] as? [String: Any])
        #expect(spec["selector"] == nil)
        #expect(try eventually { try state()?["state"] as? String == "synced" })
    }

    @Test func clusterIPToHeadlessIsRecreatedAndDeleteCascades() throws {
        #expect(try client.request("POST", "/v1/services", json: rgw).status == 201)
        #expect(try eventually { try state()?["state"] as? String == "synced" })
        #expect(
            try client.request(
                "PATCH", "/v1/services/storage/rgw", headers: ["Content-Type": "application/merge-patch+json"], json: #"{"type":"Headless"}"#
            ).status == 200)
        #expect(try eventually { (try cluster.object("Service", "rgw")?["spec"] as? [String: Any])?["clusterIP"] as? String == "None" })
        #expect(try eventually { try state()?["state"] as? String == "synced" && state()?["revision"] as? Int == 2 })
        let deleted = try client.request("DELETE", "/v1/services/storage/rgw")
        #expect(deleted.status == 204, "\(deleted.text)")
        #expect(try cluster.objects().isEmpty)
    }

    @Test func deleteWithoutCascadeKeepsTheObjectsAndSaysSo() throws {
        #expect(try client.request("POST", "/v1/services", json: rgw).status == 201)
        #expect(try eventually { try state()?["state"] as? String == "synced" })
        let deleted = try client.request("DELETE", "/v1/services/storage/rgw?cascade=false")
        #expect(deleted.status == 200)
        #expect(deleted.json?["keptIn"] as? [String] == ["token"])
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try cluster.object("Service", "rgw") != nil)
    }

    @Test func kubectlApplyOfTheRenderingFindsNothingToChange() throws {
        guard let kubectlPath = Paths.kubectl else {
            print("skipped: no kubectl (set KUBECTL, or run scripts/test, which installs one into .venv)")
            return
        }
        let body = rgw.replacingOccurrences(of: #""endpointsMode":"endpointslices""#, with: #""endpointsMode":"both""#)
        #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        #expect(try eventually { try state()?["state"] as? String == "synced" })
        func kubectl(_ arguments: [String]) throws -> (status: Int32, output: String) {
            let process = Process()
            process.executableURL = kubectlPath
            process.arguments = ["--kubeconfig", cluster.kubeconfig, "--context", "token"] + arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        let manifests = try client.request("GET", "/v1/services/storage/rgw/manifests?format=yaml").text
        let file = cluster.directory.appending(path: "rgw.yaml")
        try manifests.write(to: file, atomically: true, encoding: .utf8)
        // Server-side apply by another manager after the registry: no conflict.
        let serverSide = try kubectl(["apply", "--server-side", "--field-manager=gitops", "--validate=false", "-f", file.path()])
        #expect(serverSide.status == 0, "\(serverSide.output)")
        #expect(!serverSide.output.contains("conflict"), "\(serverSide.output)")
        // And the registry, after kubectl, finds its objects unchanged.
        let again = try client.request("POST", "/v1/services/storage/rgw/push", json: "{}")
        #expect(again.status == 200, "\(again.text)")
        let actions = ((again.json?["clusters"] as? [[String: Any]])?.first?["objects"] as? [[String: Any]])?.compactMap { $0["action"] as? String }
        #expect(actions?.allSatisfy { $0 == "unchanged" } == true, "\(again.text)")
        let diff = try client.request("GET", "/v1/services/storage/rgw/diff?cluster=token")
        #expect(diff.json?["inSync"] as? Bool == true, "\(diff.text)")

        // Client-side apply of a rendering, twice: the second finds nothing to change (the
        // rendering spells the values the API server defaults).
        let gitops = body.replacingOccurrences(of: #""namespace":"storage""#, with: #""namespace":"gitops""#)
            .replacingOccurrences(of: #""clusters":["token"]"#, with: #""clusters":[]"#)
        #expect(try client.request("POST", "/v1/services", json: gitops).status == 201)
        let gitopsFile = cluster.directory.appending(path: "gitops.yaml")
        try client.request("GET", "/v1/services/gitops/rgw/manifests?format=yaml").text.write(to: gitopsFile, atomically: true, encoding: .utf8)
        let created = try kubectl(["apply", "--validate=false", "-f", gitopsFile.path()])
        #expect(created.status == 0 && created.output.contains("created"), "\(created.output)")
        let unchanged = try kubectl(["apply", "--validate=false", "-f", gitopsFile.path()])
        #expect(unchanged.status == 0, "\(unchanged.output)")
        let lines = unchanged.output.split(separator: "\n").filter { !$0.hasPrefix("Warning") }
        #expect(!lines.isEmpty && lines.allSatisfy { $0.hasSuffix(" unchanged") }, "\(unchanged.output)")
    }
}

/// A black-holed cluster delays no request: with 2 worker threads, 20 pushes hang on it while
/// 8 keep-alive clients each get `/healthz` answered (a liveness bound, generous).
@Suite(.serialized) struct DeadClusterLivenessTests {
    @Test func requestsAreAnsweredWhilePushesHangOnABlackHoledCluster() throws {
        let cluster = try FakeCluster()
        let server = try TestServer { configuration in
            configuration.kubeconfigPaths = [cluster.kubeconfig]
            configuration.inCluster = false
            configuration.http.threads = 2
            configuration.shutdownGraceSeconds = 1
        }
        let setup = try server.client()
        for index in 0..<20 {
            let body = #"{"namespace":"dead","name":"s\#(index)","ports":[{"port":80}],"addresses":[{"ip":"10.1.0.\#(index + 1)"}]}"#
            #expect(try setup.request("POST", "/v1/services", json: body).status == 201)
        }
        try cluster.call("POST", "/_fake/faults", json: #"[{"path":"/namespaces/","blackhole":true,"times":100000}]"#)
        var pushers: [RawHTTPClient] = []
        for index in 0..<20 {
            let pusher = try server.client()
            let body = #"{"clusters":["token"]}"#
            try pusher.send(
                Array(
                    "POST /v1/services/dead/s\(index)/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                        .utf8))
            pushers.append(pusher)
        }
        Thread.sleep(forTimeInterval: 0.5)
        let clients = try (0..<8).map { _ in try server.client() }
        for round in 0..<2 {
            for (index, client) in clients.enumerated() {
                let started = Date()
                let response = try client.request("GET", "/healthz")
                #expect(response.status == 200)
                #expect(Date().timeIntervalSince(started) < 2, "client \(index) round \(round) waited \(Date().timeIntervalSince(started)) s")
            }
        }
        // A new connection is answered too.
        let started = Date()
        #expect(try server.client().request("GET", "/readyz").status == 200)
        #expect(Date().timeIntervalSince(started) < 2)
        withExtendedLifetime(pushers) {}
    }
}

/// The reconcile state is durable: work left unfinished by a killed process is picked up by the
/// next one on the same database, without any request.
@Suite(.serialized) struct ReconcileRestartTests {
    private func start(database: String, kubeconfig: String) throws -> (Process, UInt16) {
        let log = URL(fileURLWithPath: database + ".\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path(), contents: nil)
        let process = Process()
        process.executableURL = Paths.binary
        process.arguments = [
            "serve", "--port", "0", "--database", database, "--kubeconfig", kubeconfig, "--default-clusters", "token", "--log-level", "notice",
        ]
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: "port="), let port = UInt16(text[range.upperBound...].prefix { $0.isNumber }) {
                return (process, port)
            }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw ClientError.malformed("server did not start: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    @Test func aRestartResumesUnfinishedWork() throws {
        let cluster = try FakeCluster()
        let directory = FileManager.default.temporaryDirectory.appending(path: "registry-restart-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let database = directory.appending(path: "registry.sqlite").path()
        // The cluster refuses every write while the first process runs.
        try cluster.call("POST", "/_fake/faults", json: #"[{"method":"PATCH","path":"/namespaces/","status":503,"times":100000}]"#)
        let (first, firstPort) = try start(database: database, kubeconfig: cluster.kubeconfig)
        let client = try RawHTTPClient(port: firstPort)
        #expect(
            try client.request(
                "POST", "/v1/services", json: #"{"namespace":"storage","name":"rgw","ports":[{"port":80}],"addresses":[{"ip":"192.168.7.50"}]}"#
            ).status == 201)
        let failing = eventually {
            let status = try? client.request("GET", "/v1/services/storage/rgw/status")
            return ((status?.json?["items"] as? [[String: Any]])?.first?["state"] as? String) == "failing"
        }
        #expect(failing)
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(try cluster.object("Service", "rgw") == nil)
        try cluster.call("POST", "/_fake/faults", json: "[]")

        let (second, secondPort) = try start(database: database, kubeconfig: cluster.kubeconfig)
        defer {
            second.terminate()
            second.waitUntilExit()
        }
        let again = try RawHTTPClient(port: secondPort)
        #expect(try eventually { try cluster.object("Service", "rgw") != nil })
        #expect(
            eventually {
                let status = try? again.request("GET", "/v1/services/storage/rgw/status")
                return ((status?.json?["items"] as? [[String: Any]])?.first?["state"] as? String) == "synced"
            })
    }
}
