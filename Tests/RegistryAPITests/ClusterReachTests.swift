import Dispatch
import Foundation
import Synchronization
import KubernetesClient
import RegistryAPI
import TestSupport
import Testing

/// Secrets the kubeconfigs of these tests hold; no response and no log line may contain one.
private let secrets = ["admin-token", "url-secret", "query-secret", "proxy-secret", "env-secret", "BEGIN", "changed-token"]

/// A kubeconfig for the fake: `current` (token, current context), `plugin` (an exec plugin
/// handing out admin-token), `proxied` (proxy-url with a password), `named` (tls-server-name),
/// `leaky` (a server URL with user information and a query).
private func kubeconfig(_ cluster: FakeCluster, proxy: String, extra: String = "", without: String? = nil) throws -> String {
    let pluginPath = cluster.directory.appending(path: "plugin").path()
    try """
    #!/bin/sh
    printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"admin-token"}}'
    """.write(toFile: pluginPath, atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: pluginPath)
    let ca = try Data(contentsOf: cluster.directory.appending(path: "ca.crt")).base64EncodedString()
    var contexts = [
        ("current", "direct", "admin"), ("plugin", "direct", "plugin"), ("proxied", "proxied", "admin"), ("named", "named", "admin"),
        ("leaky", "leaky", "admin"),
    ]
    contexts.removeAll { $0.0 == without }
    return """
        current-context: current
        clusters:
        - name: direct
          cluster: {server: "\(cluster.server)", certificate-authority-data: \(ca)}
        - name: proxied
          cluster: {server: "\(cluster.server)", certificate-authority-data: \(ca), proxy-url: "http://alice:proxy-secret@127.0.0.1:\(proxy)"}
        - name: named
          cluster: {server: "\(cluster.server)", certificate-authority-data: \(ca), tls-server-name: localhost}
        - name: leaky
          cluster: {server: "https://bob:url-secret@127.0.0.1:\(cluster.port)/?token=query-secret", certificate-authority-data: \(ca)}
        users:
        - name: admin
          user: {token: admin-token}
        - name: plugin
          user:
            exec:
              apiVersion: client.authentication.k8s.io/v1
              command: \(pluginPath)
              interactiveMode: Never
              env: [{name: PLUGIN_PASSWORD, value: env-secret}]
        contexts:
        \(contexts.map { "- name: \($0.0)\n  context: {cluster: \($0.1), user: \($0.2)}" }.joined(separator: "\n"))
        \(extra)
        """
}

@Suite(.serialized) struct ClusterReachTests {
    @Test func listsCurrentContextServerAuthProxyAndTLSServerNameWithoutSecrets() throws {
        let cluster = try FakeCluster()
        let proxy = try LoopbackProxy()
        let path = cluster.directory.appending(path: "reach-kubeconfig").path()
        try kubeconfig(cluster, proxy: "\(proxy.port)").write(toFile: path, atomically: true, encoding: .utf8)
        let server = try TestServer { configuration in
            configuration.kubeconfigPaths = [path]
            configuration.inCluster = false
        }
        let response = try server.client().request("GET", "/v1/clusters?probe=true")
        let items = try #require(response.json?["items"] as? [[String: Any]])
        let byName = Dictionary(items.map { ($0["name"] as? String ?? "", $0) }) { first, _ in first }
        #expect(byName["current"]?["current"] as? Bool == true && byName["plugin"]?["current"] as? Bool == false)
        #expect(byName["plugin"]?["auth"] as? String == "exec" && byName["plugin"]?["usable"] as? Bool == true)
        #expect(byName["plugin"]?["reachable"] as? Bool == true, "\(byName["plugin"] ?? [:])")
        #expect(
            byName["proxied"]?["proxy"] as? String == "http://127.0.0.1:\(proxy.port)" && byName["proxied"]?["proxySource"] as? String == "kubeconfig"
        )
        #expect(byName["proxied"]?["reachable"] as? Bool == true)
        #expect(proxy.targets == ["127.0.0.1:\(cluster.port)"])
        #expect(byName["named"]?["tlsServerName"] as? String == "localhost" && byName["named"]?["reachable"] as? Bool == true)
        #expect(byName["leaky"]?["server"] as? String == "https://127.0.0.1:\(cluster.port)/")
        #expect(byName["current"]?["proxy"] == nil && byName["current"]?["tlsServerName"] == nil)
        for secret in secrets { #expect(!response.text.contains(secret), "GET /v1/clusters shows \(secret)") }
    }

    @Test func workForARemovedClusterStops() throws {
        let cluster = try FakeCluster()
        let path = cluster.directory.appending(path: "reach-kubeconfig").path()
        try kubeconfig(cluster, proxy: "1").write(toFile: path, atomically: true, encoding: .utf8)
        let server = try TestServer { configuration in
            configuration.kubeconfigPaths = [path]
            configuration.kubeconfigExplicit = true
            configuration.inCluster = false
        }
        let client = try server.client()
        #expect(
            try client.request("POST", "/v1/services", json: #"{"name":"web","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.10"}]}"#).status == 201
        )
        try cluster.call("POST", "/_fake/faults", json: #"[{"method":"GET","path":"/services/web$","delay":2,"times":1}]"#)
        // The push runs on its own thread (not the test's cooperative pool, which other suites may occupy).
        let port = server.port
        let result = Mutex<ClientResponse?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            result.withLock {
                $0 = try? RawHTTPClient(port: port).request("POST", "/v1/services/default/web/push", json: #"{"clusters":["current"]}"#)
            }
            done.signal()
        }.start()
        // Reload once the push waits on its first (delayed) call.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, try cluster.call("GET", "/_fake/requests").body.contains("/services/web") == false {
            Thread.sleep(forTimeInterval: 0.05)
        }
        try kubeconfig(cluster, proxy: "1", without: "current").write(toFile: path, atomically: true, encoding: .utf8)
        server.service.reloadKubeconfig()
        #expect(done.wait(timeout: .now() + 30) == .success)
        let response = try #require(result.withLock { $0 })
        #expect(response.status != 200)
        #expect(response.text.contains("cluster current was removed from the kubeconfig by a reload"), "\(response.text)")
        let status = try client.request("GET", "/v1/services/default/web/status")
        let items = try #require(status.json?["items"] as? [[String: Any]])
        #expect(items.first?["cluster"] as? String == "current" && items.first?["clusterConfigured"] as? Bool == false, "\(status.text)")
    }

    @Test func sighupReloadsTheKubeconfig() throws {
        let cluster = try FakeCluster()
        let path = cluster.directory.appending(path: "reach-kubeconfig").path()
        try kubeconfig(cluster, proxy: "1").write(toFile: path, atomically: true, encoding: .utf8)
        let server = try LoggedServerProcess(
            [
                "serve", "--port", "0", "--kubeconfig", path, "--database", cluster.directory.appending(path: "r.sqlite").path(), "--log-level",
                "debug",
            ], log: cluster.directory.appending(path: "server.log"))
        defer { server.stop() }
        let (logText, waitFor) = (server.logText, server.waitFor)
        #expect(waitFor("listening on http://127.0.0.1:"))
        let portText = logText().components(separatedBy: "listening on http://127.0.0.1:").last?.prefix { $0.isNumber } ?? ""
        let client = try RawHTTPClient(port: try #require(UInt16(portText)))
        func names() throws -> [String] {
            ((try client.request("GET", "/v1/clusters").json?["items"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
        }
        var responses: [String] = []
        #expect(try names().sorted() == ["current", "leaky", "named", "plugin", "proxied"])

        // Added `extra`, changed `named` (another tls-server-name, a token), removed `leaky`.
        var text = try kubeconfig(cluster, proxy: "1", extra: "- name: extra\n  context: {cluster: direct, user: admin}", without: "leaky")
        text = text.replacingOccurrences(of: "tls-server-name: localhost", with: "tls-server-name: 127.0.0.1")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        kill(server.process.processIdentifier, SIGHUP)
        #expect(waitFor("kubeconfig reloaded"))
        #expect(
            logText().contains("cluster extra added") && logText().contains("cluster named changed") && logText().contains("cluster leaky removed"),
            "\(logText())")
        #expect(try names().sorted() == ["current", "extra", "named", "plugin", "proxied"])
        let listing = try client.request("GET", "/v1/clusters?probe=true")
        responses.append(listing.text)
        let named = ((listing.json?["items"] as? [[String: Any]]) ?? []).first { $0["name"] as? String == "named" }
        #expect(named?["tlsServerName"] as? String == "127.0.0.1" && named?["reachable"] as? Bool == true, "\(listing.text)")

        // A broken file: refused, the clusters stay.
        try "clusters: [unclosed".write(toFile: path, atomically: true, encoding: .utf8)
        kill(server.process.processIdentifier, SIGHUP)
        #expect(waitFor("kubeconfig not reloaded, the previous 5 clusters stay in force"))
        #expect(try names().sorted() == ["current", "extra", "named", "plugin", "proxied"])
        // A kubeconfig that disappeared: refused too, as at start-up.
        try FileManager.default.removeItem(atPath: path)
        kill(server.process.processIdentifier, SIGHUP)
        #expect(waitFor("names \(path), which does not exist"))
        #expect(try names().count == 5)
        responses.append(try client.request("GET", "/v1/clusters").text)
        for secret in secrets {
            #expect(!logText().contains(secret), "the log shows \(secret)")
            for response in responses { #expect(!response.contains(secret), "a response shows \(secret)") }
        }
    }
}
