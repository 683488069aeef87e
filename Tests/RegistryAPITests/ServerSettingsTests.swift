import Foundation
import HTTPServer
import RegistryAPI
import Testing

/// The settings table: flags, environment variables, defaults, aliases and refusals.
@Suite struct ServerSettingsTests {
    private func resolve(_ arguments: [String] = [], _ environment: [String: String] = [:]) throws -> ServerConfiguration {
        try ServerSettings.resolve(arguments: arguments, environment: environment)
    }

    @Test func refusesAnonymousAccessOffLoopback() throws {
        #expect(throws: ConfigurationError.self) { try resolve(["--host", "0.0.0.0"]) }
        #expect(try resolve(["--host", "0.0.0.0", "--insecure-allow-anonymous"]).allowAnonymousOnAnyAddress)
        #expect(try resolve(["--host", "0.0.0.0", "--tokens-file", "/etc/registry/tokens.yaml"]).tokensFile == "/etc/registry/tokens.yaml")
        #expect(try resolve([], ["ENDPOINT_REGISTRY_HOST": "::1"]).http.host == "::1")
        #expect(throws: ConfigurationError.self) { try resolve(["--host", "::"]) }
    }

    /// Watches hold their connections: they may take half of the connection limit at most, so
    /// that requests and the probes always find a connection.
    @Test func watchesLeaveHalfOfTheConnectionsToRequests() throws {
        #expect(try resolve().watch.maxWatchers == 500)
        #expect(try resolve(["--connection-limit", "100"]).watch.maxWatchers == 50)
        #expect(try resolve([], ["ENDPOINT_REGISTRY_CONNECTION_LIMIT": "5000"]).watch.maxWatchers == 500)
        #expect(try resolve(["--connection-limit", "100", "--max-watchers", "50"]).watch.maxWatchers == 50)
        #expect(try resolve(["--max-watchers", "0", "--connection-limit", "1"]).watch.maxWatchers == 0)
        for (arguments, environment, message) in [
            (["--max-watchers", "501"], [String: String](), "501 is more than half of --connection-limit (1000)"),
            (["--connection-limit", "100"], ["ENDPOINT_REGISTRY_MAX_WATCHERS": "51"], "51 is more than half of --connection-limit (100)"),
        ] {
            let error = try #require(throws: ConfigurationError.self) { try resolve(arguments, environment) }
            #expect(error.setting == "--max-watchers / ENDPOINT_REGISTRY_MAX_WATCHERS")
            #expect(error.message == message + ": each watch holds a connection, and the other half is kept for requests and probes")
        }
    }

    @Test func workerThreadsDefaultToTheCoresOnSQLiteAndTwiceThemOnPostgreSQL() throws {
        #expect(ServerConfiguration.defaultThreads(cores: 1, postgreSQL: false) == 2)
        #expect(ServerConfiguration.defaultThreads(cores: 8, postgreSQL: false) == 8)
        #expect(ServerConfiguration.defaultThreads(cores: 1, postgreSQL: true) == 4)
        #expect(ServerConfiguration.defaultThreads(cores: 8, postgreSQL: true) == 16)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        #expect(try resolve().http.threads == max(2, cores))
        #expect(try resolve(["--database", "postgres://registry@db/registry"]).http.threads == max(4, 2 * cores))
        #expect(try resolve(["--database", "postgres://registry@db/registry", "--threads", "3"]).http.threads == 3)
        #expect(
            try resolve([], ["ENDPOINT_REGISTRY_THREADS": "5", "ENDPOINT_REGISTRY_DATABASE": "postgres://registry@db/registry"]).http.threads == 5)
    }

    @Test func readsSettingsFromTheEnvironmentWithFlagsWinning() throws {
        let configuration = try resolve(
            ["--port", "9000"],
            [
                "ENDPOINT_REGISTRY_PORT": "7000", "ENDPOINT_REGISTRY_THREADS": "3", "ENDPOINT_REGISTRY_LOG_FORMAT": "json",
                "ENDPOINT_REGISTRY_PUBLIC_METRICS": "true",
            ])
        #expect(configuration.http.port == 9000)
        #expect(configuration.http.threads == 3)
        #expect(configuration.logFormat == .json)
        #expect(configuration.openness.metrics)
        #expect(try resolve(["--port=7001"]).http.port == 7001)
        #expect(try resolve([], ["ENDPOINT_REGISTRY_CONNECTION_MEMORY": "65536"]).http.connectionMemoryLimit == 65536)
    }

    @Test func refusesBadValuesNamingTheFlagAndTheVariable() throws {
        for (arguments, environment, expected) in [
            ([String](), ["ENDPOINT_REGISTRY_PORT": "http"], "--port / ENDPOINT_REGISTRY_PORT: \"http\" is not an integer"),
            ([], ["ENDPOINT_REGISTRY_DURABILITY": "maybe"], "--durability / ENDPOINT_REGISTRY_DURABILITY: \"maybe\" is not one of full, normal"),
            (["--connection-memory", "10"], [:], "--connection-memory / ENDPOINT_REGISTRY_CONNECTION_MEMORY: 10 is outside 8192…16777216"),
            (["--public-metrics", "maybe"], [:], "\"maybe\" is not true or false"),
            (["--port"], [:], "--port: needs a value"),
            (["--prot", "1"], [:], "unknown option --prot; did you mean --port?"),
            (["serve"], [:], "unexpected argument \"serve\""),
            (["--host", "example.com"], [:], "\"example.com\" is not a numeric IPv4 or IPv6 address"),
            (["--tls-cert", "/nonexistent/cert.pem"], [:], "the certificate file /nonexistent/cert.pem does not exist"),
            (["--database", "postgres://registry@db:99999/registry"], [:], "port must be a number from 1 to 65535, not \"99999\""),
            ([], ["ENDPOINT_REGISTRY_DATABASE": "postgresql://db/registry?sslmode=sometimes"], "sslmode"),
            (["--database", "postgres:/registry"], [:], "\"postgres:…\" is neither a PostgreSQL URL"),
            ([], ["ENDPOINT_REGISTRY_DATABASE": "postgress://registry@db/registry"], "\"postgress:…\" is neither a PostgreSQL URL"),
            (["--database-password-file", "/nonexistent/pg-password"], [:], "/nonexistent/pg-password is not a readable file"),
            (["--database-password-file", "/tmp"], [:], "/tmp is not a readable file"),
        ] {
            let error = try #require(throws: ConfigurationError.self) { try resolve(arguments, environment) }
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }

    @Test func takesAPostgreSQLURLWithoutItsPasswordInTheConfiguration() throws {
        let configuration = try resolve(["--database", "postgresql://registry@db.example:5432/registry?sslmode=verify-full"])
        #expect(configuration.postgresURL == "postgresql://registry@db.example:5432/registry?sslmode=verify-full")
        let sqlite = try resolve(["--database", "/var/lib/registry/registry.sqlite"])
        #expect(sqlite.postgresURL == nil && sqlite.databasePath == "/var/lib/registry/registry.sqlite")
    }

    @Test func acceptsLocalhostAsLoopback() throws {
        let configuration = try resolve(["--host", "localhost"])
        #expect(configuration.http.host == "127.0.0.1")
        #expect(configuration.bindsLoopbackOnly)
    }

    @Test func publicOpenAPIFlagMatchesItsVariableAndKeepsTheOldSpelling() throws {
        #expect(try resolve(["--public-openapi", "false"]).openness.openAPI == false)
        #expect(try resolve(["--public-open-api", "false"]).openness.openAPI == false)
        #expect(try resolve([], ["ENDPOINT_REGISTRY_PUBLIC_OPENAPI": "false"]).openness.openAPI == false)
        #expect(try resolve().openness.openAPI == true)
    }

    @Test func kubeconfigGivenExplicitlyIsMarkedSo() throws {
        let implicit = try resolve([], ["HOME": "/home/x"])
        #expect(implicit.kubeconfigPaths == ["/home/x/.kube/config"])
        #expect(!implicit.kubeconfigExplicit)
        let explicit = try resolve([], ["HOME": "/home/x", "KUBECONFIG": "/a:/b"])
        #expect(explicit.kubeconfigPaths == ["/a", "/b"])
        #expect(explicit.kubeconfigExplicit)
    }

    /// Every setting has a flag-shaped name, its own variable and help, so the table stays the
    /// one declaration of each.
    @Test func tableDeclaresEachSettingOnce() {
        let names = ServerSettings.table.flatMap { [$0.name] + $0.aliases }
        #expect(Set(names).count == names.count)
        let variables = ServerSettings.table.map(\.environment)
        #expect(Set(variables).count == variables.count)
        for setting in ServerSettings.table {
            #expect(
                setting.environment == "KUBECONFIG"
                    || setting.environment == "ENDPOINT_REGISTRY_" + setting.name.uppercased().replacingOccurrences(of: "-", with: "_"))
            #expect(!setting.help.isEmpty)
            #expect(ServerSettings.helpText.contains("--\(setting.name)"))
        }
    }

    /// The README's configuration table lists every setting with its variable.
    @Test func readmeDocumentsEverySetting() throws {
        let readme = try String(contentsOf: Paths.root.appending(path: "README.md"), encoding: .utf8)
        for setting in ServerSettings.table {
            #expect(readme.contains("`--\(setting.name)`") && readme.contains("`\(setting.environment)`"), "README lacks --\(setting.name)")
        }
    }
}

/// The executable's own behaviour: version, help, and start-up errors as sentences.
@Suite(.serialized) struct CommandLineTests {
    struct Run {
        var status: Int32
        var output: String
        var error: String
    }

    private func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = Paths.binary
        process.arguments = arguments
        var inherited = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ENDPOINT_REGISTRY_") && $0.key != "KUBECONFIG" }
        inherited.merge(environment) { $1 }
        process.environment = inherited
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(
            status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self), error: String(decoding: errorData, as: UTF8.self))
    }

    @Test func versionNamesTheReleaseAndTheCommit() throws {
        let flag = try run(["--version"])
        let command = try run(["version"])
        #expect(flag.status == 0 && command.status == 0)
        #expect(flag.output == command.output)
        let line = flag.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.hasPrefix("endpoint-registry "), "\(line)")
        let commit = try #require(line.split(separator: " ").last.map { String($0.dropLast()) })
        #expect(commit.count == 40 && commit.allSatisfy(\.isHexDigit), "\(line)")
        #expect(!line.contains("unknown"))
    }

    @Test func bareCommandPrintsHelpInsteadOfServing() throws {
        let bare = try run([])
        #expect(bare.status == 0)
        #expect(bare.output.contains("SUBCOMMANDS") && bare.output.contains("serve"))
    }

    @Test func serveHelpListsEveryOptionFromTheTable() throws {
        let help = try run(["serve", "--help"])
        #expect(help.status == 0)
        for setting in ServerSettings.table { #expect(help.output.contains("--\(setting.name)")) }
    }

    @Test(arguments: [
        (["serve", "--database", "/proc/registry/x.sqlite"], "cannot create the database directory /proc/registry"),
        (["serve", "--host", "localhost.example"], "is not a numeric IPv4 or IPv6 address"),
        (["serve", "--port", "0", "--kubeconfig", "/nonexistent/kubeconfig"], "names /nonexistent/kubeconfig, which does not exist"),
        (["render", "/nonexistent/etcd.yaml"], "/nonexistent/etcd.yaml does not exist"),
    ])
    func startUpErrorsAreSentences(arguments: [String], expected: String) throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var arguments = arguments
        if arguments.first == "serve" && !arguments.contains("--database") {
            arguments += ["--database", directory.appending(path: "r.sqlite").path()]
        }
        let result = try run(arguments)
        #expect(result.status != 0)
        #expect(result.error.contains(expected), "\(result.error)")
        #expect(!result.error.contains("NSCocoaErrorDomain") && !result.error.contains("Error Domain"))
    }

    @Test func renderRefusesAKubernetesManifestPointingToImport() throws {
        let file = FileManager.default.temporaryDirectory.appending(path: "manifest-\(UUID().uuidString).yaml")
        try "apiVersion: v1\nkind: Service\nmetadata:\n  name: etcd\nspec:\n  ports:\n  - port: 2379\n".write(
            to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try run(["render", file.path()])
        #expect(result.status != 0)
        #expect(
            result.error.contains("is a Kubernetes Service manifest, not a registration") && result.error.contains("POST /v1/import"),
            "\(result.error)")
    }
}
