import Dispatch
import Liveness
import Logging
import RegistryCore
import RegistryStorage
import Synchronization

/// Brings the health checker's probe targets in line with a service's addresses after its
/// `host` names resolved differently (a DNS change here, or the leader's answers restored from
/// the store on a follower): reads the registration, puts the current answers in place of its
/// names (`DNSRefresher.resolved`) and hands it to the checker, which then probes the new IPs
/// and forgets the old ones; a follower then shows the leader's verdicts on them.
///
/// A read that fails (the database does not answer) is logged and tried again after a backoff
/// (`RetryTimer`: 1 s doubling up to 30 s) until it succeeds, since the answers may not change
/// again for a long time: without it the checker would keep probing the old addresses and a
/// follower would show no verdict for the new ones. Each try reads the registration and the
/// answers as they are then (a commit meanwhile updates the checker itself, and a retry
/// after it reads that commit).
final class ResolvedTargetSync: Sendable {
    /// Reads a service's registration (nil: deleted).
    typealias Read = @Sendable (ServiceKey) throws -> ExternalService?

    private let read: Read
    private let liveness: HealthChecker
    private let dns: DNSRefresher
    private let logger: Logger
    /// The services whose last try failed.
    private let failed = Mutex<Set<ServiceKey>>([])
    private let retries: RetryTimer

    /// `read`: how the registration is read (default: `store.record`; tests give a failing
    /// one). `firstRetryDelay`, `maxRetryDelay`: the backoff after a failed read.
    init(
        store: ServiceStore, liveness: HealthChecker, dns: DNSRefresher, logger: Logger, read: Read? = nil,
        firstRetryDelay: Duration = .seconds(1), maxRetryDelay: Duration = .seconds(30)
    ) {
        self.read = read ?? { try store.record(namespace: $0.namespace, name: $0.name)?.service }
        self.liveness = liveness
        self.dns = dns
        self.logger = logger
        retries = RetryTimer(queue: DispatchQueue(label: "resolved-target-sync"), first: firstRetryDelay, maximum: maxRetryDelay)
    }

    /// The DNS refresher's change notification for one service (on the caller's thread: the
    /// checker has the new targets when this returns, unless the read failed).
    func resolutionChanged(namespace: String, name: String) {
        sync([ServiceKey(namespace: namespace, name: name)])
    }

    private func sync(_ keys: Set<ServiceKey>) {
        var failures: Set<ServiceKey> = []
        for key in keys {
            do {
                let service = try read(key)
                liveness.update(namespace: key.namespace, name: key.name, service: service.map(dns.resolved))
            } catch {
                logger.error(
                    "health checks not updated after a DNS change; retrying",
                    metadata: ["service": "\(key.namespace)/\(key.name)", "error": "\(error)"])
                failures.insert(key)
            }
        }
        // Only added here (`retry` takes the set): a key a concurrent failure put back stays.
        if !failures.isEmpty { failed.withLock { $0.formUnion(failures) } }
        if failures.isEmpty {
            retries.succeeded()
        } else {
            retries.failed { [weak self] in self?.retry() }
        }
    }

    /// No retry from now on (shutdown).
    func stop() {
        retries.stop()
    }

    private func retry() {
        let keys = failed.withLock { failed in
            defer { failed.removeAll() }
            return failed
        }
        if !keys.isEmpty { sync(keys) }
    }
}
