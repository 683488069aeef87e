import ArgumentParser
import Foundation
import HTTPServer
import KubernetesClient
import RegistryAPI
import RegistryClient

/// `healthcheck`: probes the local server on the address, port and scheme its own settings give,
/// for Docker's `HEALTHCHECK` and exec probes (so they follow `--port` and TLS).
struct Healthcheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Probe a server started with the same settings (flags or ENDPOINT_REGISTRY_* variables): exit 0 when healthy.",
        discussion: """
            Reads the same settings as serve (host, port, TLS) and asks GET /healthz (--ready: \
            /readyz). A wildcard host (0.0.0.0, ::) is probed on loopback. Over HTTPS the \
            certificate is not verified: the probe checks the process behind the local port, \
            not the certificate's identity.
            """)

    @Flag(help: "Ask /readyz (database usable) instead of /healthz.")
    var ready = false

    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("serve's options, e.g. --port 8478", visibility: .hidden))
    var options: [String] = []

    func run() throws {
        let configuration: ServerConfiguration
        do {
            // A probe serves nothing: the rule that an anonymous server binds to loopback only
            // is the server's to enforce, not a reason for the probe to fail.
            var environment = ProcessInfo.processInfo.environment
            if environment["ENDPOINT_REGISTRY_INSECURE_ALLOW_ANONYMOUS"] == nil { environment["ENDPOINT_REGISTRY_INSECURE_ALLOW_ANONYMOUS"] = "true" }
            configuration = try ServerSettings.resolve(arguments: options, environment: environment)
        } catch {
            throw ValidationError(error.description)
        }
        let tls = configuration.http.tlsCertificatePEM != nil
        var host = configuration.http.host
        if host == "0.0.0.0" { host = "127.0.0.1" }
        if host == "::" { host = "::1" }
        if host.contains(":") { host = "[\(host)]" }
        var settings = TLSSettings()
        settings.insecureSkipVerify = true
        let client = RegistryClient(
            settings: ClientSettings(
                server: "\(tls ? "https" : "http")://\(host):\(configuration.http.port)", token: nil, tls: settings, timeout: .seconds(3)))
        do {
            _ = try client.send("GET", ready ? "/readyz" : "/healthz")
        } catch {
            Console.error("unhealthy: \(error)")
            throw ExitCode(1)
        }
    }
}
