import Foundation
import HTTPServer
import RegistryAPI
import TestSupport
import Testing

/// Tokens of every role, scoped to `team-*` (the admin to everything).
private let tokens: [(name: String, role: String, namespaces: String, token: String)] = [
    ("reader", "viewer", #"["team-*"]"#, "viewer-token-0123456789"),
    ("writer", "editor", #"["team-*"]"#, "editor-token-0123456789"),
    ("deployer", "pusher", #"["team-a", "team-b"]"#, "pusher-token-0123456789"),
    ("root", "admin", #"["*"]"#, "admin-token-01234567890"),
]

func writeTokensFile(_ entries: [(name: String, role: String, namespaces: String, token: String)]) throws -> String {
    let path = FileManager.default.temporaryDirectory.appending(path: "tokens-\(UUID().uuidString).yaml").path()
    var text = "tokens:\n"
    for entry in entries {
        text += "- name: \(entry.name)\n  role: \(entry.role)\n  namespaces: \(entry.namespaces)\n  token: \(entry.token)\n"
    }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

private func bearer(_ token: String) -> [String: String] { ["Authorization": "Bearer \(token)"] }

@Suite struct AccessControlTests {
    let server: TestServer
    let client: RawHTTPClient
    let tokensPath: String

    init() throws {
        let path = try writeTokensFile(tokens)
        tokensPath = path
        server = try TestServer { $0.tokensFile = path }
        client = try server.client()
        for namespace in ["team-a", "other"] {
            let created = try client.request(
                "POST", "/v1/services", headers: bearer("admin-token-01234567890"),
                json: #"{"namespace":"\#(namespace)","name":"svc","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"}]}"#)
            #expect(created.status == 201)
        }
    }

    /// (method, path, body, permission) for every protected route.
    static let routes: [(String, String, String?, String)] = [
        ("GET", "/v1/services", nil, "read"),
        ("GET", "/v1/services/NS/svc", nil, "read"),
        ("GET", "/v1/services/NS/svc/addresses", nil, "read"),
        ("GET", "/v1/services/NS/svc/manifests", nil, "read"),
        ("GET", "/v1/services/NS/svc/history", nil, "read"),
        ("GET", "/v1/manifests?namespace=NS", nil, "read"),
        ("GET", "/v1/leader", nil, "read"),
        ("GET", "/metrics", nil, "read"),
        ("POST", "/v1/services", #"{"namespace":"NS","name":"new","ports":[{"port":80}]}"#, "write"),
        ("PUT", "/v1/services/NS/svc", #"{"ports":[{"port":81}],"addresses":[{"ip":"10.0.0.1"}]}"#, "write"),
        ("PATCH", "/v1/services/NS/svc", #"{"description":"x"}"#, "write"),
        ("POST", "/v1/services/NS/svc/addresses", #"{"ip":"10.0.0.9"}"#, "write"),
        ("DELETE", "/v1/services/NS/svc/addresses/10.0.0.1", nil, "write"),
        (
            "POST", "/v1/import?namespace=NS", #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"imp"},"spec":{"ports":[{"port":80}]}}"#,
            "write"
        ),
        ("DELETE", "/v1/services/NS/svc", nil, "write"),
        ("GET", "/v1/audit", nil, "audit"),
    ]

    private func send(_ route: (String, String, String?, String), namespace: String, headers: [String: String]) throws -> ClientResponse {
        let path = route.1.replacingOccurrences(of: "NS", with: namespace)
        var headers = headers
        if route.0 == "PATCH" { headers["Content-Type"] = "application/merge-patch+json" }
        let body = route.2.map { Array($0.replacingOccurrences(of: "NS", with: namespace).utf8) }
        // A refusal of a request with a body comes before the body is read, and closes the connection.
        return try server.client().request(route.0, path, headers: headers, body: body)
    }

    @Test func requiresAKnownBearerToken() throws {
        for route in Self.routes {
            let missing = try send(route, namespace: "team-a", headers: [:])
            #expect(missing.status == 401, "\(route.0) \(route.1)")
            #expect(missing.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            let wrong = try send(route, namespace: "team-a", headers: bearer("not-a-known-token-at-all"))
            #expect(wrong.status == 401)
            #expect(wrong.header("WWW-Authenticate")?.contains("invalid_token") == true)
            #expect(!wrong.text.contains("not-a-known-token-at-all"))
        }
        #expect(try client.request("GET", "/healthz").status == 200)
        #expect(try client.request("GET", "/readyz").status == 200)
        #expect(try client.request("GET", "/openapi.yaml").status == 200)
    }

    @Test(arguments: tokens)
    func everyRouteByRoleAndNamespace(token: (name: String, role: String, namespaces: String, token: String)) throws {
        let permissions: [String: Set<String>] = [
            "viewer": ["read"], "editor": ["read", "write"], "pusher": ["read", "write"], "admin": ["read", "write", "audit"],
        ]
        let scope: (String) -> Bool = { namespace in
            switch token.name {
            case "root": true
            case "deployer": ["team-a", "team-b"].contains(namespace)
            default: namespace.hasPrefix("team-")
            }
        }
        for namespace in ["team-a", "other"] {
            for route in Self.routes {
                let response = try send(route, namespace: namespace, headers: bearer(token.token))
                let namespaced = route.1.contains("NS") || (route.2?.contains("NS") ?? false)
                let allowed = permissions[token.role]!.contains(route.3) && (!namespaced || scope(namespace))
                if allowed {
                    #expect(
                        response.status < 400, "\(token.name) \(route.0) \(route.1) in \(namespace): \(response.status) \(response.text.prefix(300))")
                } else {
                    #expect(response.status == 403, "\(token.name) \(route.0) \(route.1) in \(namespace): \(response.status)")
                    #expect(response.json?["missing"] as? String != nil)
                }
            }
            // Put back what the write routes removed or added, for the next round.
            _ = try client.request("DELETE", "/v1/services/\(namespace)/new", headers: bearer("admin-token-01234567890"))
            _ = try client.request("DELETE", "/v1/services/\(namespace)/imp", headers: bearer("admin-token-01234567890"))
            _ = try client.request(
                "PUT", "/v1/services/\(namespace)/svc", headers: bearer("admin-token-01234567890"),
                json: #"{"ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"}]}"#)
        }
    }

    @Test func listsShowOnlyTheTokensNamespaces() throws {
        let list = try client.request("GET", "/v1/services", headers: bearer("viewer-token-0123456789"))
        let namespaces = (list.json?["items"] as? [[String: Any]])?.compactMap { $0["namespace"] as? String }
        #expect(namespaces == ["team-a"])
        let all = try client.request("GET", "/v1/services", headers: bearer("admin-token-01234567890"))
        #expect((all.json?["items"] as? [Any])?.count == 2)
        let manifests = try client.request("GET", "/v1/manifests?format=json", headers: bearer("viewer-token-0123456789"))
        let objectNamespaces = Set(
            ((manifests.json?["items"] as? [[String: Any]]) ?? []).compactMap { ($0["metadata"] as? [String: Any])?["namespace"] as? String })
        #expect(objectNamespaces == ["team-a"])
        let outside = try client.request("GET", "/v1/services?namespace=other", headers: bearer("viewer-token-0123456789"))
        #expect(outside.status == 403)
        let importOutside = try client.request(
            "POST", "/v1/import", headers: bearer("editor-token-0123456789"),
            json: #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"x","namespace":"other"},"spec":{"ports":[{"port":80}]}}"#)
        #expect(importOutside.status == 403)
    }

    @Test func auditsWritesAndDenials() throws {
        _ = try server.client().request(
            "PATCH", "/v1/services/team-a/svc",
            headers: bearer("editor-token-0123456789").merging(["Content-Type": "application/merge-patch+json"]) { $1 },
            json: #"{"description":"audited"}"#)
        _ = try client.request("DELETE", "/v1/services/other/svc", headers: bearer("editor-token-0123456789"))
        _ = try server.client().request(
            "POST", "/v1/services", headers: bearer("editor-token-0123456789"), json: #"{"namespace":"team-a","name":"Bad"}"#)
        let log = try client.request("GET", "/v1/audit?limit=1000", headers: bearer("admin-token-01234567890"))
        let entries = try #require(log.json?["items"] as? [[String: Any]])
        let patch = try #require(entries.first { $0["action"] as? String == "patchService" })
        #expect(patch["actor"] as? String == "writer")
        #expect(patch["revisionBefore"] as? Int == 1 && patch["revisionAfter"] as? Int == 2)
        #expect(patch["outcome"] as? String == "success")
        let denied = try #require(entries.first { $0["action"] as? String == "deleteService" })
        #expect(denied["outcome"] as? String == "denied" && denied["status"] as? Int == 403 && denied["actor"] as? String == "writer")
        let failed = try #require(entries.first { $0["action"] as? String == "createService" && $0["status"] as? Int == 422 })
        #expect(failed["outcome"] as? String == "failure")
        #expect(!log.text.contains("token-0123456789"))
        let filtered = try client.request("GET", "/v1/audit?actor=writer&action=patchService", headers: bearer("admin-token-01234567890"))
        #expect((filtered.json?["items"] as? [Any])?.count == 1)
        let paged = try client.request("GET", "/v1/audit?limit=1", headers: bearer("admin-token-01234567890"))
        let token = try #require(paged.json?["continue"] as? String)
        let next = try client.request("GET", "/v1/audit?limit=1&continue=\(token)", headers: bearer("admin-token-01234567890"))
        #expect(
            ((next.json?["items"] as? [[String: Any]])?.first?["id"] as? Int ?? 0)
                > ((paged.json?["items"] as? [[String: Any]])?.first?["id"] as? Int ?? 0))
        #expect(try client.request("GET", "/v1/audit?since=yesterday", headers: bearer("admin-token-01234567890")).status == 400)
        #expect(
            (try client.request("GET", "/v1/audit?since=2100-01-01T00:00:00Z", headers: bearer("admin-token-01234567890")).json?["items"] as? [Any])?
                .isEmpty == true)
    }

    @Test func historyShowsWhatChanged() throws {
        let admin = bearer("admin-token-01234567890")
        _ = try client.request("POST", "/v1/services/team-a/svc/addresses", headers: admin, json: #"{"ip":"10.0.0.2"}"#)
        _ = try client.request("DELETE", "/v1/services/team-a/svc", headers: admin)
        let history = try client.request("GET", "/v1/services/team-a/svc/history", headers: admin)
        let items = try #require(history.json?["items"] as? [[String: Any]])
        #expect(items.map { $0["change"] as? String } == ["created", "updated", "deleted"])
        let changes = try #require(items[1]["changes"] as? [[String: Any]])
        #expect(changes.first?["field"] as? String == "addresses")
        #expect((changes.first?["added"] as? [[String: Any]])?.first?["ip"] as? String == "10.0.0.2")
        #expect(try client.request("GET", "/v1/services/team-a/none/history", headers: admin).status == 404)
    }

    @Test func metricsCountRequestsAndServices() throws {
        _ = try client.request("GET", "/v1/services/team-a/svc", headers: bearer("viewer-token-0123456789"))
        let metrics = try client.request("GET", "/metrics", headers: bearer("viewer-token-0123456789"))
        #expect(metrics.status == 200)
        #expect(metrics.header("Content-Type")?.hasPrefix("text/plain") == true)
        #expect(metrics.text.contains(#"http_requests_total{route="/v1/services/{namespace}/{name}",method="GET",status="200"}"#))
        #expect(metrics.text.contains("http_request_duration_seconds_bucket"))
        #expect(metrics.text.contains("endpoint_registry_services 2"))
        #expect(metrics.text.contains("endpoint_registry_addresses 2"))
        #expect(metrics.text.contains("endpoint_registry_database_bytes"))
    }

    @Test func reloadsTheTokensFile() throws {
        let service = server.service
        #expect(try client.request("GET", "/v1/services", headers: bearer("viewer-token-0123456789")).status == 200)
        try "tokens:\n- name: fresh\n  role: viewer\n  namespaces: ['*']\n  token: fresh-token-0123456789\n"
            .write(toFile: tokensPath, atomically: true, encoding: .utf8)
        service.reloadTokens()
        #expect(try client.request("GET", "/v1/services", headers: bearer("viewer-token-0123456789")).status == 401)
        #expect(try client.request("GET", "/v1/services", headers: bearer("fresh-token-0123456789")).status == 200)
        // A broken file is refused: the tokens loaded before stay in force.
        try "not: [valid".write(toFile: tokensPath, atomically: true, encoding: .utf8)
        service.reloadTokens()
        #expect(try client.request("GET", "/v1/services", headers: bearer("fresh-token-0123456789")).status == 200)
        #expect(try client.request("GET", "/v1/services", headers: bearer("viewer-token-0123456789")).status == 401)
    }
}

@Suite struct TokenFileTests {
    @Test(arguments: [
        ("tokens:\n- name: a\n  role: boss\n  namespaces: ['*']\n  token: aaaaaaaaaaaaaaaaaaaa\n", "tokens[0].role must be one of"),
        ("tokens:\n- name: a\n  role: viewer\n  namespaces: []\n  token: aaaaaaaaaaaaaaaaaaaa\n", "tokens[0].namespaces must list"),
        ("tokens:\n- name: a\n  role: viewer\n  namespaces: ['*']\n  token: short\n", "tokens[0] (a).token must be at least 16 characters"),
        ("tokens:\n- name: a\n  role: viewer\n  namespaces: ['*']\n  sha256: abc\n", "tokens[0].sha256 must be 64 hexadecimal"),
        ("tokens:\n- name: a\n  role: viewer\n  namespaces: ['*']\n", "tokens[0] needs exactly one of sha256"),
        (
            "tokens:\n- name: a\n  role: viewer\n  namespaces: ['*']\n  token: aaaaaaaaaaaaaaaaaaaa\n- name: a\n  role: viewer\n  namespaces: ['*']\n  token: bbbbbbbbbbbbbbbbbbbb\n",
            "tokens[1].name \"a\" is used twice"
        ),
        (
            "tokens:\n- name: a\n  role: viewer\n  namespaces: ['*']\n  token: aaaaaaaaaaaaaaaaaaaa\n- name: b\n  role: admin\n  namespaces: ['*']\n  sha256: 42492da06234ad0ac76f5d5debdb6d1ae027cffbe746a1c13b89bb8bc0139137\n",
            "tokens[1] (b) has the same token as tokens[0] (a)"
        ),
        (
            "tokens:\n- name: a\n  role: viewer\n  namespaces: ['*']\n  token: aaaaaaaaaaaaaaaaaaaa\n  expires: never\n",
            "tokens[0] has unknown fields [\"expires\"]"
        ),
        ("[1, 2]", "must be an object with a \"tokens\" list"),
    ])
    func rejectsBadFilesWithAReason(text: String, reason: String) throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "tokens-\(UUID().uuidString).yaml").path()
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            _ = try TokenAuthenticator(path: path)
        } throws: { error in
            (error as? TokenFileError)?.message.contains(reason) == true
        }
    }

    @Test func anEmptyListLetsNobodyIn() throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "tokens-\(UUID().uuidString).yaml").path()
        try "tokens: []\n".write(toFile: path, atomically: true, encoding: .utf8)
        let authenticator = try TokenAuthenticator(path: path)
        #expect(authenticator.count == 0)
        #expect(authenticator.principal(forToken: "aaaaaaaaaaaaaaaaaaaa") == nil)
    }

    @Test func acceptsDigestsAndJSON() throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "tokens-\(UUID().uuidString).json").path()
        // SHA-256 of "correct-horse-battery-staple" (a bearer token has no spaces).
        let digest = "87cbebfeebc05f7c54ac9336c4b4bbec831227a641951a4bde7edd56020f8590"
        try #"{"tokens":[{"name":"ci","role":"editor","namespaces":["team-?"],"sha256":"\#(digest)"}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let authenticator = try TokenAuthenticator(path: path)
        let principal = try #require(authenticator.principal(forToken: "correct-horse-battery-staple"))
        #expect(principal.name == "ci" && principal.role == .editor)
        #expect(principal.scope.allows("team-a") && !principal.scope.allows("team-ab"))
        #expect(authenticator.principal(forToken: "correct-horse-battery-stapl") == nil)
    }

    @Test(arguments: [
        ("*", "x", true), ("team-*", "team-a", true), ("team-*", "team", false), ("t?am", "team", true), ("a*b*c", "aXbYc", true),
        ("a*b*c", "aXbY", false), ("prod", "prod", true), ("prod", "prod2", false), ("prod", "Prod", false), ("", "", true),
        ("", "a", false), ("*", "", true),
        // Scalar by scalar, as the general case compares: not equal by canonical equivalence.
        ("\u{E9}", "e\u{301}", false), ("\u{E9}?", "\u{E9}x", true),
    ])
    func globs(pattern: String, namespace: String, expected: Bool) {
        #expect(NamespaceScope([pattern]).allows(namespace) == expected)
    }
}

/// `Role.allows` (asked on every request) agrees with the documented permission sets.
@Test func roleAllowsIsItsPermissionSet() {
    for role in Role.allCases {
        for permission in Permission.allCases {
            #expect(role.allows(permission) == role.permissions.contains(permission), "\(role) \(permission)")
        }
    }
}
