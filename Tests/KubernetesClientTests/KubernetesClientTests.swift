import Foundation
import KubernetesClient
import RegistryCore
import TestSupport
import Testing

@Suite struct KubernetesClientTests {
    @Test func decodesValidationErrorsWithCauses() throws {
        let cluster = try FakeCluster()
        let target = try #require(try KubeConfigLoader.load(paths: [cluster.kubeconfig]).first { $0.name == "token" })
        let api = KubernetesAPI(target: target)
        let invalid = try JSONParser.parse(
            Array(
                #"{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"x","namespace":"default"},"subsets":[{"addresses":[{"ip":"127.0.0.1"}]}]}"#
                    .utf8))
        #expect {
            _ = try api.apply(invalid, dryRun: false)
        } throws: { error in
            guard let error = error as? KubernetesError, case .status(let status) = error.cause else { return false }
            return status.code == 422 && status.reason == "Invalid" && status.causes.first?.field == "subsets[0].addresses[0].ip"
                && error.description.hasPrefix("Endpoints/default/x on cluster token: Invalid")
        }
    }

    @Test func mergesKubeconfigsAsKubectlDoes() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "kubeconfig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let first = directory.appending(path: "first").path()
        let second = directory.appending(path: "second").path()
        try """
        clusters:
        - name: a
          cluster: {server: "https://a.example:6443", insecure-skip-tls-verify: true}
        users:
        - name: u
          user: {token: first}
        contexts:
        - name: one
          context: {cluster: a, user: u}
        """.write(toFile: first, atomically: true, encoding: .utf8)
        try """
        clusters:
        - name: a
          cluster: {server: "https://ignored.example"}
        - name: b
          cluster: {server: "https://b.example", certificate-authority: missing.crt}
        - name: c
          cluster: {server: "https://c.example", insecure-skip-tls-verify: true, certificate-authority-data: Zm9v}
        users:
        - name: u
          user: {token: ignored}
        - name: basic
          user: {username: admin, password: secret}
        - name: provider
          user: {auth-provider: {name: gcp}}
        contexts:
        - name: one
          context: {cluster: b, user: u}
        - name: two
          context: {cluster: b, user: u}
        - name: three
          context: {cluster: a, user: basic}
        - name: four
          context: {cluster: a, user: provider}
        - name: five
          context: {cluster: c, user: u}
        - name: six
          context: {cluster: nowhere, user: u}
        """.write(toFile: second, atomically: true, encoding: .utf8)
        let paths = KubeConfigLoader.defaultPaths(environment: ["KUBECONFIG": "\(first):\(second)"])
        #expect(paths == [first, second])
        let targets = try KubeConfigLoader.load(paths: paths)
        let byName = Dictionary(uniqueKeysWithValues: targets.map { ($0.name, $0) })
        #expect(targets.map(\.name) == ["one", "two", "three", "four", "five", "six"])
        #expect(byName["one"]?.server == "https://a.example:6443" && byName["one"]?.auth == .token("first"))
        #expect(byName["one"]?.tls.insecureSkipVerify == true)
        #expect(byName["two"]?.unusableReason?.contains("missing.crt") == true)
        #expect(byName["three"]?.authKind == "basic" && byName["three"]?.usable == false)
        #expect(byName["four"]?.authKind == "auth-provider" && byName["four"]?.usable == false)
        #expect(byName["five"]?.unusableReason?.contains("insecure-skip-tls-verify") == true)
        #expect(byName["six"]?.usable == false)
        #expect(KubeConfigLoader.defaultPaths(environment: ["HOME": "/home/x"]) == ["/home/x/.kube/config"])
    }

    @Test func findsTheInClusterConfiguration() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "sa-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try "ca".write(to: root.appending(path: "ca.crt"), atomically: true, encoding: .utf8)
        try "token".write(to: root.appending(path: "token"), atomically: true, encoding: .utf8)
        #expect(KubeConfigLoader.inCluster(environment: [:], root: root.path()) == nil)
        let ipv6 = KubeConfigLoader.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"], root: root.path())
        #expect(ipv6?.server == "https://[fd00::1]:443" && ipv6?.name == "in-cluster" && ipv6?.authKind == "tokenFile" && ipv6?.usable == true)
        let ipv4 = KubeConfigLoader.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"], root: root.path())
        #expect(ipv4?.server == "https://10.96.0.1:443")
    }
}

@Suite struct KubernetesTimeoutTests {
    @Test func timesOutAndRetriesABoundedNumberOfTimes() throws {
        let cluster = try FakeCluster()
        try cluster.call("POST", "/_fake/faults", json: #"[{"method":"GET","path":"/version","delay":3,"times":5}]"#)
        let target = try #require(try KubeConfigLoader.load(paths: [cluster.kubeconfig]).first { $0.name == "token" })
        var retry = RetryPolicy()
        retry.attempts = 2
        retry.timeout = .seconds(1)
        retry.initialBackoff = .milliseconds(10)
        let started = Date()
        #expect {
            _ = try KubernetesAPI(target: target, retry: retry).version()
        } throws: { error in
            guard let error = error as? KubernetesError, case .transport(.timeout) = error.cause else { return false }
            return error.description.hasPrefix("version on cluster token: timed out")
        }
        #expect(Date().timeIntervalSince(started) < 5)
    }
}
