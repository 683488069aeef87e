import Foundation
import RegistryAPI
import TestSupport
import Testing

private let semanticsTokens: [(name: String, role: String, namespaces: String, token: String)] = [
    ("reader", "viewer", #"["*"]"#, "viewer-token-0123456789"),
    ("admin", "admin", #"["*"]"#, "admin-token-0123456789ab"),
]

/// Sends `head` (request line and headers, without the final empty line) plus `body`, on a
/// connection of its own, and reads one response.
private func exchange(_ port: UInt16, _ head: String, body: String = "") throws -> ClientResponse {
    let client = try RawHTTPClient(port: port, timeoutSeconds: 10)
    let length = body.isEmpty ? "" : "Content-Length: \(body.utf8.count)\r\n"
    try client.send(Array("\(head)\r\nHost: x\r\n\(length)\r\n\(body)".utf8))
    return try client.readResponse()
}

private let webService = #"{"name":"web","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.1"}]}"#

/// How the API reads what a request says besides its body: repeated header fields, the path as
/// sent, repeated or empty query parameters, conditional headers.
@Suite struct RequestSemanticsTests {
    /// Refusals about a header field name it in the problem's `errors`: framing (two `Host`,
    /// `Content-Length` with `Transfer-Encoding`, two `Content-Length`), 415, 406 and 412.
    @Test func headerRefusalsNameTheirField() throws {
        let server = try TestServer()
        #expect(try exchange(server.port, "GET /v1/services HTTP/1.1\r\nHost: y").problemFields == ["Host"])
        #expect(
            try exchange(server.port, "POST /v1/services HTTP/1.1\r\nTransfer-Encoding: chunked", body: "{}").problemFields == ["Transfer-Encoding"])
        #expect(try exchange(server.port, "POST /v1/services HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0").problemFields == ["Content-Length"])
        let wrongType = try exchange(server.port, "POST /v1/services HTTP/1.1\r\nContent-Type: text/plain", body: webService)
        #expect(wrongType.status == 415 && wrongType.problemFields == ["Content-Type"], "\(wrongType.text)")
        let unacceptable = try exchange(server.port, "GET /v1/manifests HTTP/1.1\r\nAccept: text/html")
        #expect(unacceptable.status == 406 && unacceptable.problemFields == ["Accept"], "\(unacceptable.text)")
        let precondition = try exchange(
            server.port, "POST /v1/services HTTP/1.1\r\nContent-Type: application/json\r\nIf-Match: \"1-x\"", body: webService)
        #expect(precondition.status == 412 && precondition.problemFields == ["If-Match"], "\(precondition.text)")
    }

    /// A singleton field sent twice is refused (400 naming it), whichever copy comes first; before
    /// the body on an upload, and whatever a token in either copy would allow.
    @Test func aRepeatedSingletonFieldIsRefusedNamingIt() throws {
        let path = try writeTokensFile(semanticsTokens)
        let server = try TestServer { $0.tokensFile = path }
        let viewer = "Authorization: Bearer viewer-token-0123456789"
        let admin = "Authorization: Bearer admin-token-0123456789ab"
        for (first, second) in [(viewer, admin), (admin, viewer)] {
            let create = try exchange(
                server.port, "POST /v1/services HTTP/1.1\r\n\(first)\r\n\(second)\r\nContent-Type: application/json", body: webService)
            #expect(create.status == 400, "\(create.text)")
            #expect(create.header("Content-Type") == "application/problem+json")
            #expect(create.problemFields == ["Authorization"], "\(create.text)")
            let read = try exchange(server.port, "GET /v1/services HTTP/1.1\r\n\(first)\r\n\(second)")
            #expect(read.status == 400)
            #expect(read.problemFields == ["Authorization"])
        }
        let adminHeader = ["Authorization": "Bearer admin-token-0123456789ab"]
        #expect(try server.client().request("GET", "/v1/services/default/web", headers: adminHeader).status == 404)
        for (name, values) in [
            ("Content-Type", ["application/json", "text/plain"]), ("Content-Type", ["text/plain", "application/json"]),
            ("X-Request-Id", ["one", "two"]), ("User-Agent", ["a/1", "b/2"]),
        ] {
            let response = try exchange(
                server.port, "POST /v1/services HTTP/1.1\r\n\(admin)\r\n" + values.map { "\(name): \($0)" }.joined(separator: "\r\n"),
                body: webService)
            #expect(response.status == 400, "\(name): \(response.text)")
            #expect(response.problemFields == [name], "\(name): \(response.text)")
            // A repeated X-Request-Id is not echoed: the answer gets an id of its own.
            #expect(!["one", "two"].contains(response.header("X-Request-Id") ?? ""))
        }
        #expect(try server.client().request("GET", "/v1/services/default/web", headers: adminHeader).status == 404)
        // Refused before routing, yet counted and audited under the route the path names.
        let audit = try server.client().request("GET", "/v1/audit?action=createService", headers: adminHeader)
        let lines = audit.json?["items"] as? [[String: Any]] ?? []
        #expect(lines.contains { ($0["status"] as? Int) == 400 && ($0["outcome"] as? String) == "failure" }, "\(audit.text)")
        let metrics = try server.client().request("GET", "/metrics", headers: adminHeader).text
        #expect(metrics.contains(#"http_requests_total{route="/v1/services",method="POST",status="400"}"#), "\(metrics)")
    }

    /// List-valued fields may repeat: their values are combined in order (RFC 9110 §5.3).
    @Test func listValuedFieldsAreCombined() throws {
        let server = try TestServer()
        let created = try server.client().request("POST", "/v1/services", json: webService)
        #expect(created.status == 201)
        let etag = try #require(created.header("ETag"))
        // The current tag in the second If-None-Match line: not modified.
        let cached = try exchange(
            server.port, "GET /v1/services/default/web HTTP/1.1\r\nIf-None-Match: \"other\"\r\nIf-None-Match: \(etag)")
        #expect(cached.status == 304)
        // The current tag in the second If-Match line: the write applies.
        let patched = try exchange(
            server.port,
            "PATCH /v1/services/default/web HTTP/1.1\r\nContent-Type: application/merge-patch+json\r\nIf-Match: \"other\"\r\nIf-Match: \(etag)",
            body: #"{"labels":{"a":"b"}}"#)
        #expect(patched.status == 200, "\(patched.text)")
        // YAML accepted in the second Accept line.
        let manifests = try exchange(
            server.port, "GET /v1/services/default/web/manifests HTTP/1.1\r\nAccept: text/html\r\nAccept: application/yaml")
        #expect(manifests.status == 200)
        #expect(manifests.header("Content-Type")?.hasPrefix("application/yaml") == true)
    }

    /// A path whose raw form has an encoded `/` or `\\`, or a dot segment, is refused (400 naming
    /// the path) rather than routed as its decoded form: nothing is deleted or read through it.
    @Test func anEncodedSeparatorOrDotSegmentInThePathIsRefused() throws {
        let server = try TestServer()
        let client = try server.client()
        for name in ["pn9", "a1"] {
            #expect(try client.request("POST", "/v1/services", json: #"{"name":"\#(name)","ports":[{"port":80}]}"#).status == 201)
        }
        for (method, target) in [
            ("DELETE", "/v1/services/default%2Fpn9"), ("DELETE", "/v1/services/default%2fpn9"), ("GET", "/v1/services/default/a1%2Fmanifests"),
            ("GET", "/v1/services/default%5Ca1"), ("DELETE", "/v1/services/default/x/%2E%2E/pn9"), ("GET", "/v1/services/default/a1/%2e"),
            ("GET", "/v1/services/default/./a1"), ("GET", "/v1/services/default/a1/manifests/.."), ("GET", "/v1/services/x/../default/a1"),
            ("GET", "http://x/v1/services/default%2Fa1"),
        ] {
            let response = try client.request(method, target)
            #expect(response.status == 400, "\(method) \(target): \(response.text)")
            #expect(response.header("Content-Type") == "application/problem+json")
            #expect(response.problemFields == ["path"], "\(target)")
            let path = target.hasPrefix("http://x") ? String(target.dropFirst(8)) : target
            #expect((response.json?["detail"] as? String)?.contains(path) == true, "\(response.text)")
            #expect(response.json?["instance"] as? String == path)
        }
        #expect(try client.request("GET", "/v1/services/default/pn9").status == 200)
        // An upload through such a path is refused before its body.
        let upload = try RawHTTPClient(port: server.port, timeoutSeconds: 10)
        try upload.send(
            Array(
                "POST /v1/services/default%2Fa1/addresses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n".utf8))
        #expect(try upload.readResponse().status == 400)
        // Other encoded characters name what they decode to (RFC 3986 §6.2.2.2).
        #expect(try client.request("GET", "/v1/services/default/%61%31").status == 200)
    }

    /// No query parameter is a list: one given twice is a 400 naming it (nothing is deleted),
    /// and one that needs a value and has none is a 400 naming it.
    @Test func aRepeatedOrEmptyQueryParameterIsRefusedNamingIt() throws {
        let server = try TestServer()
        let client = try server.client()
        let body =
            #"{"name":"web","ports":[{"port":80,"name":"a"},{"port":81,"name":"b"}],"addresses":[{"ip":"192.0.2.1","ports":{"a":8080,"b":8081}}]}"#
        #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        for name in ["x1", "x2", "x3"] {
            #expect(try client.request("POST", "/v1/services", json: #"{"name":"\#(name)","ports":[{"port":80}]}"#).status == 201)
        }
        for (method, target, field) in [
            ("DELETE", "/v1/services/default/web/addresses/192.0.2.1?port=8080&port=8081", "port"),
            ("GET", "/v1/services?limit=1&limit=3", "limit"),
            ("GET", "/v1/services?namespace=default&namespace=other", "namespace"),
            ("DELETE", "/v1/services/default/x1?dryRun=true&dryRun=false", "dryRun"),
            ("GET", "/v1/services?namespace", "namespace"), ("GET", "/v1/services?namespace=", "namespace"),
            ("GET", "/v1/services?limit", "limit"), ("GET", "/v1/services?dryRun", "dryRun"),
            ("GET", "/v1/manifests?format", "format"), ("GET", "/v1/audit?actor=", "actor"),
            ("DELETE", "/v1/services/default/web/addresses/192.0.2.1?port", "port"),
        ] {
            let response = try client.request(method, target)
            #expect(response.status == 400, "\(method) \(target): \(response.text)")
            #expect(response.problemFields == [field], "\(target): \(response.text)")
        }
        let addresses = try client.request("GET", "/v1/services/default/web/addresses")
        #expect((addresses.json?["items"] as? [Any])?.count == 1)
        #expect(try client.request("GET", "/v1/services/default/x1").status == 200)
        // An empty labelSelector selects everything and an empty continue is the first page, as
        // on the Kubernetes API server.
        let all = try client.request("GET", "/v1/services?labelSelector=&continue=&limit=2")
        #expect(all.status == 200)
        #expect((all.json?["items"] as? [Any])?.count == 2)
    }

    /// `If-Match` is evaluated on every read (RFC 9110 §13.1.1): a tag matches only a strong ETag
    /// equal to it, `*` any existing representation; it comes before `If-None-Match` (§13.2.2).
    @Test func ifMatchIsEvaluatedOnEveryRead() throws {
        let server = try TestServer()
        let client = try server.client()
        let created = try client.request("POST", "/v1/services", json: webService)
        let etag = try #require(created.header("ETag"))
        let service = "/v1/services/default/web"
        for method in ["GET", "HEAD"] {
            #expect(try client.request(method, service, headers: ["If-Match": #""nope""#]).status == 412)
            #expect(try client.request(method, service, headers: ["If-Match": etag]).status == 200)
            #expect(try client.request(method, service, headers: ["If-Match": #""nope", \#(etag)"#]).status == 200)
            #expect(try client.request(method, service, headers: ["If-Match": "*"]).status == 200)
            #expect(try client.request(method, service, headers: ["If-Match": "W/\(etag)"]).status == 412)
            // If-Match first: false → 412 even where If-None-Match alone would be 304.
            #expect(try client.request(method, service, headers: ["If-Match": #""nope""#, "If-None-Match": etag]).status == 412)
            #expect(try client.request(method, service, headers: ["If-Match": etag, "If-None-Match": etag]).status == 304)
        }
        let failed = try client.request("GET", service, headers: ["If-Match": #""nope""#])
        #expect(failed.header("Content-Type") == "application/problem+json")
        #expect((failed.json?["type"] as? String)?.hasSuffix("precondition-failed") == true)
        // No service: 404 whatever the preconditions say (§13.2.1).
        #expect(try client.request("GET", "/v1/services/default/none", headers: ["If-Match": "*"]).status == 404)
        // Every read that serves an entity tag, strong or weak.
        for path in [
            service + "/addresses", service + "/manifests", "/v1/manifests", "/v1/services", "/v1/services?namespace=default",
        ] {
            let plain = try client.request("GET", path)
            let tag = try #require(plain.header("ETag"), "\(path)")
            #expect(try client.request("GET", path, headers: ["If-Match": #""nope""#]).status == 412, "\(path)")
            #expect(try client.request("GET", path, headers: ["If-Match": "*"]).status == 200, "\(path)")
            // A weak tag never matches by strong comparison; a strong one does.
            #expect(try client.request("GET", path, headers: ["If-Match": tag]).status == (tag.hasPrefix("W/") ? 412 : 200), "\(path)")
            #expect(try client.request("GET", path, headers: ["If-None-Match": tag]).status == 304, "\(path)")
        }
        // A read without an entity tag: only `*` matches.
        #expect(try client.request("GET", "/healthz", headers: ["If-Match": #""x""#]).status == 412)
        #expect(try client.request("GET", "/healthz", headers: ["If-Match": "*"]).status == 200)
        #expect(try client.request("GET", "/v1/services?watch=true&timeoutSeconds=1", headers: ["If-Match": #""x""#]).status == 412)
    }

    /// A write to a target without an entity tag of its own: the collection `/v1/services` has a
    /// weak one at most, so only `If-Match: *` holds; `If-None-Match: *` does not (it exists).
    @Test func ifMatchIsEvaluatedOnACreate() throws {
        let server = try TestServer()
        let client = try server.client()
        let refused = try client.request("POST", "/v1/services", headers: ["If-Match": #""x""#], json: webService)
        #expect(refused.status == 412, "\(refused.text)")
        let list = try client.request("GET", "/v1/services")
        let weak = try #require(list.header("ETag"))
        #expect(try client.request("POST", "/v1/services", headers: ["If-Match": weak], json: webService).status == 412)
        #expect(try client.request("POST", "/v1/services", headers: ["If-None-Match": "*"], json: webService).status == 412)
        #expect(try client.request("GET", "/v1/services/default/web").status == 404)
        #expect(try client.request("POST", "/v1/services", headers: ["If-Match": "*"], json: webService).status == 201)
        // A processing resource that cannot be read: not even `*` matches.
        let imported = try client.request(
            "POST", "/v1/import", headers: ["If-Match": "*", "Content-Type": "application/yaml"],
            body: Array("apiVersion: v1\nkind: Service\nmetadata: {name: imp}\nspec: {ports: [{port: 80}]}\n".utf8))
        #expect(imported.status == 412, "\(imported.text)")
        // What would fail without the preconditions fails first (RFC 9110 §13.2.1, as for PUT):
        // no body, an invalid one, an unreadable import, an unknown push field.
        let noBody = try client.request("POST", "/v1/services", headers: ["If-Match": #""x""#, "Content-Type": "application/json"])
        #expect(noBody.status == 400 || noBody.status == 422, "\(noBody.text)")
        #expect(try client.request("POST", "/v1/services", headers: ["If-Match": #""x""#], json: #"{"name":"Bad"}"#).status == 422)
        let badImport = try client.request(
            "POST", "/v1/import", headers: ["If-Match": "*", "Content-Type": "application/yaml"], body: Array("{".utf8))
        #expect(badImport.status == 400 || badImport.status == 422, "\(badImport.text)")
        let badPush = try client.request("POST", "/v1/push", headers: ["If-Match": "*"], json: #"{"nope":1}"#)
        #expect(badPush.status != 412, "\(badPush.status) \(badPush.text)")
    }

    /// A 415 says what would have been accepted: `Accept-Patch` on a PATCH (RFC 5789 §2.2),
    /// `Accept` otherwise.
    @Test func aWrongContentTypeListsTheAcceptedOnes() throws {
        let server = try TestServer()
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: webService).status == 201)
        for contentType in ["application/json", "text/plain"] {
            let patched = try client.request(
                "PATCH", "/v1/services/default/web", headers: ["Content-Type": contentType], body: Array(#"{"labels":{"a":"b"}}"#.utf8))
            #expect(patched.status == 415)
            #expect(patched.header("Accept-Patch") == "application/merge-patch+json")
        }
        let created = try client.request("POST", "/v1/services", headers: ["Content-Type": "text/plain"], body: Array(webService.utf8))
        #expect(created.status == 415)
        #expect(created.header("Accept") == "application/json")
        #expect(created.header("Accept-Patch") == nil)
        let imported = try client.request("POST", "/v1/import", headers: ["Content-Type": "text/plain"], body: Array("x".utf8))
        #expect(imported.status == 415)
        #expect(imported.header("Accept") == "application/yaml, application/json")
        #expect((imported.json?["detail"] as? String)?.hasPrefix("Content-Type must be application/yaml or application/json") == true)
    }
}
