internal import CCurl
import Foundation
import Synchronization

/// One HTTP request to an API server.
public struct KubeRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var timeout: Duration

    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8] = [], timeout: Duration = .seconds(10)) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// The API server's answer.
public struct KubeResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public func headerValues(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}

/// TLS settings of a cluster: PEM bytes are passed to libcurl from memory.
public struct TLSSettings: Sendable, Equatable {
    public var certificateAuthorityPEM: [UInt8]?
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    public var insecureSkipVerify = false
    public var serverName: String?

    public init() {}
}

/// A request that got no HTTP answer.
public enum TransportError: Error, Sendable, CustomStringConvertible {
    case connection(String)
    case timeout(String)
    case tls(String)

    public var description: String {
        switch self {
        case .connection(let message): "connection failed: \(message)"
        case .timeout(let message): "timed out: \(message)"
        case .tls(let message): "TLS failed: \(message)"
        }
    }
}

/// Sends HTTP requests; the seam tests replace.
public protocol HTTPTransport: Sendable {
    func send(_ request: KubeRequest, tls: TLSSettings) throws(TransportError) -> KubeResponse
}

/// HTTP over libcurl (the only importer of CCurl): CA bundles, client certificates and keys
/// from memory, and a timeout on every call. Easy handles are pooled, so that their open
/// (TLS) connections are reused by later requests instead of handshaking every time.
public struct CurlTransport: HTTPTransport {
    /// curl_global_init must run once before any other call.
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    private let pool = HandlePool()

    public init() {
        _ = CurlTransport.initialized
    }

    public func send(_ request: KubeRequest, tls: TLSSettings) throws(TransportError) -> KubeResponse {
        guard let handle = pool.checkOut() else { throw .connection("libcurl could not create a handle") }
        var healthy = false
        defer { pool.checkIn(handle, keep: healthy) }
        curl_easy_reset(handle)
        let sink = ResponseSink()
        let context = Unmanaged.passUnretained(sink).toOpaque()
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        for (name, value) in request.headers { headerList = curl_slist_append(headerList, "\(name): \(value)") }
        headerList = curl_slist_append(headerList, "Expect:")
        defer { curl_slist_free_all(headerList) }

        _ = CCurl_setString(handle, CURLOPT_URL, request.url)
        _ = CCurl_setString(handle, CURLOPT_CUSTOMREQUEST, request.method)
        _ = CCurl_setLong(handle, CURLOPT_NOSIGNAL, 1)
        _ = CCurl_setLong(handle, CURLOPT_TIMEOUT_MS, Int(request.timeout.components.seconds * 1000 + request.timeout.components.attoseconds / 1_000_000_000_000_000))
        _ = CCurl_setLong(handle, CURLOPT_CONNECTTIMEOUT_MS, 5000)
        _ = CCurl_setSlist(handle, CURLOPT_HTTPHEADER, headerList)
        _ = CCurl_setCallback(handle, CURLOPT_WRITEFUNCTION, { data, size, count, context in
            guard let data, let context else { return 0 }
            let sink = Unmanaged<ResponseSink>.fromOpaque(context).takeUnretainedValue()
            sink.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        })
        _ = CCurl_setPointer(handle, CURLOPT_WRITEDATA, context)
        _ = CCurl_setCallback(handle, CURLOPT_HEADERFUNCTION, { data, size, count, context in
            guard let data, let context else { return 0 }
            let sink = Unmanaged<ResponseSink>.fromOpaque(context).takeUnretainedValue()
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
            if line.hasPrefix("HTTP/") {
                sink.headers = []
            } else if let colon = line.firstIndex(of: ":") {
                let name = String(line[..<colon])
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                sink.headers.append((name, value))
            }
            return size * count
        })
        _ = CCurl_setPointer(handle, CURLOPT_HEADERDATA, context)
        if tls.insecureSkipVerify {
            _ = CCurl_setLong(handle, CURLOPT_SSL_VERIFYPEER, 0)
            _ = CCurl_setLong(handle, CURLOPT_SSL_VERIFYHOST, 0)
        }
        if let ca = tls.certificateAuthorityPEM {
            _ = ca.withUnsafeBytes { CCurl_setBlob(handle, CURLOPT_CAINFO_BLOB, $0.baseAddress, $0.count) }
        }
        if let certificate = tls.clientCertificatePEM, let key = tls.clientKeyPEM {
            _ = CCurl_setString(handle, CURLOPT_SSLCERTTYPE, "PEM")
            _ = certificate.withUnsafeBytes { CCurl_setBlob(handle, CURLOPT_SSLCERT_BLOB, $0.baseAddress, $0.count) }
            _ = CCurl_setString(handle, CURLOPT_SSLKEYTYPE, "PEM")
            _ = key.withUnsafeBytes { CCurl_setBlob(handle, CURLOPT_SSLKEY_BLOB, $0.baseAddress, $0.count) }
        }
        let result: CURLcode = request.body.withUnsafeBytes { body in
            if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method) {
                _ = CCurl_setLong(handle, CURLOPT_POSTFIELDSIZE, body.count)
                _ = CCurl_setPointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            return curl_easy_perform(handle)
        }
        guard result == CURLE_OK else {
            let message = String(cString: curl_easy_strerror(result))
            switch result {
            case CURLE_OPERATION_TIMEDOUT: throw .timeout(message)
            case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE:
                throw .tls(message)
            default: throw .connection(message)
            }
        }
        healthy = true
        return KubeResponse(status: CCurl_responseCode(handle), headers: sink.headers, body: sink.body)
    }
}

/// Idle curl easy handles. A checked-out handle belongs to one caller until it is checked in.
private final class HandlePool: Sendable {
    /// Why @unchecked Sendable is safe: a handle is only ever used by the one caller that
    /// checked it out, or kept inside `idle`'s lock.
    struct Handle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private let idle = Mutex<[Handle]>([])
    private static let maxIdle = 16

    func checkOut() -> UnsafeMutableRawPointer? {
        idle.withLock { $0.popLast() }?.pointer ?? curl_easy_init()
    }

    /// Returns a handle for reuse; one that failed (or one too many) is closed instead.
    func checkIn(_ pointer: UnsafeMutableRawPointer, keep: Bool) {
        let handle = Handle(pointer: pointer)
        let kept = keep && idle.withLock { handles in
            guard handles.count < HandlePool.maxIdle else { return false }
            handles.append(handle)
            return true
        }
        if !kept { curl_easy_cleanup(pointer) }
    }

    deinit {
        for handle in idle.withLock({ $0 }) { curl_easy_cleanup(handle.pointer) }
    }
}

/// Collects one response inside libcurl's callbacks (one thread, one request).
private final class ResponseSink {
    var body: [UInt8] = []
    var headers: [(name: String, value: String)] = []
}
