import Foundation
import RegistryAPI
import Testing
import TestSupport

/// A Python client generated from openapi.yaml by openapi-python-client (PyPI, pinned in
/// scripts/python-venv, installed into .venv) drives a running registry: the contract must
/// generate without warnings and the generated models must read every answer they get.
@Suite struct GeneratedClientTests {
    @Test func aGeneratedPythonClientCreatesReadsListsRendersPushesAndDeletes() throws {
        let venv = Paths.root.appending(path: ".venv")
        let generator = venv.appending(path: "bin/openapi-python-client")
        let environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        // The test command installs the tools first; a bare `swift test` installs them here.
        let setup = try runCLI([], environment: environment, executable: Paths.root.appending(path: "scripts/python-venv"))
        try #require(setup.status == 0, "scripts/python-venv: \(setup.stderr)")

        let directory = FileManager.default.temporaryDirectory.appending(path: "generated-client-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // YAML (the OpenAPI document, an import body) has no model in the generator: it is read
        // and sent as bytes, under its own media type.
        let configuration = directory.appending(path: "generator.yaml")
        try "content_type_overrides:\n  application/yaml: application/octet-stream\npost_hooks: []\n".write(
            to: configuration, atomically: true, encoding: .utf8)
        let generated = try runCLI(
            [
                "generate", "--path", Paths.openAPI.path(), "--output-path", directory.appending(path: "registry_client").path(), "--meta", "none",
                "--config", configuration.path(),
            ], environment: environment, executable: generator, currentDirectory: directory)
        try #require(generated.status == 0, "\(generated.stdout)\n\(generated.stderr)")
        #expect(!(generated.stdout + generated.stderr).localizedCaseInsensitiveContains("warning"), "\(generated.stdout)\n\(generated.stderr)")

        let cluster = try FakeCluster()
        let server = try TestServer(cluster: cluster) { $0.tokensFile = Paths.examples.appending(path: "tokens.yaml").path() }
        let exercised = try runCLI(
            [Paths.root.appending(path: "Tests/GeneratedClient/exercise_client.py").path()],
            environment: environment.merging([
                "PYTHONPATH": directory.path(), "REGISTRY_URL": "http://127.0.0.1:\(server.port)",
                "REGISTRY_TOKEN": "example-admin-token-not-secret", "REGISTRY_CLUSTER": "token",
            ]) { $1 },
            executable: venv.appending(path: "bin/python"))
        #expect(exercised.status == 0, "\(exercised.stdout)\n\(exercised.stderr)")
        #expect(exercised.stdout.contains("delete: ok"), "\(exercised.stdout)")
    }
}
