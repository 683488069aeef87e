import Dispatch
import Foundation
import Synchronization
import KubernetesClient
import RegistryCore
import TestSupport
import Testing

/// A kubeconfig with one context, `ctx`, naming the fake's server and CA, written into its directory.
private func targets(
    _ cluster: FakeCluster, server: String? = nil, clusterFields: [String] = [], user: [String], environment: [String: String] = [:]
) throws -> ClusterTarget {
    let ca = try Data(contentsOf: cluster.directory.appending(path: "ca.crt")).base64EncodedString()
    let config = """
        current-context: ctx
        clusters:
        - name: c
          cluster:
            server: \(server ?? cluster.server)
            certificate-authority-data: \(ca)
        \(clusterFields.map { "    " + $0 }.joined(separator: "\n"))
        users:
        - name: u
          user:
        \(user.map { "    " + $0 }.joined(separator: "\n"))
        contexts:
        - name: ctx
          context: {cluster: c, user: u}
        """
    let path = cluster.directory.appending(path: "kubeconfig-\(UUID().uuidString)").path()
    try config.write(toFile: path, atomically: true, encoding: .utf8)
    return try #require(try KubeConfigLoader.load(paths: [path], environment: environment).first)
}

/// Writes an executable plugin script into `directory`.
private func plugin(_ directory: URL, _ name: String, _ body: String) throws -> String {
    let path = directory.appending(path: name).path()
    try body.write(toFile: path, atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    return path
}

/// A plugin printing the token in `$DIR/token` (with `$EXTRA` appended to `status`), counting
/// its runs in `$DIR/runs` and saving its `KUBERNETES_EXEC_INFO` and arguments.
private let tokenPlugin = """
    #!/bin/sh
    echo run >> "$DIR/runs"
    printf '%s' "$KUBERNETES_EXEC_INFO" > "$DIR/info.json"
    printf '%s' "$*" > "$DIR/args"
    printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"%s"%s}}' "$VERSION" "$(cat "$DIR/token")" "$EXTRA"
    """

private func runs(_ directory: URL) -> Int {
    ((try? String(contentsOf: directory.appending(path: "runs"), encoding: .utf8)) ?? "").split(separator: "\n").count
}

private func execUser(
    _ command: String, version: String = "client.authentication.k8s.io/v1", directory: URL, extra: String = "", more: [String] = []
) -> [String] {
    [
        "exec:", "  apiVersion: \(version)", "  command: \(command)", "  args: [--cluster, one]", "  interactiveMode: Never", "  env:",
        "  - {name: DIR, value: '\(directory.path())'}", "  - {name: VERSION, value: '\(version)'}", "  - {name: EXTRA, value: '\(extra)'}",
    ] + more.map { "  " + $0 }
}

private func errorText(_ body: () throws -> Void) -> String {
    do {
        try body()
        return "no error"
    } catch {
        return "\(error)"
    }
}

@Suite struct ExecPluginTests {
    @Test func v1TokenWithClusterInfoIsCachedWithoutExpiry() throws {
        let cluster = try FakeCluster()
        let directory = cluster.directory
        try "admin-token".write(to: directory.appending(path: "token"), atomically: true, encoding: .utf8)
        let command = try plugin(directory, "token-plugin", tokenPlugin)
        let target = try targets(
            cluster, clusterFields: ["tls-server-name: localhost"], user: execUser(command, directory: directory, more: ["provideClusterInfo: true"]))
        #expect(target.usable && target.authKind == "exec" && target.current)
        let api = KubernetesAPI(target: target, credentials: ExecCredentialProvider())
        #expect(try api.version() == "v1.37.0-fake")
        #expect(try api.list(.service, namespace: "default", labelSelector: "a=b").isEmpty)
        #expect(runs(directory) == 1)
        let info = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appending(path: "info.json"))) as? [String: Any])
        #expect(info["apiVersion"] as? String == "client.authentication.k8s.io/v1" && info["kind"] as? String == "ExecCredential")
        let spec = try #require(info["spec"] as? [String: Any])
        #expect(spec["interactive"] as? Bool == false)
        let clusterInfo = try #require(spec["cluster"] as? [String: Any])
        #expect(clusterInfo["server"] as? String == cluster.server && clusterInfo["tls-server-name"] as? String == "localhost")
        let ca = try Data(contentsOf: directory.appending(path: "ca.crt")).base64EncodedString()
        #expect(clusterInfo["certificate-authority-data"] as? String == ca)
        #expect(try String(contentsOf: directory.appending(path: "args"), encoding: .utf8) == "--cluster one")
    }

    @Test func v1beta1WithoutClusterInfo() throws {
        let cluster = try FakeCluster()
        let directory = cluster.directory
        try "admin-token".write(to: directory.appending(path: "token"), atomically: true, encoding: .utf8)
        let command = try plugin(directory, "token-plugin", tokenPlugin)
        let target = try targets(cluster, user: execUser(command, version: "client.authentication.k8s.io/v1beta1", directory: directory))
        #expect(try KubernetesAPI(target: target, credentials: ExecCredentialProvider()).version() == "v1.37.0-fake")
        let info = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appending(path: "info.json"))) as? [String: Any])
        #expect(info["apiVersion"] as? String == "client.authentication.k8s.io/v1beta1")
        let spec = try #require(info["spec"] as? [String: Any])
        #expect(spec["interactive"] as? Bool == false && spec["cluster"] == nil)
    }

    @Test func clientCertificateFromThePlugin() throws {
        let cluster = try FakeCluster()
        let command = try plugin(
            cluster.directory, "cert-plugin",
            """
            #!/usr/bin/env python3
            import json, os
            d = os.environ["DIR"]
            print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                              "status": {"clientCertificateData": open(d + "/client.crt").read(), "clientKeyData": open(d + "/client.key").read()}}))
            """)
        let target = try targets(cluster, user: execUser(command, directory: cluster.directory))
        #expect(
            try KubernetesAPI(target: target, credentials: ExecCredentialProvider()).list(.service, namespace: "default", labelSelector: "a=b")
                .isEmpty)
    }

    @Test func refreshesBeforeExpiryAndCachesUntilThen() throws {
        let cluster = try FakeCluster()
        let directory = cluster.directory
        try "admin-token".write(to: directory.appending(path: "token"), atomically: true, encoding: .utf8)
        let command = try plugin(directory, "token-plugin", tokenPlugin)
        let formatter = ISO8601DateFormatter()
        // Valid for an hour: one run for several calls.
        let later = try targets(
            cluster,
            user: execUser(
                command, directory: directory, extra: #","expirationTimestamp":"\#(formatter.string(from: Date().addingTimeInterval(3600)))""#))
        let provider = ExecCredentialProvider()
        _ = try KubernetesAPI(target: later, credentials: provider).version()
        _ = try KubernetesAPI(target: later, credentials: provider).version()
        #expect(runs(directory) == 1)
        // Expiring within the refresh margin: every call runs the plugin again.
        let soon = try targets(
            cluster,
            user: execUser(
                command, directory: directory, extra: #","expirationTimestamp":"\#(formatter.string(from: Date().addingTimeInterval(5)))""#))
        _ = try KubernetesAPI(target: soon, credentials: provider).version()
        _ = try KubernetesAPI(target: soon, credentials: provider).version()
        #expect(runs(directory) == 3)
    }

    @Test func runsThePluginAgainAfterA401() throws {
        let cluster = try FakeCluster()
        let directory = cluster.directory
        let expires = Int(Date().timeIntervalSince1970) + 3600
        try cluster.call("POST", "/_fake/tokens", json: #"{"admin-token":"admin","short-1":{"user":"admin","expires":\#(expires)}}"#)
        try "short-1".write(to: directory.appending(path: "token"), atomically: true, encoding: .utf8)
        let command = try plugin(directory, "token-plugin", tokenPlugin)
        let target = try targets(cluster, user: execUser(command, directory: directory))
        let api = KubernetesAPI(target: target, credentials: ExecCredentialProvider())
        _ = try api.version()
        // The API server lets the token expire; the plugin now hands out another.
        try cluster.call("POST", "/_fake/tokens", json: #"{"admin-token":"admin","short-1":{"user":"admin","expires":1},"short-2":"admin"}"#)
        try "short-2".write(to: directory.appending(path: "token"), atomically: true, encoding: .utf8)
        #expect(try api.version() == "v1.37.0-fake")
        #expect(runs(directory) == 2)
    }

    @Test func failureGarbageHangAndMissingCommandAreReportedOnTheCluster() throws {
        let cluster = try FakeCluster()
        let directory = cluster.directory
        var retry = RetryPolicy()
        retry.execTimeout = .seconds(1)
        func failure(_ script: String, more: [String] = []) throws -> String {
            let command = try plugin(directory, "plugin-\(UUID().uuidString)", script)
            let target = try targets(cluster, user: execUser(command, directory: directory, more: more))
            let api = KubernetesAPI(target: target, retry: retry, credentials: ExecCredentialProvider())
            return errorText { _ = try api.version() }
        }
        let failed = try failure(
            "#!/bin/sh\necho 'error: cannot log in as alice with password hunter2-secret' >&2\necho '{\"token\":\"printed-secret\"}'\nexit 3\n",
            more: ["- {name: PASSWORD, value: hunter2-secret}"])
        #expect(failed.hasPrefix("version on cluster ctx: getting credentials: exec plugin"), "\(failed)")
        #expect(failed.contains("exit status 3") && failed.contains("cannot log in as alice"), "\(failed)")
        #expect(!failed.contains("hunter2-secret") && !failed.contains("printed-secret"), "\(failed)")

        let garbage = try failure("#!/bin/sh\necho 'token: garbage-secret'\n")
        #expect(garbage.contains("not an ExecCredential") && !garbage.contains("garbage-secret"), "\(garbage)")
        let noStatus = try failure("#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\"}'\n")
        #expect(
            noStatus.contains(
                "configured to use API version client.authentication.k8s.io/v1, plugin returned version client.authentication.k8s.io/v1beta1"),
            "\(noStatus)")

        let started = Date()
        let hung = try failure("#!/bin/sh\necho 'waiting for the browser' >&2\nsleep 30\n")
        #expect(hung.contains("did not finish within 1s") && hung.contains("waiting for the browser"), "\(hung)")
        #expect(Date().timeIntervalSince(started) < 15)

        let missing = try targets(
            cluster,
            user: [
                "exec:", "  apiVersion: client.authentication.k8s.io/v1", "  command: no-such-plugin-\(UUID().uuidString)",
                "  interactiveMode: IfAvailable",
                "  installHint: 'install it with: apt-get install no-such-plugin'",
            ])
        let notFound = errorText { _ = try KubernetesAPI(target: missing, credentials: ExecCredentialProvider()).version() }
        #expect(notFound.contains("not found") && notFound.contains("install it with: apt-get install no-such-plugin"), "\(notFound)")
    }

    @Test func aHangingPluginDoesNotBlockOtherClusters() throws {
        let cluster = try FakeCluster()
        var retry = RetryPolicy()
        retry.execTimeout = .seconds(5)
        let hanging = try plugin(cluster.directory, "hang", "#!/bin/sh\nsleep 30\n")
        let slow = try targets(cluster, user: execUser(hanging, directory: cluster.directory))
        let fast = try #require(try KubeConfigLoader.load(paths: [cluster.kubeconfig]).first { $0.name == "token" })
        let provider = ExecCredentialProvider()
        // The hanging plugin runs on its own thread, as a push to its cluster would.
        let policy = retry
        let blocked = Mutex("")
        let done = DispatchSemaphore(value: 0)
        Thread {
            let text = errorText { _ = try KubernetesAPI(target: slow, retry: policy, credentials: provider).version() }
            blocked.withLock { $0 = text }
            done.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.3)
        let started = Date()
        #expect(try KubernetesAPI(target: fast, credentials: provider).version() == "v1.37.0-fake")
        #expect(Date().timeIntervalSince(started) < 4)
        #expect(done.wait(timeout: .now() + 30) == .success)
        #expect(blocked.withLock { $0 }.contains("did not finish"))
    }

    @Test func callersWaitingForAFailedRunShareItsError() throws {
        let cluster = try FakeCluster()
        let directory = cluster.directory
        let command = try plugin(directory, "hang", "#!/bin/sh\necho run >> \"$DIR/runs\"\nsleep 30\n")
        let target = try targets(cluster, user: execUser(command, directory: directory))
        guard case .exec(let config) = target.auth else {
            Issue.record("not exec")
            return
        }
        let provider = ExecCredentialProvider()
        let errors = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<3 {
            Thread {
                let text = errorText { _ = try provider.credential(config, timeout: .seconds(2)) }
                errors.withLock { $0.append(text) }
                done.signal()
            }.start()
        }
        for _ in 0..<3 { #expect(done.wait(timeout: .now() + 30) == .success) }
        #expect(errors.withLock { $0 }.allSatisfy { $0.contains("did not finish within 2s") })
        #expect(runs(directory) == 1)
    }

    @Test func execStanzasClientGoRefusesAreUnusable() throws {
        let cluster = try FakeCluster()
        func reason(_ stanza: [String]) throws -> String {
            try targets(cluster, user: ["exec:"] + stanza.map { "  " + $0 }).unusableReason ?? "usable"
        }
        #expect(
            try reason(["apiVersion: client.authentication.k8s.io/v1", "command: aws", "interactiveMode: Always"]).contains("interactiveMode: Always")
        )
        #expect(try reason(["apiVersion: client.authentication.k8s.io/v1", "command: aws"]).contains("interactiveMode must be specified"))
        #expect(try reason(["apiVersion: client.authentication.k8s.io/v1alpha1", "command: aws"]).contains("not supported"))
        #expect(try reason(["apiVersion: client.authentication.k8s.io/v1beta1", "command: aws"]) == "usable")
        // A command with a path separator is relative to the kubeconfig.
        let relative = try targets(cluster, user: ["exec:", "  apiVersion: client.authentication.k8s.io/v1beta1", "  command: ./bin/plugin"])
        guard case .exec(let config) = relative.auth else {
            Issue.record("not exec")
            return
        }
        #expect(config.command == cluster.directory.appending(path: "bin/plugin").path())
    }
}

@Suite struct ProxyTests {
    @Test func kubeconfigProxyURLCarriesEveryRequest() throws {
        let cluster = try FakeCluster()
        let proxy = try LoopbackProxy()
        // An explicit proxy-url applies even to a loopback server.
        let target = try targets(cluster, clusterFields: ["proxy-url: \(proxy.url)"], user: ["token: admin-token"])
        #expect(target.proxyURL == proxy.url && !target.proxyFromEnvironment)
        #expect(try KubernetesAPI(target: target).version() == "v1.37.0-fake")
        #expect(proxy.targets.contains("127.0.0.1:\(cluster.port)"))
    }

    @Test func socks5ProxyResolvesTheServerName() throws {
        let cluster = try FakeCluster(serverCertificate: .dnsOnly)
        let proxy = try LoopbackProxy()
        let target = try targets(
            cluster, server: "https://kube.test:\(cluster.port)", clusterFields: ["proxy-url: socks5://127.0.0.1:\(proxy.port)"],
            user: ["token: admin-token"])
        #expect(try KubernetesAPI(target: target).version() == "v1.37.0-fake")
        #expect(proxy.targets == ["kube.test:\(cluster.port)"])
    }

    @Test func environmentProxyAndNoProxyAsClientGo() throws {
        let cluster = try FakeCluster(serverCertificate: .dnsOnly)
        let proxy = try LoopbackProxy()
        let server = "https://kube.test:\(cluster.port)"
        let viaEnvironment = try targets(
            cluster, server: server, user: ["token: admin-token"], environment: ["HTTPS_PROXY": "127.0.0.1:\(proxy.port)"])
        #expect(viaEnvironment.proxyURL == "http://127.0.0.1:\(proxy.port)" && viaEnvironment.proxyFromEnvironment)
        #expect(try KubernetesAPI(target: viaEnvironment).version() == "v1.37.0-fake")
        #expect(proxy.targets == ["kube.test:\(cluster.port)"])
        // NO_PROXY, loopback servers and proxy-url's precedence.
        for noProxy in ["kube.test", ".test", "*", "kube.test:\(cluster.port)", "example.com,test"] {
            let exempt = try targets(
                cluster, server: server, user: ["token: admin-token"], environment: ["https_proxy": proxy.url, "NO_PROXY": noProxy])
            #expect(exempt.proxyURL == nil, "NO_PROXY=\(noProxy)")
        }
        for noProxy in ["kube.test:1", "other.test", ".kube.test"] {
            let kept = try targets(
                cluster, server: server, user: ["token: admin-token"], environment: ["HTTPS_PROXY": proxy.url, "NO_PROXY": noProxy])
            #expect(kept.proxyURL == proxy.url, "NO_PROXY=\(noProxy)")
        }
        let loopback = try targets(cluster, user: ["token: admin-token"], environment: ["HTTPS_PROXY": proxy.url])
        #expect(loopback.proxyURL == nil)
        let httpOnly = try targets(cluster, server: server, user: ["token: admin-token"], environment: ["HTTP_PROXY": proxy.url])
        #expect(httpOnly.proxyURL == nil)
        let explicit = try targets(
            cluster, server: server, clusterFields: ["proxy-url: socks5://127.0.0.1:1"], user: ["token: admin-token"],
            environment: ["HTTPS_PROXY": proxy.url])
        #expect(explicit.proxyURL == "socks5://127.0.0.1:1" && !explicit.proxyFromEnvironment)
        let cidr = try targets(
            cluster, server: "https://10.1.2.3:6443", user: ["token: admin-token"], environment: ["HTTPS_PROXY": proxy.url, "NO_PROXY": "10.0.0.0/8"])
        #expect(cidr.proxyURL == nil)
    }

    @Test func aRefusingProxyIsNamed() throws {
        let cluster = try FakeCluster()
        var retry = RetryPolicy()
        retry.attempts = 1
        let refusing = try LoopbackProxy(refuse: true)
        let tunnel = try targets(cluster, clusterFields: ["proxy-url: \(refusing.url)"], user: ["token: admin-token"])
        let refused = errorText { _ = try KubernetesAPI(target: tunnel, retry: retry).version() }
        #expect(refused.contains("proxy \(refusing.url) refused the tunnel to 127.0.0.1:\(cluster.port) with HTTP 403"), "\(refused)")
        // Nothing listens on port 1; user information is never shown.
        let closed = try targets(cluster, clusterFields: ["proxy-url: 'http://alice:proxy-secret@127.0.0.1:1'"], user: ["token: admin-token"])
        let unreachable = errorText { _ = try KubernetesAPI(target: closed, retry: retry).version() }
        #expect(unreachable.contains("proxy failed: proxy http://127.0.0.1:1 cannot be used"), "\(unreachable)")
        #expect(!unreachable.contains("proxy-secret"))
        let wrongScheme = try targets(cluster, clusterFields: ["proxy-url: 'ftp://alice:proxy-secret@127.0.0.1:1'"], user: ["token: admin-token"])
        #expect(
            wrongScheme.unusableReason?.contains("is not an http, https or socks5 URL") == true
                && wrongScheme.unusableReason?.contains("proxy-secret") == false)
    }

    @Test func inClusterFollowsTheEnvironmentProxy() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "sa-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try "ca".write(to: root.appending(path: "ca.crt"), atomically: true, encoding: .utf8)
        try "token".write(to: root.appending(path: "token"), atomically: true, encoding: .utf8)
        let pod = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", "HTTPS_PROXY": "http://proxy.example:3128"]
        #expect(KubeConfigLoader.inCluster(environment: pod, root: root.path())?.proxyURL == "http://proxy.example:3128")
        let exempt = pod.merging(["NO_PROXY": "10.96.0.0/12"]) { $1 }
        #expect(KubeConfigLoader.inCluster(environment: exempt, root: root.path())?.proxyURL == nil)
    }

    @Test func redactsUserInformationAndQueries() {
        #expect(Redaction.url("https://alice:secret@proxy.example:3128/path?token=x#frag") == "https://proxy.example:3128/path")
        #expect(Redaction.url("https://api.example:6443") == "https://api.example:6443")
        #expect(Redaction.url("socks5://bob@127.0.0.1:1080") == "socks5://127.0.0.1:1080")
    }
}

@Suite struct TLSServerNameTests {
    @Test func tlsServerNameLetsTheClientIn() throws {
        let cluster = try FakeCluster(serverCertificate: .dnsOnly)
        let named = try targets(cluster, clusterFields: ["tls-server-name: kube.test"], user: ["token: admin-token"])
        #expect(try KubernetesAPI(target: named).version() == "v1.37.0-fake")
        let info = try KubernetesAPI(target: named).list(.service, namespace: "default", labelSelector: "a=b")
        #expect(info.isEmpty)
    }

    @Test func eachCertificateFailureSaysWhatFailed() throws {
        var retry = RetryPolicy()
        retry.attempts = 1
        let dnsOnly = try FakeCluster(serverCertificate: .dnsOnly)
        let byAddress = try targets(dnsOnly, user: ["token: admin-token"])
        let noIPs = errorText { _ = try KubernetesAPI(target: byAddress, retry: retry).version() }
        #expect(noIPs.contains("TLS failed: x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"), "\(noIPs)")
        #expect(noIPs.contains("kube.test") && noIPs.contains("tls-server-name"), "\(noIPs)")
        let wrongName = try targets(dnsOnly, clusterFields: ["tls-server-name: other.test"], user: ["token: admin-token"])
        let mismatch = errorText { _ = try KubernetesAPI(target: wrongName, retry: retry).version() }
        #expect(mismatch.contains("x509: certificate is valid for kube.test, not other.test"), "\(mismatch)")

        let standard = try FakeCluster()
        let untrusted = try #require(try KubeConfigLoader.load(paths: [standard.kubeconfig]).first { $0.name == "untrusted" })
        let unknown = errorText { _ = try KubernetesAPI(target: untrusted, retry: retry).version() }
        #expect(unknown.contains("x509: certificate signed by unknown authority") && unknown.contains("fake-ca"), "\(unknown)")

        let expired = try FakeCluster(serverCertificate: .expired)
        let old = try targets(expired, user: ["token: admin-token"])
        let expiredText = errorText { _ = try KubernetesAPI(target: old, retry: retry).version() }
        #expect(expiredText.contains("x509: certificate has expired or is not yet valid") && expiredText.contains("GMT"), "\(expiredText)")
    }
}
