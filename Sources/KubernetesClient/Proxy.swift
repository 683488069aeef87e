import Foundation

/// Redacts URLs before they are shown: user information (`user:password@`), the query and the
/// fragment are removed, so that `GET /v1/clusters` and logs never carry a secret.
public enum Redaction {
    /// `https://user:secret@proxy:3128/?token=x` → `https://proxy:3128/`. A string that is not
    /// a URL is reduced to what precedes any `@`, `?` or `#` would hide.
    public static func url(_ text: String) -> String {
        var result = text
        if let schemeEnd = result.range(of: "://") {
            let rest = result[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex { "/?#".contains($0) } ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@") {
                result = String(result[..<schemeEnd.upperBound]) + String(rest[rest.index(after: at)...])
            }
        } else if let at = result.lastIndex(of: "@") {
            result = String(result[result.index(after: at)...])
        }
        if let cut = result.firstIndex(where: { $0 == "?" || $0 == "#" }) { result = String(result[..<cut]) }
        return result
    }
}

/// The proxy Go's `http.ProxyFromEnvironment` (used by client-go when a cluster has no
/// `proxy-url`) picks for a server: `HTTPS_PROXY`/`https_proxy` for `https` servers,
/// `HTTP_PROXY`/`http_proxy` for `http` ones (an address without a scheme means `http://`),
/// none for `localhost` and loopback addresses, none when `NO_PROXY`/`no_proxy` matches: `*`,
/// an IP address, a CIDR, or a domain (`example.com` matches it and its subdomains,
/// `.example.com` only subdomains), each optionally with `:port`.
/// Source: golang.org/x/net/http/httpproxy.
enum EnvironmentProxy {
    static func proxy(for server: String, environment: [String: String]) -> String? {
        func variable(_ name: String) -> String? {
            for key in [name.uppercased(), name.lowercased()] { if let value = environment[key], !value.isEmpty { return value } }
            return nil
        }
        guard let components = URLComponents(string: server), let scheme = components.scheme?.lowercased(), var host = components.host?.lowercased()
        else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard var proxy = variable(scheme == "https" ? "HTTPS_PROXY" : "HTTP_PROXY") else { return nil }
        if host == "localhost" || isLoopback(host) { return nil }
        if let exemptions = variable("NO_PROXY"), exempts(exemptions, host: host, port: port) { return nil }
        if !proxy.contains("://") { proxy = "http://" + proxy }
        return proxy
    }

    static func isLoopback(_ host: String) -> Bool {
        if let v4 = IPv4(host) { return v4[0] == 127 }
        if let v6 = IPv6(host) { return v6 == [UInt8](repeating: 0, count: 15) + [1] }
        return false
    }

    static func exempts(_ list: String, host: String, port: Int) -> Bool {
        for rawEntry in list.split(separator: ",") {
            var entry = rawEntry.trimmingCharacters(in: .whitespaces).lowercased()
            if entry.isEmpty { continue }
            if entry == "*" { return true }
            if entry.contains("/") {
                if contains(cidr: entry, host) { return true }
                continue
            }
            if entry == host || IPv6(entry) != nil && IPv6(entry) == IPv6(host) { return true }
            var entryPort: Int? = nil
            if let colon = entry.lastIndex(of: ":"), IPv6(entry) == nil {
                entryPort = Int(entry[entry.index(after: colon)...])
                entry = String(entry[..<colon])
            }
            if entry.hasPrefix("[") && entry.hasSuffix("]") { entry = String(entry.dropFirst().dropLast()) }
            if let entryPort, entryPort != port { continue }
            if IPv4(entry) != nil || IPv6(entry) != nil {
                if entry == host { return true }
                continue
            }
            if entry.hasPrefix("*.") { entry.removeFirst() }
            if entry.hasPrefix(".") {
                if host.hasSuffix(entry) { return true }
            } else if host == entry || host.hasSuffix("." + entry) {
                return true
            }
        }
        return false
    }

    static func contains(cidr: String, _ host: String) -> Bool {
        let parts = cidr.split(separator: "/")
        guard parts.count == 2, let bits = Int(parts[1]) else { return false }
        let network = IPv4(String(parts[0])).map { Array($0) } ?? IPv6(String(parts[0]))
        let address = IPv4(host).map { Array($0) } ?? IPv6(host)
        guard let network, let address, network.count == address.count, bits >= 0, bits <= network.count * 8 else { return false }
        for bit in 0..<bits {
            let mask = UInt8(0x80) >> UInt8(bit % 8)
            if network[bit / 8] & mask != address[bit / 8] & mask { return false }
        }
        return true
    }

    static func IPv4(_ text: String) -> [UInt8]? {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    static func IPv6(_ text: String) -> [UInt8]? {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }
}
