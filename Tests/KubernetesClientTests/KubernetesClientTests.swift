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

/// A 2xx answer that is not what was asked for is an error, never "absent" or "empty"; answers
/// are bounded in size; only the API server's NotFound Status means a missing object.
@Suite struct KubernetesAnswerTests {
    private func fault(_ cluster: FakeCluster, _ json: String) throws {
        #expect(try cluster.call("POST", "/_fake/faults", json: json).status == 200)
    }

    private func cause(_ body: () throws -> Void) -> KubernetesError.Cause? {
        do {
            try body()
            return nil
        } catch let error as KubernetesError {
            return error.cause
        } catch {
            return nil
        }
    }

    @Test func malformedOrForeignAnswersAreErrors() throws {
        let cluster = try FakeCluster()
        let target = try #require(try KubeConfigLoader.load(paths: [cluster.kubeconfig]).first { $0.name == "token" })
        let api = KubernetesAPI(target: target)
        #expect(try cluster.applyForeignService(namespace: "garb", name: "garb", selector: "x") == 201)
        let live = try cluster.call("GET", "/api/v1/namespaces/garb/services/garb").body
        #expect(try api.get(.service, namespace: "garb", name: "garb") != nil)
        #expect(try api.get(.service, namespace: "garb", name: "absent") == nil)

        func invalid(_ answer: String, path: String = "/services/garb$", status: Int = 200, _ call: () throws -> Void) throws -> String? {
            let body = String(decoding: JSONWriter.bytes(.string(answer)), as: UTF8.self)
            try fault(cluster, #"[{"method":"GET","path":"\#(path)","status":\#(status),"body":\#(body),"times":10}]"#)
            let found = cause(call)
            try fault(cluster, "[]")
            guard case .invalidResponse(let message)? = found else { return nil }
            return message
        }
        let get = { _ = try api.get(.service, namespace: "garb", name: "garb") }
        #expect(try invalid(live + "trailing-garbage", get)?.contains("not valid JSON") == true)
        #expect(try invalid("[]", get)?.contains("not a Service object") == true)
        #expect(try invalid("{}", get)?.contains("metadata.name") == true)
        #expect(try invalid(live.replacingOccurrences(of: #""kind": "Service""#, with: #""kind": "Endpoints""#), get) != nil)
        let list = { _ = try api.list(.service, namespace: "garb", labelSelector: "a=b") }
        #expect(try invalid(#"{"items":5}"#, path: "/services$", list)?.contains("items") == true)
        #expect(try invalid(#"{"items":[{"metadata":{}}]}"#, path: "/services$", list)?.contains("items[0]") == true)
        #expect(try invalid(#"{"items":[]} x"#, path: "/services$", list) != nil)
        #expect(try invalid("{}", path: "/version", { _ = try api.version() }) != nil)
        // A 404 that is not the API server's NotFound Status (a proxy's page) is no answer about the object.
        try fault(cluster, #"[{"method":"GET","path":"/services/garb$","status":404,"body":"<html>no route</html>","times":10}]"#)
        guard case .status(let status)? = cause(get) else {
            Issue.record("a 404 page was taken for a missing object")
            return
        }
        #expect(status.code == 404)
        try fault(cluster, "[]")
        // List items carry no kind (as from a real API server): they get theirs.
        let items = try api.list(.service, namespace: "garb", labelSelector: "")
        #expect(items.map(LiveObject.kind) == ["Service"])
    }

    @Test func answersBeyondTheBoundAreAbortedWithAClearError() throws {
        let cluster = try FakeCluster()
        let target = try #require(try KubeConfigLoader.load(paths: [cluster.kubeconfig]).first { $0.name == "token" })
        let api = KubernetesAPI(target: target)
        for chunked in [false, true] {
            try fault(
                cluster,
                #"[{"method":"GET","path":"/services/big$","bodyBytes":\#(KubernetesAPI.maxObjectResponseBytes + 1),"chunked":\#(chunked),"times":10}]"#
            )
            let started = Date()
            guard case .transport(.responseTooLarge(let bound))? = cause({ _ = try api.get(.service, namespace: "big", name: "big") }) else {
                Issue.record("an answer beyond the bound was taken (chunked: \(chunked))")
                continue
            }
            #expect(bound == KubernetesAPI.maxObjectResponseBytes)
            // Not retried: one request.
            let log = try cluster.call("GET", "/_fake/requests").body
            #expect(log.components(separatedBy: "/services/big").count - 1 == (chunked ? 2 : 1), "\(log.prefix(300))")
            #expect(Date().timeIntervalSince(started) < 30)
        }
        // Just within the bound is read (and refused as what it is: not the object).
        try fault(cluster, #"[{"method":"GET","path":"/services/big$","bodyBytes":\#(KubernetesAPI.maxObjectResponseBytes),"times":10}]"#)
        guard case .invalidResponse? = cause({ _ = try api.get(.service, namespace: "big", name: "big") }) else {
            Issue.record("an answer within the bound was not read")
            return
        }
    }
}
