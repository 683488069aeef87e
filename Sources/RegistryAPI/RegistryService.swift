import Foundation
public import HTTPServer
import KubernetesClient
import Liveness
public import Logging
import Reconciler
import RegistryResources
public import RegistryStorage

/// A running registry: the opened store and the listening HTTP server. This is the composition
/// root used by `endpoint-registry serve` and by the end-to-end tests alike.
public final class RegistryService: Sendable {
    public let store: ServiceStore
    public let server: HTTPServer
    public let application: RegistryApplication
    private let authenticator: TokenAuthenticator?
    private let logger: Logger
    private let configuration: ServerConfiguration

    /// Opens the database (creating its directory), migrates it, and starts listening.
    public init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let directory = URL(fileURLWithPath: configuration.databasePath).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = try ServiceStore(
            path: configuration.databasePath, durability: configuration.durability,
            migrations: try Migration.parse(RegistryResources.migrations))
        if let tokensFile = configuration.tokensFile {
            authenticator = try TokenAuthenticator(path: tokensFile)
            logger.notice("bearer tokens required", metadata: ["tokensFile": "\(tokensFile)", "tokens": "\(authenticator!.count)"])
        } else {
            authenticator = nil
            logger.warning(
                "no --tokens-file: every caller is anonymous with full rights\(configuration.bindsLoopbackOnly ? "; listening on loopback only" : " (--insecure-allow-anonymous)")")
        }
        var targets = try KubeConfigLoader.load(paths: configuration.kubeconfigPaths)
        if configuration.inCluster, let inCluster = KubeConfigLoader.inCluster(environment: ProcessInfo.processInfo.environment) {
            targets.append(inCluster)
        }
        for target in targets {
            if let reason = target.unusableReason {
                logger.warning("cluster \(target.name) is not usable: \(reason)")
            } else if target.tls.insecureSkipVerify {
                logger.warning("cluster \(target.name): insecure-skip-tls-verify is set, the API server's certificate is NOT verified")
            }
        }
        let known = Set(targets.map(\.name))
        for name in configuration.defaultClusters where !known.contains(name) {
            throw ServerConfiguration.Invalid(
                setting: "--default-clusters / ENDPOINT_REGISTRY_DEFAULT_CLUSTERS",
                message: "no cluster named \"\(name)\" (known: \(known.isEmpty ? "none" : known.sorted().joined(separator: ", ")))")
        }
        var reconcilerConfiguration = Reconciler.Configuration()
        reconcilerConfiguration.resyncInterval = .seconds(configuration.resyncIntervalSeconds)
        reconcilerConfiguration.clusterConcurrency = configuration.clusterConcurrency
        var livenessConfiguration = HealthChecker.Configuration()
        livenessConfiguration.maxInFlight = configuration.healthCheckConcurrency
        application = RegistryApplication(
            store: store, logger: logger, authenticator: authenticator, openness: configuration.openness, clusters: Clusters(targets: targets),
            defaultClusters: configuration.defaultClusters, reconcilerConfiguration: reconcilerConfiguration,
            livenessConfiguration: livenessConfiguration)
        application.reconciler.start()
        try application.startLiveness()
        server = try HTTPServer(configuration: configuration.http, handler: application)
        let host = configuration.http.host.contains(":") ? "[\(configuration.http.host)]" : configuration.http.host
        logger.notice(
            "listening on \(configuration.http.tlsCertificatePEM == nil ? "http" : "https")://\(host):\(server.port)",
            metadata: [
                "port": "\(server.port)", "database": "\(configuration.databasePath)", "durability": "\(configuration.durability.rawValue)",
                "threads": "\(configuration.http.threads)",
            ])
    }

    /// Re-reads the tokens file (on SIGHUP); on error the previous tokens stay in force.
    public func reloadTokens() {
        guard let authenticator else { return }
        do {
            let count = try authenticator.reload()
            logger.notice("tokens reloaded", metadata: ["tokens": "\(count)"])
        } catch {
            logger.error("tokens not reloaded, the previous ones stay in force: \(error)")
        }
    }

    /// Stops taking work, lets in-flight applies and requests finish (within the grace period),
    /// then checkpoints the database.
    public func shutdown() {
        logger.notice("shutting down", metadata: ["inFlight": "\(server.requestsInFlight)"])
        if !application.liveness.shutdown(deadline: .seconds(configuration.shutdownGraceSeconds)) {
            logger.warning("some health-check probes were still running at the shutdown deadline")
        }
        if !application.reconciler.shutdown(deadline: .seconds(configuration.shutdownGraceSeconds)) {
            logger.warning("some cluster applies were still running at the shutdown deadline")
        }
        server.shutdown(deadline: .seconds(configuration.shutdownGraceSeconds))
        do {
            try store.checkpoint()
        } catch {
            logger.error("checkpoint at shutdown failed", metadata: ["error": "\(error)"])
        }
        logger.notice("stopped")
    }
}
