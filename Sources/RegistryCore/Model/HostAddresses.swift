/// Addresses given by DNS name (issue 13): the settings of their resolution, and how a
/// registration with `host` addresses becomes the addresses that are rendered.
public enum DNSSettings {
    /// `dnsRefreshSeconds` when absent: each name is resolved again at least every 30 s.
    public static let defaultRefreshSeconds = 30
    /// Bounds of `dnsRefreshSeconds`.
    public static let refreshSecondsRange = 5...3600
    /// `dnsGraceSeconds` when absent: a name that no longer exists keeps its last addresses 5 min.
    public static let defaultGraceSeconds = 300
    /// Bounds of `dnsGraceSeconds` (0: an NXDOMAIN drops the addresses at once).
    public static let graceSecondsRange = 0...86_400
    /// The shortest time between two resolutions of a name, whatever its records' TTL says (a
    /// TTL of 0 or 1 s would otherwise make the registry query without pause). The ceiling is
    /// the service's `dnsRefreshSeconds`: an answer is used until its TTL expires, but never
    /// longer than that.
    public static let ttlFloorSeconds = 5

    /// Seconds until a name answered with records of `ttl` seconds (nil: the resolver gave no
    /// TTL) is resolved again: the TTL within [`ttlFloorSeconds`, `refreshSeconds`].
    public static func refreshInterval(ttl: Int?, refreshSeconds: Int) -> Int {
        guard let ttl else { return refreshSeconds }
        return max(min(ttl, refreshSeconds), min(ttlFloorSeconds, refreshSeconds))
    }
}

extension ExternalService {
    /// `dnsRefreshSeconds` with its default applied.
    public var effectiveDNSRefreshSeconds: Int { dnsRefreshSeconds ?? DNSSettings.defaultRefreshSeconds }
    /// `dnsGraceSeconds` with its default applied.
    public var effectiveDNSGraceSeconds: Int { dnsGraceSeconds ?? DNSSettings.defaultGraceSeconds }

    /// The DNS names of the addresses given by `host`.
    /// (Read in place, without copying each address out of the array: it runs on every commit.)
    public var hosts: Set<String> {
        var hosts = Set<String>()
        for chunk in addresses.chunksWithHosts {
            for index in chunk.indices {
                if let host = chunk[index].host, chunk[index].ip.isEmpty { hosts.insert(host) }
            }
        }
        return hosts
    }

    /// The service as rendered: every address given by `host` replaced by one address per IP
    /// that `resolved` gives for its name (canonical text, any order), with the address's
    /// `port`/`ports`, `servedPorts`, `ready`, `zone` and `hostname`; the expanded addresses keep
    /// `host` (so that views can tell where they came from). An IP already registered with the
    /// same backend ports (or resolved earlier for another name) is not repeated: the first
    /// one, registered IPs before resolved ones, wins. A name without addresses renders none.
    public func resolvingHosts(_ resolved: (String) -> [String]) -> ExternalService {
        guard addresses.contains(where: \.isUnresolvedHost) else { return self }
        struct Key: Hashable {
            var ip: String
            var ports: [Int?]
        }
        var seen = Set<Key>()
        var expanded: [EndpointAddress] = []
        for address in addresses where !address.isUnresolvedHost {
            seen.insert(Key(ip: address.ip, ports: address.backendPorts(for: ports)))
            expanded.append(address)
        }
        for address in addresses where address.isUnresolvedHost {
            let backendPorts = address.backendPorts(for: ports)
            for text in resolved(address.host ?? "") {
                var copy = address
                copy.ip = text
                guard case .success(let ip) = copy.parsedIP, seen.insert(Key(ip: ip.description, ports: backendPorts)).inserted else { continue }
                if copy.ip != ip.description { copy.ip = ip.description }
                expanded.append(copy)
            }
        }
        var service = self
        service.addresses = EndpointAddressList(expanded)
        return service
    }
}
