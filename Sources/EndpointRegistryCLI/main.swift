import ArgumentParser
import CTCMalloc
import Dispatch
import Foundation
import Logging
import RegistryAPI
import RegistryCore
import RegistryResources

// Installed as `kubectl-registry`, the binary is a kubectl plugin whose root is the client.
if let first = CommandLine.arguments.first, KubectlRegistry.isPluginName(first) {
    KubectlRegistry.main()
} else {
    EndpointRegistry.main()
}

/// `endpoint-registry`: the registry server, its offline tools and its client. Without a
/// subcommand it prints its help (serving is `endpoint-registry serve`).
struct EndpointRegistry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "endpoint-registry",
        abstract: "A registry of external services that renders and pushes their Kubernetes Service and Endpoints objects.",
        discussion: """
            The client commands talk to the server given by --server or ENDPOINT_REGISTRY_URL \
            (default http://127.0.0.1:8478) with the token of --token-file, \
            ENDPOINT_REGISTRY_TOKEN_FILE or ENDPOINT_REGISTRY_TOKEN. Exit statuses: 0 success \
            (diff: no differences), 1 diff found differences, 2 a request or an item failed or a \
            file is invalid, 3 the server could not be reached, 4 not authenticated or not \
            allowed, 64 wrong usage. Shell completion: endpoint-registry \
            --generate-completion-script bash|zsh|fish.
            """,
        version: BuildInfo.line,
        subcommands: [Serve.self, Render.self, Backup.self, MigrateStore.self, Version.self, Healthcheck.self] + clientCommands)
}

/// The version and the commit of this build.
enum BuildInfo {
    static var line: String { "endpoint-registry \(RegistryResources.version) (commit \(RegistryResources.commit))" }
}

/// `endpoint-registry version`: the same line as `--version`.
struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version and the git commit this binary was built from.")

    func run() {
        print(BuildInfo.line)
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the REST API.",
        discussion: ServerSettings.helpText)

    /// Every option of the settings table (`ServerSettings.table`), parsed by it rather than by
    /// ArgumentParser so that each setting is declared once.
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp(visibility: .hidden))
    var options: [String] = []

    func run() throws {
        let configuration: ServerConfiguration
        do {
            configuration = try ServerSettings.resolve(arguments: options, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
        LoggingSystem.bootstrap { label in
            var handler = StderrLogHandler(label: label, format: configuration.logFormat)
            handler.logLevel = configuration.logLevel
            return handler
        }
        let logger = Logger(label: "endpoint-registry")
        // The allocator the executable links (`CTCMalloc`), unless something took its place.
        let allocator = String(cString: CTCMalloc_version())
        if CTCMalloc_servesMalloc() == 1 {
            logger.notice("allocator: tcmalloc (\(allocator))")
        } else {
            logger.warning("allocator: malloc is not tcmalloc's (\(allocator) is linked; an LD_PRELOAD took its place?)")
        }
        let service: RegistryService
        do {
            service = try RegistryService(configuration: configuration, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        signal(SIGHUP, SIG_IGN)
        let reload = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        reload.setEventHandler { service.reload() }
        reload.resume()
        waitForTerminationSignal()
        reload.cancel()
        service.shutdown()
        LogSink.standardError.flush()
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
            registrations (and files that cannot be read) are reported on stderr with their field \
            paths, nothing is printed, and the exit status is 2.
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
            // A file that cannot be read is an invalid input (exit status 2, as apply -f), not
            // wrong usage; every file is still checked.
            let text: String
            do {
                text = try Self.readText(file)
            } catch {
                Console.error("error: \(error.message)")
                failed = true
                continue
            }
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
                if let items = document["items"]?.arrayValue { registrations = items }
                for (itemIndex, registration) in registrations.enumerated() {
                    let place = registrations.count > 1 ? "\(file) document \(index) item \(itemIndex)" : "\(file) document \(index)"
                    if let kind = registration["kind"]?.stringValue, registration["apiVersion"] != nil {
                        FileHandle.standardError.write(
                            Data(
                                "error: \(place) is a Kubernetes \(kind) manifest, not a registration; import manifests into a registry with POST /v1/import (see README.md, \"Importing existing manifests\")\n"
                                    .utf8))
                        failed = true
                        continue
                    }
                    switch ServiceDecoder.decode(registration) {
                    case .success(let input):
                        let rendering = ManifestRenderer.render(input.service, mode: mode)
                        objects += rendering.objects
                        warnings += rendering.warnings
                    case .failure(let failure):
                        report(place, failure.violations)
                        failed = true
                    }
                }
            }
        }
        // Exit status 2, as apply, diff and import for an invalid file (1 is diff's "differences").
        guard !failed else { throw ExitCode(ClientExit.failed) }
        for warning in warnings { Console.error("Warning: \(warning)") }
        FileHandle.standardOutput.write(Data(format.serialize(objects)))
    }

    /// The UTF-8 text of a file (`-`: standard input), or an error sentence naming it.
    private static func readText(_ file: String) throws(ValidationError) -> String {
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
                throw ValidationError("\(file) does not exist")
            }
            guard !isDirectory.boolValue else { throw ValidationError("\(file) is a directory; name the registration files in it") }
            guard let contents = FileManager.default.contents(atPath: file) else {
                throw ValidationError("\(file) cannot be read (check its permissions)")
            }
            data = contents
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(file) is not UTF-8 text") }
        return text
    }

    private func report(_ place: String, _ violations: [FieldViolation]) {
        for violation in violations {
            Console.error("error: \(place): \(violation.field.isEmpty ? "" : violation.field + ": ")\(violation.message)")
        }
    }
}
