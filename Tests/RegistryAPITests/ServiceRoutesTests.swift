import Foundation
import TestSupport
import Testing

private let rgw =
    #"{"name":"rgw","namespace":"storage","labels":{"app":"ceph-rgw","tier":"storage"},"ports":[{"port":80}],"addresses":[{"ip":"192.168.7.50","port":8080},{"ip":"192.168.7.50","port":8081}]}"#

@Suite struct ServiceRoutesTests {
    let server: TestServer
    let client: RawHTTPClient

    init() throws {
        server = try TestServer()
        client = try server.client()
    }

    /// Changing `type` by PATCH or by PUT of the document read back works both ways: what only
    /// the old type used and the request left as it was is dropped (the API server's update
    /// strategy, `dropTypeDependentFields`).
    @Test func typeChangesDropWhatOnlyTheOldTypeUsed() throws {
        #expect(try client.request("POST", "/v1/services", json: #"{"name":"flip","ports":[{"port":80}]}"#).status == 201)
        let toExternalName = try client.request(
            "PATCH", "/v1/services/default/flip", headers: ["Content-Type": "application/merge-patch+json"],
            body: Array(#"{"type":"ExternalName","externalName":"db.example.com","ports":null}"#.utf8))
        #expect(toExternalName.status == 200, "\(toExternalName.text)")
        #expect(toExternalName.json?["internalTrafficPolicy"] == nil)
        let back = try client.request(
            "PATCH", "/v1/services/default/flip", headers: ["Content-Type": "application/merge-patch+json"],
            body: Array(#"{"type":"ClusterIP","externalName":null,"ports":[{"port":80}]}"#.utf8))
        #expect(back.status == 200, "\(back.text)")
        #expect(back.json?["internalTrafficPolicy"] as? String == "Cluster")
        // PUT of the document as read, with another type: the same.
        #expect(
            try client.request(
                "PATCH", "/v1/services/default/flip", headers: ["Content-Type": "application/merge-patch+json"],
                body: Array(#"{"type":"LoadBalancer"}"#.utf8)
            ).status == 200)
        var document = try #require(try client.request("GET", "/v1/services/default/flip").json)
        #expect(document["allocateLoadBalancerNodePorts"] as? Bool == true)
        document["type"] = "ClusterIP"
        let replaced = try client.request(
            "PUT", "/v1/services/default/flip", json: String(decoding: try JSONSerialization.data(withJSONObject: document), as: UTF8.self))
        #expect(replaced.status == 200, "\(replaced.text)")
        #expect(replaced.json?["allocateLoadBalancerNodePorts"] == nil && replaced.json?["externalTrafficPolicy"] == nil)
        // A type-dependent value the request sets itself is still refused.
        let explicit = try client.request(
            "PATCH", "/v1/services/default/flip", headers: ["Content-Type": "application/merge-patch+json"],
            body: Array(#"{"type":"ExternalName","externalName":"db.example.com","ports":null,"internalTrafficPolicy":"Local"}"#.utf8))
        #expect(explicit.status == 422)
    }

    @Test func createsAndReadsWithLocationAndETag() throws {
        let created = try client.request("POST", "/v1/services", json: rgw)
        #expect(created.status == 201)
        #expect(created.header("Location") == "/v1/services/storage/rgw")
        let etag = try #require(created.header("ETag"))
        #expect(created.json?["revision"] as? Int == 1)
        #expect(created.header("Content-Type") == "application/json")
        let read = try client.request("GET", "/v1/services/storage/rgw")
        #expect(read.status == 200)
        #expect(read.body == created.body)
        #expect(read.header("ETag") == etag)
        let notModified = try client.request("GET", "/v1/services/storage/rgw", headers: ["If-None-Match": etag])
        #expect(notModified.status == 304)
        #expect(notModified.body.isEmpty)
        let modified = try client.request("GET", "/v1/services/storage/rgw", headers: ["If-None-Match": "\"0-x\""])
        #expect(modified.status == 200)
    }

    /// `default/kubernetes` is the cluster's API server Service: refused on every way in, with
    /// the rule the import applies.
    @Test func refusesTheClustersOwnAPIServerService() throws {
        let body =
            #"{"namespace":"default","name":"kubernetes","ports":[{"name":"https","port":443,"targetPort":6443}],"addresses":[{"ip":"192.0.2.1","port":6443}]}"#
        for (method, path) in [
            ("POST", "/v1/services?dryRun=true"), ("POST", "/v1/services"), ("PUT", "/v1/services/default/kubernetes"),
            ("PUT", "/v1/services/default/kubernetes?dryRun=true"),
        ] {
            let refused = try client.request(method, path, json: body)
            #expect(refused.status == 422, "\(method) \(path): \(refused.text)")
            #expect(refused.problemFields == ["name"], "\(method) \(path): \(refused.text)")
            #expect(refused.text.contains("default/kubernetes is the cluster's own API server Service"))
        }
        // Without a namespace the default namespace is meant.
        let implicit = try client.request("POST", "/v1/services", json: #"{"name":"kubernetes","ports":[{"port":443}]}"#)
        #expect(implicit.status == 422 && implicit.problemFields == ["name"], "\(implicit.text)")
        let imported = try client.request(
            "POST", "/v1/import", headers: ["Content-Type": "application/yaml"],
            body: Array("apiVersion: v1\nkind: Service\nmetadata: {name: kubernetes}\nspec: {ports: [{port: 443}]}\n".utf8))
        #expect(imported.text.contains("default/kubernetes is the cluster's own API server Service"), "\(imported.text)")
        #expect(try client.request("GET", "/v1/services/default/kubernetes").status == 404)
        // Elsewhere the name is an ordinary one.
        #expect(try client.request("POST", "/v1/services", json: #"{"namespace":"apps","name":"kubernetes","ports":[{"port":443}]}"#).status == 201)
    }

    /// The summary counts the errors exactly, or says "at least" when a list was refused unread.
    @Test func theProblemSummaryCountsExactlyOrSaysAtLeast() throws {
        let two = try client.request(
            "POST", "/v1/services", json: #"{"name":"web","ports":[{"port":80},{"port":81}],"addresses":[{"ip":"127.0.0.1"}]}"#)
        #expect(two.status == 422)
        #expect((two.json?["detail"] as? String)?.hasPrefix("3 field errors: ") == true, "\(two.text)")
        for (count, detail) in [
            (100_000, "100000 field errors: "), (100_001, "at least 100001 field errors "), (150_000, "at least 100001 field errors "),
        ] {
            let addresses = Array(repeating: "{}", count: count).joined(separator: ",")
            let many = try client.request("POST", "/v1/services", json: #"{"name":"web","ports":[{"port":80}],"addresses":[\#(addresses)]}"#)
            #expect(many.status == 422)
            #expect((many.json?["detail"] as? String)?.hasPrefix(detail) == true, "\(count): \(many.text.prefix(300))")
            #expect(many.json?["omittedErrors"] as? Int == (count == 100_000 ? 100_000 : 100_001) - 100)
        }
    }

    @Test func refusesADuplicate() throws {
        #expect(try client.request("POST", "/v1/services", json: rgw).status == 201)
        let again = try client.request("POST", "/v1/services", json: rgw)
        #expect(again.status == 409)
        #expect(again.header("Content-Type") == "application/problem+json")
        #expect((again.json?["detail"] as? String)?.contains("storage/rgw") == true)
    }

    @Test func reportsEveryInvalidFieldAt422() throws {
        let response = try client.request(
            "POST", "/v1/services", json: #"{"name":"Bad","ports":[{"port":0},{"name":"x","port":1}],"addresses":[{"ip":"127.0.0.1"}]}"#)
        #expect(response.status == 422)
        #expect(response.problemFields == ["name", "ports[0].name", "ports[0].port", "addresses[0].ip"])
        #expect(response.json?["status"] as? Int == 422)
        #expect((response.json?["type"] as? String)?.hasPrefix("urn:problem-type:endpoint-registry:") == true)
    }

    @Test func rejectsMalformedBodiesAndUnknownFieldsAt400() throws {
        let malformed = try client.request("POST", "/v1/services", json: #"{"name": "a",}"#)
        #expect(malformed.status == 400)
        #expect((malformed.json?["detail"] as? String)?.contains("line 1") == true)
        #expect(malformed.json?["line"] as? Int == 1)
        #expect(malformed.json?["column"] as? Int == 14)
        #expect(malformed.problemFields == [""])
        let inPorts = try client.request("POST", "/v1/services", json: #"{"name": "a", "ports": [{"port": 80}, {"port": 8x}]}"#)
        #expect(inPorts.status == 400)
        #expect(inPorts.problemFields == ["ports[1].port"])
        #expect(inPorts.json?["detail"] as? String == "the body is not valid JSON: line 1, column 49 (in ports[1].port): expected ',' or '}'")
        let unknown = try client.request("POST", "/v1/services", json: #"{"name":"a","ports":[{"port":80,"nmae":"x"}]}"#)
        #expect(unknown.status == 400)
        #expect(unknown.problemFields == ["ports[0].nmae"])
        #expect(try client.request("POST", "/v1/services", json: "[]").status == 422)
        #expect(try client.request("POST", "/v1/services", headers: [:], body: [0xFF, 0xFE]).status == 400)
        #expect(try client.request("POST", "/v1/services", headers: [:], body: []).status == 400)
        let deep = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        #expect(try client.request("POST", "/v1/services", json: deep).status == 400)
    }

    @Test func checksMediaTypes() throws {
        let wrong = try client.request("POST", "/v1/services", headers: ["Content-Type": "text/plain"], body: Array(rgw.utf8))
        #expect(wrong.status == 415)
        let missing = try client.request("POST", "/v1/services", headers: [:], body: Array(rgw.utf8), contentType: nil)
        #expect(missing.status == 415)
        let withCharset = try client.request(
            "POST", "/v1/services", headers: ["Content-Type": "application/json; charset=utf-8"], body: Array(rgw.utf8))
        #expect(withCharset.status == 201)
        let patchAsJSON = try client.request("PATCH", "/v1/services/storage/rgw", json: "{}")
        #expect(patchAsJSON.status == 415)
    }

    @Test func answersUnknownRoutesAndMethods() throws {
        let missing = try client.request("GET", "/v2/nothing")
        #expect(missing.status == 404)
        #expect(missing.header("Content-Type") == "application/problem+json")
        let method = try client.request("PUT", "/v1/services", json: "{}")
        #expect(method.status == 405)
        #expect(method.header("Allow") == "POST, GET, HEAD")
        #expect(try client.request("DELETE", "/healthz").status == 405)
        #expect(try client.request("GET", "/v1/services//x").status == 404)
    }

    @Test func rejectsUnknownQueryParameters() throws {
        let response = try client.request("GET", "/v1/services?nameSpace=x")
        #expect(response.status == 400)
        #expect(response.problemFields == ["nameSpace"])
    }

    @Test func replacesWithPreconditionsAndEchoedRevision() throws {
        let created = try client.request("POST", "/v1/services", json: rgw)
        let etag = try #require(created.header("ETag"))
        var body = try #require(created.json)
        body["description"] = "12 gateways"
        let replaced = try client.request(
            "PUT", "/v1/services/storage/rgw", headers: ["If-Match": etag], body: try JSONSerialization.data(withJSONObject: body).map { $0 })
        #expect(replaced.status == 200)
        #expect(replaced.json?["revision"] as? Int == 2)
        #expect(replaced.json?["description"] as? String == "12 gateways")
        let stale = try client.request("PUT", "/v1/services/storage/rgw", headers: ["If-Match": etag], json: rgw)
        #expect(stale.status == 412)
        let staleRevision = try client.request(
            "PUT", "/v1/services/storage/rgw", body: try JSONSerialization.data(withJSONObject: body).map { $0 })
        #expect(staleRevision.status == 409)
        #expect(staleRevision.problemFields == ["revision"])
        let unchanged = try client.request(
            "PUT", "/v1/services/storage/rgw",
            json:
                #"{"description":"12 gateways","labels":{"app":"ceph-rgw","tier":"storage"},"ports":[{"port":80}],"addresses":[{"ip":"192.168.7.50","port":8080},{"ip":"192.168.7.50","port":8081}]}"#
        )
        #expect(unchanged.status == 200)
        #expect(unchanged.json?["revision"] as? Int == 2)
    }

    @Test func putCreatesAndChecksTheURL() throws {
        let created = try client.request("PUT", "/v1/services/prod/etcd", json: #"{"ports":[{"port":2379}]}"#)
        #expect(created.status == 201)
        #expect(created.header("Location") == "/v1/services/prod/etcd")
        #expect(created.json?["namespace"] as? String == "prod")
        let mismatch = try client.request("PUT", "/v1/services/prod/etcd", json: #"{"name":"other","ports":[{"port":2379}]}"#)
        #expect(mismatch.status == 400)
        #expect(mismatch.problemFields == ["name"])
        let createOnly = try client.request("PUT", "/v1/services/prod/etcd", headers: ["If-None-Match": "*"], json: #"{"ports":[{"port":1}]}"#)
        #expect(createOnly.status == 412)
        let ifMatchMissing = try client.request("PUT", "/v1/services/prod/none", headers: ["If-Match": "*"], json: #"{"ports":[{"port":1}]}"#)
        #expect(ifMatchMissing.status == 412)
        let invalid = try client.request("PUT", "/v1/services/prod/Bad", json: #"{"ports":[{"port":1}]}"#)
        #expect(invalid.status == 422)
    }

    @Test func mergePatches() throws {
        _ = try client.request("POST", "/v1/services", json: rgw)
        let patch = #"{"labels":{"tier":null,"owner":"platform"},"description":"gw"}"#
        let patched = try client.request("PATCH", "/v1/services/storage/rgw", headers: ["Content-Type": "application/merge-patch+json"], json: patch)
        #expect(patched.status == 200)
        #expect(patched.json?["labels"] as? [String: String] == ["app": "ceph-rgw", "owner": "platform"])
        #expect(patched.json?["revision"] as? Int == 2)
        let rename = try client.request(
            "PATCH", "/v1/services/storage/rgw", headers: ["Content-Type": "application/merge-patch+json"], json: #"{"name":"x"}"#)
        #expect(rename.status == 400)
        let invalid = try client.request(
            "PATCH", "/v1/services/storage/rgw", headers: ["Content-Type": "application/merge-patch+json"], json: #"{"ports":[]}"#)
        #expect(invalid.status == 422)
        #expect(invalid.problemFields == ["ports", "addresses[0].port", "addresses[1].port"])
        let staleRevision = try client.request(
            "PATCH", "/v1/services/storage/rgw", headers: ["Content-Type": "application/merge-patch+json"], json: #"{"revision":1}"#)
        #expect(staleRevision.status == 409)
        let missing = try client.request(
            "PATCH", "/v1/services/storage/none", headers: ["Content-Type": "application/merge-patch+json"], json: "{}")
        #expect(missing.status == 404)
        let precondition = try client.request(
            "PATCH", "/v1/services/storage/rgw", headers: ["Content-Type": "application/merge-patch+json", "If-Match": "\"1-x\""], json: "{}")
        #expect(precondition.status == 412)
        #expect(try client.request("GET", "/v1/services/storage/rgw").json?["revision"] as? Int == 2)
    }

    @Test func deletes() throws {
        let created = try client.request("POST", "/v1/services", json: rgw)
        #expect(try client.request("DELETE", "/v1/services/storage/rgw", headers: ["If-Match": "\"9-x\""]).status == 412)
        #expect(try client.request("DELETE", "/v1/services/storage/rgw", headers: ["If-Match": created.header("ETag")!]).status == 204)
        #expect(try client.request("GET", "/v1/services/storage/rgw").status == 404)
        #expect(try client.request("DELETE", "/v1/services/storage/rgw").status == 404)
        let recreated = try client.request("POST", "/v1/services", json: rgw)
        #expect(recreated.header("ETag") != created.header("ETag"))
    }

    @Test func listsWithNamespaceSelectorAndPagination() throws {
        for (namespace, name, tier) in [("a", "x1", "web"), ("a", "x2", "db"), ("b", "x1", "web"), ("b", "x3", "web"), ("c", "x9", "db")] {
            let body = #"{"namespace":"\#(namespace)","name":"\#(name)","labels":{"tier":"\#(tier)"},"ports":[{"port":80}]}"#
            #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        }
        func names(_ response: ClientResponse) -> [String] {
            ((response.json?["items"] as? [[String: Any]]) ?? []).map { "\($0["namespace"]!)/\($0["name"]!)" }
        }
        let all = try client.request("GET", "/v1/services")
        #expect(names(all) == ["a/x1", "a/x2", "b/x1", "b/x3", "c/x9"])
        #expect(all.json?["continue"] == nil)
        #expect(names(try client.request("GET", "/v1/services?namespace=b")) == ["b/x1", "b/x3"])
        #expect(names(try client.request("GET", "/v1/services?labelSelector=tier%3Ddb")) == ["a/x2", "c/x9"])
        #expect(names(try client.request("GET", "/v1/services?labelSelector=tier%20in%20(db)%2C!missing")) == ["a/x2", "c/x9"])
        var collected: [String] = []
        var target = "/v1/services?limit=2&labelSelector=tier%3Dweb"
        while true {
            let page = try client.request("GET", target)
            #expect(page.status == 200)
            collected += names(page)
            guard let token = page.json?["continue"] as? String else { break }
            target = "/v1/services?limit=2&labelSelector=tier%3Dweb&continue=\(token)"
        }
        #expect(collected == ["a/x1", "b/x1", "b/x3"])
        // A token pages only the list and filters it came from.
        let firstPage = try client.request("GET", "/v1/services?limit=2&labelSelector=tier%3Dweb")
        let token = try #require(firstPage.json?["continue"] as? String)
        for other in [
            "/v1/services?limit=2&continue=\(token)", "/v1/services?labelSelector=tier%3Ddb&continue=\(token)",
            "/v1/services?namespace=a&labelSelector=tier%3Dweb&continue=\(token)", "/v1/services/a/x1/history?continue=\(token)",
            "/v1/audit?continue=\(token)",
        ] {
            let refused = try client.request("GET", other)
            #expect(refused.status == 400 && refused.text.contains("continue"), "\(other)")
        }
        for bad in ["limit=0", "limit=abc", "continue=%21%21", "labelSelector=a%20in", "namespace=Bad_NS"] {
            #expect(try client.request("GET", "/v1/services?\(bad)").status == 400, "\(bad)")
        }
    }

    /// Without `limit`, a list answers a page of 500 (the default page size) and a `continue`
    /// for the rest; `limit` is at most 10,000.
    @Test func listsPageByDefault() throws {
        for index in 0..<501 {
            #expect(
                try client.request("POST", "/v1/services", json: #"{"namespace":"many","name":"s\#(index)","ports":[{"port":80}]}"#).status == 201)
        }
        let first = try client.request("GET", "/v1/services?namespace=many")
        #expect((first.json?["items"] as? [Any])?.count == 500)
        let token = try #require(first.json?["continue"] as? String)
        let rest = try client.request("GET", "/v1/services?namespace=many&continue=\(token)")
        #expect((rest.json?["items"] as? [[String: Any]])?.map { $0["name"] as? String } == ["s99"])
        #expect(rest.json?["continue"] == nil)
        #expect((try client.request("GET", "/v1/services?namespace=many&limit=10000").json?["items"] as? [Any])?.count == 501)
        #expect(try client.request("GET", "/v1/services?limit=10001").status == 400)
    }

    @Test func rejectsOversizedBodiesWith413() throws {
        let small = try TestServer(maxBodyBytes: 4096)
        let client = try small.client()
        let response = try client.request("POST", "/v1/services", json: String(repeating: " ", count: 10_000))
        #expect(response.status == 413)
        #expect(response.json?["limit"] as? Int == 4096)
        // Counted under its route, and audited as a failed write, like any other answer.
        let requestID = try #require(response.header("X-Request-Id"))
        let metrics = try small.client().request("GET", "/metrics").text
        #expect(metrics.contains(#"http_requests_total{route="/v1/services",method="POST",status="413"} 1"#))
        let audit = try small.client().request("GET", "/v1/audit?action=createService").json?["items"] as? [[String: Any]] ?? []
        #expect(audit.contains { $0["status"] as? Int == 413 && $0["outcome"] as? String == "failure" && $0["requestId"] as? String == requestID })
    }

    @Test func echoesOrGeneratesRequestIDs() throws {
        let given = try client.request("GET", "/healthz", headers: ["X-Request-Id": "abc-123"])
        #expect(given.header("X-Request-Id") == "abc-123")
        let generated = try #require(try client.request("GET", "/healthz").header("X-Request-Id"))
        let next = try #require(try client.request("GET", "/healthz").header("X-Request-Id"))
        #expect(!generated.isEmpty && generated != next)
        let tooLong = try client.request("GET", "/healthz", headers: ["X-Request-Id": String(repeating: "x", count: 200)])
        let replaced = try #require(tooLong.header("X-Request-Id"))
        #expect(!replaced.isEmpty && !replaced.contains("xxxxxxxx"), "a request id over 128 characters is replaced by a generated one")
        let problem = try client.request("GET", "/nope", headers: ["X-Request-Id": "trace-9"])
        #expect(problem.json?["requestId"] as? String == "trace-9")
    }

    @Test func reportsHealthAndReadiness() throws {
        #expect(try client.request("GET", "/healthz").json?["status"] as? String == "ok")
        #expect(try client.request("GET", "/readyz").json?["status"] as? String == "ready")
    }
}
