import Foundation
import HTTPServer
import RegistryAPI
import Testing
import Yams

/// The packaging (Dockerfile, deploy/) agrees with the code: one default port everywhere, probes
/// that follow the settings, a pinned image kustomize can change.
@Suite struct PackagingTests {
    static func text(_ path: String) throws -> String {
        try String(contentsOf: Paths.root.appending(path: path), encoding: .utf8)
    }

    static func documents(_ path: String) throws -> [[String: Any]] {
        try Yams.load_all(yaml: text(path)).compactMap { $0 as? [String: Any] }
    }

    @Test func oneDefaultPortEverywhere() throws {
        let port = Int(ServerConfiguration().http.port)
        #expect(port == 8478)
        #expect(port != 8080, "8080 is kubectl's default server when no kubeconfig is found")
        let dockerfile = try Self.text("Dockerfile")
        #expect(dockerfile.contains("ENDPOINT_REGISTRY_PORT=\(port)") && dockerfile.contains("EXPOSE \(port)"))
        let deployment = try #require(try Self.documents("deploy/kubernetes/base/deployment.yaml").first)
        let container = try #require(
            ((deployment["spec"] as? [String: Any])?["template"] as? [String: Any]).flatMap {
                (($0["spec"] as? [String: Any])?["containers"] as? [[String: Any]])?.first
            })
        let env = (container["env"] as? [[String: Any]]) ?? []
        #expect(env.first { $0["name"] as? String == "ENDPOINT_REGISTRY_PORT" }?["value"] as? String == String(port))
        #expect((container["ports"] as? [[String: Any]])?.first?["containerPort"] as? Int == port)
        let service = try #require(try Self.documents("deploy/kubernetes/base/service.yaml").first)
        #expect((((service["spec"] as? [String: Any])?["ports"] as? [[String: Any]])?.first?["port"] as? Int) == port)
        let policy = try #require(try Self.documents("deploy/kubernetes/base/networkpolicy.yaml").first)
        let ingress = ((policy["spec"] as? [String: Any])?["ingress"] as? [[String: Any]])?.first
        #expect((ingress?["ports"] as? [[String: Any]])?.map { $0["port"] as? Int } == [port])
        let readme = try Self.text("README.md")
        #expect(readme.contains("127.0.0.1:\(port)") && !readme.contains("127.0.0.1:8080"))
    }

    @Test func probesAndHealthCheckFollowTheSettings() throws {
        let dockerfile = try Self.text("Dockerfile")
        #expect(dockerfile.contains(#"CMD ["endpoint-registry", "healthcheck"]"#))
        #expect(!dockerfile.contains("127.0.0.1:"))
        let deployment = try #require(try Self.documents("deploy/kubernetes/base/deployment.yaml").first)
        let container = try #require(
            ((deployment["spec"] as? [String: Any])?["template"] as? [String: Any]).flatMap {
                (($0["spec"] as? [String: Any])?["containers"] as? [[String: Any]])?.first
            })
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let command = ((container[probe] as? [String: Any])?["exec"] as? [String: Any])?["command"] as? [String]
            #expect(command?.prefix(2) == ["endpoint-registry", "healthcheck"], "\(probe)")
        }
    }

    @Test func theImageIsPinnedAndKustomizeSetsIt() throws {
        let kustomization = try #require(try Self.documents("deploy/kubernetes/base/kustomization.yaml").first)
        let images = try #require(kustomization["images"] as? [[String: Any]])
        let name = try #require(images.first?["name"] as? String)
        #expect(images.first?["newTag"] as? String == "0.1.0")
        let deployment = try Self.text("deploy/kubernetes/base/deployment.yaml")
        #expect(deployment.contains("image: \(name):0.1.0"))
        #expect(!deployment.contains(":latest"))
        let resources = (kustomization["resources"] as? [String]) ?? []
        #expect(resources.contains("networkpolicy.yaml") && resources.contains("poddisruptionbudget.yaml"))
        #expect(!resources.contains { $0.contains("servicemonitor") }, "the ServiceMonitor needs the Prometheus Operator: optional")
        let files = try FileManager.default.contentsOfDirectory(atPath: Paths.root.appending(path: "deploy/kubernetes/base").path())
        for file in files where file.hasSuffix(".yaml") && file != "kustomization.yaml" {
            #expect(resources.contains(file), "\(file) is not in base/kustomization.yaml")
        }
        // deploy/kubernetes (one replica) and deploy/kubernetes/ha (three) are both base/ with the
        // image set there once; neither sets another image.
        let single = try #require(try Self.documents("deploy/kubernetes/kustomization.yaml").first)
        #expect(single["resources"] as? [String] == ["base"] && single["images"] == nil)
        let ha = try #require(try Self.documents("deploy/kubernetes/ha/kustomization.yaml").first)
        #expect((ha["resources"] as? [String])?.first == "../base" && ha["images"] == nil)
    }
}
