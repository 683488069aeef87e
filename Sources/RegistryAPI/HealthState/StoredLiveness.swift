import Foundation
import Liveness
import Logging
import RegistryCore
import RegistryStorage

/// What the store keeps of one service in `health_state` (issue 16), so that a new leader
/// continues where the old one stopped and followers show the leader's view: the health
/// checker's snapshot (`HealthChecker.snapshot(of:)`) and the DNS refresher's
/// (`DNSRefresher.snapshot(of:)`), each its component's own JSON text, in one JSON object
/// `{"dns": "…", "health": "…"}` (a member only when there is one).
struct StoredLiveness: Codable {
    var dns: String?
    var health: String?

    /// The document to store for `key`; nil when neither component has anything for it (the
    /// stored one is then deleted).
    static func snapshot(of key: ServiceKey, liveness: HealthChecker, dns: DNSRefresher) -> [UInt8]? {
        let stored = StoredLiveness(
            dns: dns.snapshot(of: key).map { String(decoding: $0, as: UTF8.self) },
            health: liveness.snapshot(of: key).map { String(decoding: $0, as: UTF8.self) })
        guard stored.dns != nil || stored.health != nil else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Two optional strings always encode.
        return (try? encoder.encode(stored)).map(Array.init)
    }

    /// Restores stored documents: the DNS answers first (their subscribers bring the health
    /// checker's addresses in line with them), then the health. Documents that cannot be
    /// decoded are logged and ignored. Returns the services whose health or answers were restored.
    @discardableResult
    static func restore(_ documents: [ServiceKey: [UInt8]], liveness: HealthChecker, dns: DNSRefresher, logger: Logger) -> Set<ServiceKey> {
        var answers: [ServiceKey: [UInt8]] = [:]
        var health: [ServiceKey: [UInt8]] = [:]
        let decoder = JSONDecoder()
        for (key, bytes) in documents {
            do {
                let stored = try decoder.decode(StoredLiveness.self, from: Data(bytes))
                if let text = stored.dns { answers[key] = Array(text.utf8) }
                if let text = stored.health { health[key] = Array(text.utf8) }
            } catch {
                logger.warning(
                    "stored health state ignored: not readable", metadata: ["service": "\(key.namespace)/\(key.name)", "error": "\(error)"])
            }
        }
        return dns.restore(answers).union(liveness.restore(health))
    }

    /// The services with something to store: a health check, or names to resolve.
    static func tracked(liveness: HealthChecker, dns: DNSRefresher) -> Set<ServiceKey> {
        liveness.checkedServices.union(dns.resolvingServices)
    }
}
