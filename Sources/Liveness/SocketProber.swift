// The C adapter of c-ares (CAresResolver) includes <poll.h> and <netinet/in.h> textually; in a
// build where that module is loaded first, clang attributes `pollfd` and `sockaddr_in` to it, and
// MemberImportVisibility then wants it imported where their members are used. No c-ares API is
// used here.
import CAres
import Foundation
public import RegistryCore

#if canImport(Glibc)
    import Glibc
#endif

/// `tcp` checks with a plain nonblocking `connect` and `poll` bounded by `timeoutSeconds`
/// (cheaper per probe than libcurl's set-up); `http`/`https` go to `fallback` (libcurl).
public struct SocketProber: Prober {
    private let fallback: any Prober

    public init(fallback: any Prober = CurlProber()) {
        self.fallback = fallback
    }

    public func probe(_ target: ProbeTarget, check: HealthCheck) -> Result<Void, ProbeFailure> {
        guard check.type == .tcp else { return fallback.probe(target, check: check) }
        guard let address = try? IPAddress(parsing: target.ip), (1...65535).contains(target.port) else {
            return .failure(.other("not an IP address and port: \(target)"))
        }
        let family = address.family == .ipv4 ? AF_INET : AF_INET6
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return .failure(.other("socket: \(String(cString: strerror(errno)))")) }
        defer { close(descriptor) }
        var result: Int32
        if address.family == .ipv4 {
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = in_port_t(UInt16(target.port).bigEndian)
            _ = target.ip.withCString { inet_pton(AF_INET, $0, &socketAddress.sin_addr) }
            result = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        } else {
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = in_port_t(UInt16(target.port).bigEndian)
            _ = target.ip.withCString { inet_pton(AF_INET6, $0, &socketAddress.sin6_addr) }
            result = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        if result == 0 { return .success(()) }
        guard errno == EINPROGRESS else { return SocketProber.failure(errno) }
        var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        let ready = poll(&poller, 1, Int32(check.timeoutSeconds * 1000))
        if ready == 0 { return .failure(.timeout) }
        if ready < 0 { return .failure(.other("poll: \(String(cString: strerror(errno)))")) }
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &code, &length) == 0 else { return SocketProber.failure(errno) }
        return code == 0 ? .success(()) : SocketProber.failure(code)
    }

    private static func failure(_ code: Int32) -> Result<Void, ProbeFailure> {
        let message = String(cString: strerror(code))
        switch code {
        case ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ECONNRESET: return .failure(.refused(message))
        case ETIMEDOUT: return .failure(.timeout)
        default: return .failure(.other(message))
        }
    }
}
