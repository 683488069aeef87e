// The C adapter of c-ares (CAresResolver) includes <poll.h> and <netinet/in.h> textually; in a
// build where that module is loaded first, clang attributes `pollfd` and `sockaddr_in` to it, and
// MemberImportVisibility then wants it imported where their members are used. No c-ares API is
// used here.
import CAres
import Foundation
public import RegistryCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `tcp` checks with a plain nonblocking `connect` (cheaper per probe than libcurl's set-up),
/// waited for by one event-loop thread that multiplexes every connect in flight with `poll`,
/// each with its own deadline (`timeoutSeconds`); `http`/`https` go to `fallback` (libcurl's
/// multi interface). No thread is held while a connect is waiting.
public struct SocketProber: Prober {
    private let fallback: any Prober
    private let loop: ConnectLoop

    public init(fallback: any Prober = CurlProber()) {
        self.fallback = fallback
        self.loop = ConnectLoop.shared
    }

    public func start(_ target: ProbeTarget, check: HealthCheck, completion: @escaping @Sendable (Result<Void, ProbeFailure>) -> Void) {
        guard check.type == .tcp else { return fallback.start(target, check: check, completion: completion) }
        guard let address = try? IPAddress(parsing: target.ip), (1...65535).contains(target.port) else {
            return completion(.failure(.other("not an IP address and port: \(target)")))
        }
        let family = address.family == .ipv4 ? AF_INET : AF_INET6
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return completion(.failure(.other("socket: \(String(cString: strerror(errno)))"))) }
        var result: Int32
        // The sockaddr structures live on this stack frame for the duration of `connect` only.
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
        if result == 0 {
            close(descriptor)
            return completion(.success(()))
        }
        let code = errno
        guard code == EINPROGRESS else {
            close(descriptor)
            return completion(SocketProber.failure(code))
        }
        let deadline = ContinuousClock.now.advanced(by: .seconds(check.timeoutSeconds))
        loop.add(ConnectLoop.Pending(descriptor: descriptor, deadline: deadline, completion: completion))
    }

    static func failure(_ code: Int32) -> Result<Void, ProbeFailure> {
        let message = String(cString: strerror(code))
        switch code {
        case ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ECONNRESET: return .failure(.refused(message))
        case ETIMEDOUT: return .failure(.timeout)
        default: return .failure(.other(message))
        }
    }
}

/// The event loop of `tcp` probes: one thread (started with the first connect, then kept for
/// the process, idle in `poll` without a deadline when nothing is in flight) that waits for
/// every connect in flight at once. A connect that becomes writable is judged by `SO_ERROR`;
/// one still waiting at its deadline fails `timeout`. Every socket is closed before its
/// completion is called. New connects wake the loop through a pipe.
final class ConnectLoop: Sendable {
    struct Pending: Sendable {
        var descriptor: Int32
        var deadline: ContinuousClock.Instant
        var completion: @Sendable (Result<Void, ProbeFailure>) -> Void
    }

    static let shared = ConnectLoop()

    private let incoming = Mutex<[Pending]>([])
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let started = Mutex(false)

    private init() {
        var descriptors: [Int32] = [-1, -1]
        if pipe(&descriptors) == 0 {
            for descriptor in descriptors {
                _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
                _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            }
        } else {
            descriptors = [-1, -1]
        }
        wakeRead = descriptors[0]
        wakeWrite = descriptors[1]
    }

    func add(_ pending: Pending) {
        guard wakeRead >= 0 else {
            close(pending.descriptor)
            return pending.completion(.failure(.other("pipe: the connect loop could not be created")))
        }
        incoming.withLock { $0.append(pending) }
        let spawn = started.withLock { started in
            defer { started = true }
            return !started
        }
        if spawn {
            let thread = Thread { [self] in self.run() }
            thread.name = "health-tcp"
            thread.stackSize = 256 << 10
            thread.start()
        }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func run() {
        var pending: [Pending] = []
        var polled: [pollfd] = []
        var drain = [UInt8](repeating: 0, count: 256)
        while true {
            pending.append(
                contentsOf: incoming.withLock { taken in
                    defer { taken.removeAll() }
                    return taken
                })
            polled.removeAll(keepingCapacity: true)
            polled.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            for item in pending { polled.append(pollfd(fd: item.descriptor, events: Int16(POLLOUT), revents: 0)) }
            var timeout: Int32 = -1
            let clock = ContinuousClock.now
            if let soonest = pending.lazy.map(\.deadline).min() {
                let remaining = clock.duration(to: soonest)
                let milliseconds = remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000 + 1
                timeout = Int32(max(0, min(milliseconds, 60_000)))
            }
            let ready = poll(&polled, nfds_t(polled.count), timeout)
            if ready < 0, errno != EINTR { Thread.sleep(forTimeInterval: 0.01) }
            if polled[0].revents != 0 { while read(wakeRead, &drain, drain.count) > 0 {} }
            let now = ContinuousClock.now
            var finished: [(Pending, Result<Void, ProbeFailure>)] = []
            var kept: [Pending] = []
            kept.reserveCapacity(pending.count)
            for (index, item) in pending.enumerated() {
                let events = ready > 0 ? polled[index + 1].revents : 0
                if events != 0 {
                    var code: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    let verdict: Result<Void, ProbeFailure> =
                        getsockopt(item.descriptor, SOL_SOCKET, SO_ERROR, &code, &length) != 0
                        ? SocketProber.failure(errno) : code == 0 ? .success(()) : SocketProber.failure(code)
                    finished.append((item, verdict))
                } else if item.deadline <= now {
                    finished.append((item, .failure(.timeout)))
                } else {
                    kept.append(item)
                }
            }
            pending = kept
            for (item, verdict) in finished {
                close(item.descriptor)
                item.completion(verdict)
            }
        }
    }
}
