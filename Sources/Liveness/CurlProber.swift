internal import CCurl
import Foundation
public import RegistryCore
import Synchronization

/// Probes over libcurl's multi interface (Liveness wraps CCurl for its own use, like
/// KubernetesClient does for cluster calls): one thread (started with the first probe, then kept
/// for the process, idle in `curl_multi_poll` when nothing is in flight) drives every transfer
/// in flight at once, each bounded by its own `timeoutSeconds`; `start` prepares an easy handle,
/// hands it over and wakes the loop (`curl_multi_wakeup`). `tcp` goes to `SocketProber`'s
/// connect loop; `http`/`https` send `GET path` with `Host` and compare the status. Every probe makes a fresh connection and ignores proxy settings of the environment.
/// The verdict is the status line: the body is not read (the transfer ends at its first byte,
/// so a backend streaming an endless body is judged by its status, as by Kubernetes' httpGet
/// probe, which reads at most 10 KiB of it). libcurl itself fails (`other`) response headers
/// over 300 KiB, and a line over 100 KiB. Handles are pooled (reset between uses) so that TLS
/// set-up is not repeated per probe.
public struct CurlProber: Prober {
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    public init() {
        _ = CurlProber.initialized
    }

    public func start(_ target: ProbeTarget, check: HealthCheck, completion: @escaping @Sendable (Result<Void, ProbeFailure>) -> Void) {
        // tcp goes to the connect loop: a CONNECT_ONLY transfer leaves its socket with libcurl
        // after the multi handle is done with it, one more owner of a descriptor to get wrong.
        if check.type == .tcp { return SocketProber(fallback: self).start(target, check: check, completion: completion) }
        CurlMultiLoop.shared.start(target, check: check, completion: completion)
    }
}

/// The thread that drives every libcurl probe in flight through one multi handle.
final class CurlMultiLoop: Sendable {
    /// One transfer handed to the loop.
    /// Why @unchecked Sendable is safe: the easy handle and the lists are built by `start` and
    /// then touched only by the loop thread (they pass through `incoming`'s lock once).
    struct Transfer: @unchecked Sendable {
        let handle: UnsafeMutableRawPointer
        let resolve: UnsafeMutablePointer<curl_slist>?
        let headers: UnsafeMutablePointer<curl_slist>?
        let type: HealthCheck.Kind
        let check: HealthCheck
        let completion: @Sendable (Result<Void, ProbeFailure>) -> Void
    }

    /// Why @unchecked Sendable is safe: the multi handle is used by the loop thread only, except
    /// `curl_multi_wakeup`, which libcurl documents as callable from any thread.
    private struct Multi: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer?
    }

    static let shared = CurlMultiLoop()

    private let multi: Multi
    private let pool = ProbeHandlePool()
    private let incoming = Mutex<[Transfer]>([])
    private let started = Mutex(false)

    private init() {
        multi = Multi(pointer: curl_multi_init())
    }

    func start(_ target: ProbeTarget, check: HealthCheck, completion: @escaping @Sendable (Result<Void, ProbeFailure>) -> Void) {
        guard let multiHandle = multi.pointer, let handle = pool.checkOut() else {
            return completion(.failure(.other("libcurl could not create a handle")))
        }
        curl_easy_reset(handle)
        let scheme = check.type == .https ? "https" : "http"
        let authority = target.ip.contains(":") ? "[\(target.ip)]" : target.ip
        var resolve: UnsafeMutablePointer<curl_slist>? = nil
        var headers: UnsafeMutablePointer<curl_slist>? = nil
        var url = "\(scheme)://\(authority):\(target.port)\(check.path ?? "/")"
        if check.type == .https, let host = check.host, (try? IPAddress(parsing: host)) == nil {
            // The certificate is checked against `host` (and SNI sent) while connecting to the IP.
            url = "https://\(host):\(target.port)\(check.path ?? "/")"
            resolve = curl_slist_append(resolve, "\(host):\(target.port):\(authority)")
            _ = CCurl_setSlist(handle, CURLOPT_RESOLVE, resolve)
        } else if let host = check.host {
            // An IPv6 literal is bracketed in `Host` (RFC 9110 §7.2, RFC 3986 IP-literal).
            headers = curl_slist_append(headers, "Host: \(host.contains(":") ? "[\(host)]" : host)")
            _ = CCurl_setSlist(handle, CURLOPT_HTTPHEADER, headers)
        }
        _ = CCurl_setString(handle, CURLOPT_URL, url)
        _ = CCurl_setString(handle, CURLOPT_NOPROXY, "*")
        _ = CCurl_setLong(handle, CURLOPT_NOSIGNAL, 1)
        _ = CCurl_setLong(handle, CURLOPT_FRESH_CONNECT, 1)
        _ = CCurl_setLong(handle, CURLOPT_FORBID_REUSE, 1)
        _ = CCurl_setLong(handle, CURLOPT_TIMEOUT_MS, check.timeoutSeconds * 1000)
        _ = CCurl_setString(handle, CURLOPT_USERAGENT, "endpoint-registry-health-check")
        // The first byte of the body ends the transfer (CURLE_WRITE_ERROR): the status is known.
        _ = CCurl_setCallback(handle, CURLOPT_WRITEFUNCTION, { _, _, _, _ in 0 })
        if check.type == .https, check.tlsSkipVerify {
            _ = CCurl_setLong(handle, CURLOPT_SSL_VERIFYPEER, 0)
            _ = CCurl_setLong(handle, CURLOPT_SSL_VERIFYHOST, 0)
        }
        incoming.withLock {
            $0.append(Transfer(handle: handle, resolve: resolve, headers: headers, type: check.type, check: check, completion: completion))
        }
        let spawn = started.withLock { started in
            defer { started = true }
            return !started
        }
        if spawn {
            let thread = Thread { [self] in if let pointer = self.multi.pointer { self.run(pointer) } }
            thread.name = "health-curl"
            thread.stackSize = 512 << 10
            thread.start()
        }
        _ = curl_multi_wakeup(multiHandle)
    }

    private func run(_ multiHandle: UnsafeMutableRawPointer) {
        var active: [UnsafeMutableRawPointer: Transfer] = [:]
        var running: Int32 = 0
        while true {
            for transfer in incoming.withLock({ taken in
                defer { taken.removeAll() }
                return taken
            }) {
                if curl_multi_add_handle(multiHandle, transfer.handle) == CURLM_OK {
                    active[transfer.handle] = transfer
                } else {
                    finish(transfer, .failure(.other("libcurl could not add the transfer")))
                }
            }
            _ = curl_multi_perform(multiHandle, &running)
            var left: Int32 = 0
            while let message = curl_multi_info_read(multiHandle, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                    let transfer = active.removeValue(forKey: handle)
                else { continue }
                let code = message.pointee.data.result
                _ = curl_multi_remove_handle(multiHandle, handle)
                finish(transfer, CurlMultiLoop.verdict(code, transfer))
            }
            // Idle: wait without a deadline until a transfer's socket, its timeout or a wake-up.
            _ = curl_multi_poll(multiHandle, nil, 0, active.isEmpty ? 60_000 : 1000, nil)
        }
    }

    private static func verdict(_ result: CURLcode, _ transfer: Transfer) -> Result<Void, ProbeFailure> {
        if result == CURLE_WRITE_ERROR, transfer.type != .tcp {
            // Stopped at the first byte of the body: judged by the status below.
        } else if result != CURLE_OK {
            let message = String(cString: curl_easy_strerror(result))
            switch result {
            case CURLE_OPERATION_TIMEDOUT: return .failure(.timeout)
            case CURLE_COULDNT_CONNECT: return .failure(.refused(message))
            case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE,
                CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS:
                return .failure(.tls(message))
            default: return .failure(.other(message))
            }
        }
        guard transfer.type != .tcp else { return .success(()) }
        let status = CCurl_responseCode(transfer.handle)
        return transfer.check.accepts(status: status) ? .success(()) : .failure(.status(status))
    }

    /// Frees the transfer's lists, returns its handle to the pool, then reports the verdict.
    private func finish(_ transfer: Transfer, _ verdict: Result<Void, ProbeFailure>) {
        curl_slist_free_all(transfer.resolve)
        curl_slist_free_all(transfer.headers)
        pool.checkIn(transfer.handle)
        transfer.completion(verdict)
    }
}

/// Idle curl easy handles; a checked-out handle belongs to one caller until it is checked in.
private final class ProbeHandlePool: Sendable {
    /// Why @unchecked Sendable is safe: a handle is only ever used by the one caller that
    /// checked it out, or kept inside `idle`'s lock.
    struct Handle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private let idle = Mutex<[Handle]>([])
    private static let maxIdle = 1024

    func checkOut() -> UnsafeMutableRawPointer? {
        idle.withLock { $0.popLast() }?.pointer ?? curl_easy_init()
    }

    func checkIn(_ pointer: UnsafeMutableRawPointer) {
        let handle = Handle(pointer: pointer)
        let kept = idle.withLock { handles in
            guard handles.count < ProbeHandlePool.maxIdle else { return false }
            handles.append(handle)
            return true
        }
        if !kept { curl_easy_cleanup(pointer) }
    }

    deinit {
        for handle in idle.withLock({ $0 }) { curl_easy_cleanup(handle.pointer) }
    }
}
