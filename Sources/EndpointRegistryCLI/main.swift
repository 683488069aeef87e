import ArgumentParser
import Dispatch
import Foundation
import Logging
import RegistryAPI
import RegistryCore

/// `endpoint-registry`: the registry server and its offline tools.
@main
struct EndpointRegistry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "endpoint-registry",
        abstract: "A registry of external services that renders and pushes their Kubernetes Service and Endpoints objects.",
        subcommands: [Serve.self, Render.self],
        defaultSubcommand: Serve.self)
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the REST API.",
        discussion: """
            Every option can also be set through the environment variable named after it \
            (e.g. ENDPOINT_REGISTRY_PORT for --port); a flag wins over the environment.
            """)

    @Option(help: "Numeric IPv4 or IPv6 address to listen on (default 127.0.0.1). [ENDPOINT_REGISTRY_HOST]")
    var host: String?
    @Option(help: "TCP port; 0 picks a free one and logs it (default 8080). [ENDPOINT_REGISTRY_PORT]")
    var port: Int?
    @Option(help: "SQLite database file; its directory is created (default ./data/registry.sqlite). [ENDPOINT_REGISTRY_DATABASE]")
    var database: String?
    @Option(
        help: """
            full: fsync every commit (survives power loss); normal: fsync at checkpoints (survives a process crash or kill -9, \
            may lose the last commits on power loss). Default full. [ENDPOINT_REGISTRY_DURABILITY]
            """)
    var durability: String?
    @Option(help: "Worker threads answering requests (default 2 x cores, at least 4). [ENDPOINT_REGISTRY_THREADS]")
    var threads: Int?
    @Option(help: "Largest request body in bytes; larger ones get 413 (default 4194304). [ENDPOINT_REGISTRY_MAX_BODY_BYTES]")
    var maxBodyBytes: Int?
    @Option(help: "Most connections served at once (default 1000). [ENDPOINT_REGISTRY_CONNECTION_LIMIT]")
    var connectionLimit: Int?
    @Option(help: "Seconds before an idle or stalled connection is closed (default 30). [ENDPOINT_REGISTRY_CONNECTION_TIMEOUT]")
    var connectionTimeout: Int?
    @Option(
        help: "Bytes of memory per connection for the request line, headers and buffers; larger headers get 431 (default 32768). [ENDPOINT_REGISTRY_CONNECTION_MEMORY]"
    )
    var connectionMemory: Int?
    @Option(help: "trace, debug, info, notice, warning, error or critical (default info). [ENDPOINT_REGISTRY_LOG_LEVEL]")
    var logLevel: String?
    @Option(help: "text or json (default text). Logs go to stderr, one line per request. [ENDPOINT_REGISTRY_LOG_FORMAT]")
    var logFormat: String?
    @Option(help: "PEM certificate file; with --tls-key serves HTTPS. [ENDPOINT_REGISTRY_TLS_CERT]")
    var tlsCert: String?
    @Option(help: "PEM private key file for --tls-cert. [ENDPOINT_REGISTRY_TLS_KEY]")
    var tlsKey: String?
    @Option(
        help: """
            YAML or JSON file of bearer tokens (name, role, namespaces, sha256); reloaded on SIGHUP. Without it every caller \
            is anonymous with full rights and the server binds to loopback only. [ENDPOINT_REGISTRY_TOKENS_FILE]
            """)
    var tokensFile: String?
    @Flag(help: "Allow running without --tokens-file on a non-loopback address. [ENDPOINT_REGISTRY_INSECURE_ALLOW_ANONYMOUS]")
    var insecureAllowAnonymous = false
    @Option(help: "Kubeconfig files (colon-separated, merged as kubectl does) naming the clusters to push to. Default ~/.kube/config. [KUBECONFIG]")
    var kubeconfig: String?
    @Option(help: "Comma-separated cluster names bound to services created without \"clusters\" (default none). [ENDPOINT_REGISTRY_DEFAULT_CLUSTERS]")
    var defaultClusters: String?
    @Option(help: "Seconds between full resyncs that compare live objects with the registry and repair drift (default 300). [ENDPOINT_REGISTRY_RESYNC_INTERVAL]")
    var resyncInterval: Int?
    @Option(help: "Most services reconciled at once per cluster (default 4). [ENDPOINT_REGISTRY_CLUSTER_CONCURRENCY]")
    var clusterConcurrency: Int?
    @Option(help: "Most health-check probes in flight at once (default 64, 1-1024). [ENDPOINT_REGISTRY_HEALTH_CHECK_CONCURRENCY]")
    var healthCheckConcurrency: Int?
    @Option(help: "true: /metrics needs no token (default false). [ENDPOINT_REGISTRY_PUBLIC_METRICS]")
    var publicMetrics: Bool?
    @Option(help: "false: /openapi.yaml needs a token (default true). [ENDPOINT_REGISTRY_PUBLIC_OPENAPI]")
    var publicOpenAPI: Bool?

    func run() throws {
        var flags = ServerConfiguration.Flags()
        flags.host = host
        flags.port = port
        flags.database = database
        flags.durability = durability
        flags.threads = threads
        flags.maxBodyBytes = maxBodyBytes
        flags.connectionLimit = connectionLimit
        flags.connectionTimeout = connectionTimeout
        flags.connectionMemory = connectionMemory
        flags.logLevel = logLevel
        flags.logFormat = logFormat
        flags.tlsCert = tlsCert
        flags.tlsKey = tlsKey
        flags.tokensFile = tokensFile
        flags.insecureAllowAnonymous = insecureAllowAnonymous ? true : nil
        flags.publicMetrics = publicMetrics
        flags.publicOpenAPI = publicOpenAPI
        flags.kubeconfig = kubeconfig
        flags.defaultClusters = defaultClusters
        flags.resyncInterval = resyncInterval
        flags.clusterConcurrency = clusterConcurrency
        flags.healthCheckConcurrency = healthCheckConcurrency
        let configuration: ServerConfiguration
        do {
            configuration = try ServerConfiguration.resolve(flags: flags, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
        LoggingSystem.bootstrap { label in
            var handler = StderrLogHandler(label: label, format: configuration.logFormat)
            handler.logLevel = configuration.logLevel
            return handler
        }
        let logger = Logger(label: "endpoint-registry")
        let service: RegistryService
        do {
            service = try RegistryService(configuration: configuration, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        signal(SIGHUP, SIG_IGN)
        let reload = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        reload.setEventHandler { service.reloadTokens() }
        reload.resume()
        waitForTerminationSignal()
        reload.cancel()
        service.shutdown()
    }

    /// Blocks until SIGTERM or SIGINT arrives.
    private func waitForTerminationSignal() {
        let received = DispatchSemaphore(value: 0)
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { received.signal() }
            source.resume()
            sources.append(source)
        }
        received.wait()
        sources.forEach { $0.cancel() }
    }
}

/// Renders registration files to manifests with no server and no database.
struct Render: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render registration files (JSON or YAML in the API's format) to Kubernetes manifests on stdout.",
        discussion: """
            A file holds one registration, several YAML documents, or {"items": [...]}. Invalid \
            registrations are reported on stderr with their field paths and nothing is printed.
            Example: endpoint-registry render etcd.yaml | kubectl apply -f -
            """)

    @Argument(help: "Registration files; - reads standard input.")
    var files: [String]
    @Option(help: "yaml (default) or json (a v1 List).")
    var format: String = "yaml"
    @Option(help: "Override every service's endpointsMode: endpoints, endpointslices or both.")
    var endpoints: String?

    func run() throws {
        guard let format = ManifestFormat(rawValue: format) else { throw ValidationError("--format must be yaml or json") }
        let mode = try endpoints.map { text in
            guard let mode = EndpointsMode(rawValue: text) else { throw ValidationError("--endpoints must be endpoints, endpointslices or both") }
            return mode
        }
        var objects: [JSONValue] = []
        var warnings: [String] = []
        var failed = false
        for file in files {
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
            guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(file) is not UTF-8 text") }
            let documents: [JSONValue]
            do {
                documents = try ManifestDocuments.parseYAML(text)
            } catch {
                report(file, error.violations)
                failed = true
                continue
            }
            for (index, document) in documents.enumerated() {
                var registrations = [document]
                if case .object(let object) = document, case .array(let items)? = object["items"] { registrations = items }
                for (itemIndex, registration) in registrations.enumerated() {
                    switch ServiceDecoder.decode(registration) {
                    case .success(let input):
                        let rendering = ManifestRenderer.render(input.service, mode: mode)
                        objects += rendering.objects
                        warnings += rendering.warnings
                    case .failure(let failure):
                        let place = registrations.count > 1 ? "\(file) document \(index) item \(itemIndex)" : "\(file) document \(index)"
                        report(place, failure.violations)
                        failed = true
                    }
                }
            }
        }
        guard !failed else { throw ExitCode(1) }
        for warning in warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        FileHandle.standardOutput.write(Data(format.serialize(objects)))
    }

    private func report(_ place: String, _ violations: [FieldViolation]) {
        for violation in violations {
            FileHandle.standardError.write(Data("\(place): \(violation.field.isEmpty ? "" : violation.field + ": ")\(violation.message)\n".utf8))
        }
    }
}
