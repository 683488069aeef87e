import Foundation
import HTTPServer
import RegistryCore
import Liveness
import Synchronization
import RegistryStorage
import Logging
import RegistryAPI
import TestSupport

/// A real registry on an ephemeral loopback port with a fresh database.
final class TestServer {
    let service: RegistryService
    var port: UInt16 { service.server.port }
    let databasePath: String

    /// `resolver`: what `host` addresses resolve to; by default a table (never the network).
    /// `prober`: what health checks find; by default the real sockets.
    init(
        maxBodyBytes: Int = 1 << 20, resolver: TableResolver = TableResolver(), prober: any Prober = SocketProber(),
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "registry-api-\(UUID().uuidString)")
        let databasePath = directory.appending(path: "registry.sqlite").path()
        self.databasePath = databasePath
        var configuration = ServerConfiguration()
        configuration.databasePath = databasePath
        configuration.http.port = 0
        configuration.http.threads = 4
        configuration.http.maxBodyBytes = maxBodyBytes
        configuration.durability = .normal
        configure(&configuration)
        if TestStore.current == .postgresql && configuration.postgresURL == nil {
            // The fresh database stands for the SQLite file this server would have had; a test
            // that opens an earlier server's file again gets that server's database; a test that
            // chose a file of its own (a full disk, a damaged file) tests SQLite itself.
            if configuration.databasePath == databasePath {
                let url = try TestPostgres.shared().createDatabaseURL()
                TestStore.databases.withLock { $0[databasePath] = url }
                configuration.postgresURL = url
            } else if let url = TestStore.databases.withLock({ $0[configuration.databasePath] }) {
                configuration.postgresURL = url
            }
        }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        service = try RegistryService(configuration: configuration, logger: logger, resolver: resolver, prober: prober)
    }

    /// A server whose only clusters are those of `cluster`'s kubeconfig (no in-cluster target).
    convenience init(cluster: FakeCluster, configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        try self.init { configuration in
            configuration.kubeconfigPaths = [cluster.kubeconfig]
            configuration.inCluster = false
            configure(&configuration)
        }
    }

    func client() throws -> RawHTTPClient { try RawHTTPClient(port: port) }

    deinit { service.shutdown() }
}

/// On the PostgreSQL pass (`TestStore.current`, from TestSupport), each test server gets a fresh
/// database on the shared throwaway PostgreSQL server in place of its SQLite file.
extension TestStore {
    /// The PostgreSQL database made for each test server's SQLite path.
    static let databases = Mutex<[String: String]>([:])
}

/// Answers DNS questions from a table (unknown names: NXDOMAIN), so that no test sends a query.
final class TableResolver: Resolver {
    let answers = Mutex<[String: Result<[String], ResolveFailure>]>([:])

    func resolve(_ host: String) -> Result<ResolvedAddresses, ResolveFailure> {
        answers.withLock { $0[host] ?? .failure(.notFound) }.map { ResolvedAddresses(addresses: $0, ttlSeconds: 30) }
    }
}

/// Answers health-check probes from a table (listed targets fail, the others succeed), so that
/// no test probes a registered address.
final class TableProber: BlockingProber {
    let failing = Mutex<Set<ProbeTarget>>([])

    func probeSynchronously(_ target: ProbeTarget, check: HealthCheck) -> Result<Void, ProbeFailure> {
        failing.withLock { $0.contains(target) } ? .failure(.refused("table")) : .success(())
    }
}

/// Repository paths used by the tests.
enum Paths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let openAPI = root.appending(path: "openapi.yaml")
    /// The seed manifests (`Tests/Fixtures/`).
    static let fixtures = root.appending(path: "Tests/Fixtures")
    /// The files the README uses (`examples/`).
    static let examples = root.appending(path: "examples")

    /// A real kubectl: `KUBECTL` when set (scripts/test sets it to the one it installs from
    /// PyPI into .venv, so these tests run on a fresh machine), else the project's .venv one, else
    /// /usr/bin/kubectl; nil when there is none (a plain `swift test` on a machine without it).
    static var kubectl: URL? {
        if let explicit = ProcessInfo.processInfo.environment["KUBECTL"], !explicit.isEmpty { return URL(fileURLWithPath: explicit) }
        return [root.appending(path: ".venv/bin/kubectl"), URL(fileURLWithPath: "/usr/bin/kubectl")]
            .first { FileManager.default.isExecutableFile(atPath: $0.path()) }
    }

    /// The `endpoint-registry` binary built next to the test bundle.
    static var binary: URL {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        while directory.path() != "/" {
            let candidate = directory.appending(path: "endpoint-registry")
            if FileManager.default.isExecutableFile(atPath: candidate.path()) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return root.appending(path: ".build/debug/endpoint-registry")
    }
}

/// The real `endpoint-registry` run with `arguments` (its environment without this machine's
/// `ENDPOINT_REGISTRY_*`, `KUBECONFIG` and `LD_PRELOAD`), its standard error written to `log`;
/// `stop()` kills it (SIGKILL) and waits for it.
final class LoggedServerProcess {
    let process = Process()
    let log: URL

    init(_ arguments: [String], log: URL) throws {
        self.log = log
        _ = FileManager.default.createFile(atPath: log.path(), contents: nil)
        process.executableURL = Paths.binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("ENDPOINT_REGISTRY_") && $0.key != "KUBECONFIG" && $0.key != "LD_PRELOAD"
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
    }

    /// What the process has logged so far.
    func logText() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Whether the log shows `text` within 20 s.
    func waitFor(_ text: String) -> Bool {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if logText().contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

extension ClientResponse {
    /// The field paths listed in a problem document's `errors`.
    var problemFields: [String] {
        ((json?["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
    }
}

/// Polls `condition` every 50 ms until it holds or `seconds` have passed; its last answer.
func eventually(_ seconds: Double = 15, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return try condition()
}
