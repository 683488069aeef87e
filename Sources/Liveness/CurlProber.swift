internal import CCurl
public import RegistryCore
import Synchronization

/// Probes over libcurl (Liveness wraps CCurl for its own use, like KubernetesClient does for
/// cluster calls): `tcp` opens a connection and closes it (`CURLOPT_CONNECT_ONLY`);
/// `http`/`https` send `GET path` with `Host` and compare the status. Every probe makes a fresh
/// connection, ignores proxy settings of the environment, and is bounded by `timeoutSeconds`.
/// The verdict is the status line: the body is not read (the transfer ends at its first byte,
/// so a backend streaming an endless body is judged by its status, as by Kubernetes' httpGet
/// probe, which reads at most 10 KiB of it). libcurl itself fails (`other`) response headers
/// over 300 KiB, and a line over 100 KiB. Handles are pooled (reset between uses) so that TLS
/// set-up is not repeated per probe.
public struct CurlProber: Prober {
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    private let pool = ProbeHandlePool()

    public init() {
        _ = CurlProber.initialized
    }

    public func probe(_ target: ProbeTarget, check: HealthCheck) -> Result<Void, ProbeFailure> {
        guard let handle = pool.checkOut() else { return .failure(.other("libcurl could not create a handle")) }
        defer { pool.checkIn(handle) }
        curl_easy_reset(handle)
        let scheme = check.type == .https ? "https" : "http"
        let authority = target.ip.contains(":") ? "[\(target.ip)]" : target.ip
        var resolve: UnsafeMutablePointer<curl_slist>? = nil
        var headers: UnsafeMutablePointer<curl_slist>? = nil
        defer {
            curl_slist_free_all(resolve)
            curl_slist_free_all(headers)
        }
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
        if check.type == .tcp {
            _ = CCurl_setLong(handle, CURLOPT_CONNECT_ONLY, 1)
        } else {
            // The first byte of the body ends the transfer (CURLE_WRITE_ERROR): the status is known.
            _ = CCurl_setCallback(handle, CURLOPT_WRITEFUNCTION, { _, _, _, _ in 0 })
        }
        if check.type == .https, check.tlsSkipVerify {
            _ = CCurl_setLong(handle, CURLOPT_SSL_VERIFYPEER, 0)
            _ = CCurl_setLong(handle, CURLOPT_SSL_VERIFYHOST, 0)
        }
        let result = curl_easy_perform(handle)
        if result == CURLE_WRITE_ERROR, check.type != .tcp {
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
        guard check.type != .tcp else { return .success(()) }
        let status = CCurl_responseCode(handle)
        return check.accepts(status: status) ? .success(()) : .failure(.status(status))
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
    private static let maxIdle = 256

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
