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
    /// The proxy to go through (`http://`, `https://`, `socks5://`); nil: direct, whatever the
    /// environment says (the caller already applied `HTTPS_PROXY`/`NO_PROXY`).
    public var proxy: String?
    /// Most bytes of a response body (of any status) the transport takes; a longer one aborts
    /// the transfer with `TransportError.responseTooLarge`. Nil: no bound. Not applied to the
    /// body of a successful `stream`, which its consumer takes piece by piece.
    public var maxResponseBytes: Int?

    public init(
        method: String, url: String, headers: [(String, String)] = [], body: [UInt8] = [], timeout: Duration = .seconds(10), proxy: String? = nil,
        maxResponseBytes: Int? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.proxy = proxy
        self.maxResponseBytes = maxResponseBytes
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
    /// `tls-server-name`: the name verified in the server's certificate and sent as SNI, while
    /// the connection still goes to the URL's host.
    public var serverName: String?

    public init() {}
}

/// A request that got no HTTP answer.
public enum TransportError: Error, Sendable, CustomStringConvertible {
    case connection(String)
    case timeout(String)
    case tls(String)
    /// The proxy could not be reached or refused the tunnel; the message names the proxy.
    case proxy(String)
    /// The response body was longer than `KubeRequest.maxResponseBytes` (the bound, in bytes):
    /// the transfer was aborted there and its connection closed.
    case responseTooLarge(Int)

    public var description: String {
        switch self {
        case .connection(let message): "connection failed: \(message)"
        case .timeout(let message): "timed out: \(message)"
        case .tls(let message): "TLS failed: \(message)"
        case .proxy(let message): "proxy failed: \(message)"
        case .responseTooLarge(let bound): "the response body is larger than \(bound) bytes, the bound for this request; transfer aborted"
        }
    }
}

/// Sends HTTP requests; the seam tests replace.
public protocol HTTPTransport: Sendable {
    func send(_ request: KubeRequest, tls: TLSSettings) throws(TransportError) -> KubeResponse
    /// Sends a request whose successful (2xx) answer is a stream: its body is handed to `body`
    /// as it arrives (returning false stops the transfer, which is then not an error), and the
    /// response returned has an empty body. Other answers are returned whole, as `send` does.
    func stream(_ request: KubeRequest, tls: TLSSettings, body: @escaping ([UInt8]) -> Bool) throws(TransportError) -> KubeResponse
}

extension HTTPTransport {
    /// Default: the whole answer at once (for transports that cannot stream).
    public func stream(_ request: KubeRequest, tls: TLSSettings, body: @escaping ([UInt8]) -> Bool) throws(TransportError) -> KubeResponse {
        var request = request
        request.maxResponseBytes = nil
        var response = try send(request, tls: tls)
        if (200..<300).contains(response.status) {
            _ = body(response.body)
            response.body = []
        }
        return response
    }
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
        try perform(request, tls: tls, stream: nil)
    }

    public func stream(_ request: KubeRequest, tls: TLSSettings, body: @escaping ([UInt8]) -> Bool) throws(TransportError) -> KubeResponse {
        try perform(request, tls: tls, stream: body)
    }

    private func perform(_ request: KubeRequest, tls: TLSSettings, stream: (([UInt8]) -> Bool)?) throws(TransportError) -> KubeResponse {
        guard let handle = pool.checkOut() else { throw .connection("libcurl could not create a handle") }
        var healthy = false
        defer { pool.checkIn(handle, keep: healthy) }
        curl_easy_reset(handle)
        let sink = ResponseSink()
        sink.stream = stream
        sink.handle = handle
        sink.limit = request.maxResponseBytes
        let context = Unmanaged.passUnretained(sink).toOpaque()
        let route = Route(request: request, tls: tls)
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        for (name, value) in request.headers { headerList = curl_slist_append(headerList, "\(name): \(value)") }
        if let host = route.hostHeader, !request.headers.contains(where: { $0.0.lowercased() == "host" }) {
            headerList = curl_slist_append(headerList, "Host: \(host)")
        }
        headerList = curl_slist_append(headerList, "Expect:")
        defer { curl_slist_free_all(headerList) }

        let connectTo = route.connectTo.map { curl_slist_append(nil, $0) } ?? nil
        defer { curl_slist_free_all(connectTo) }
        CurlTransport.connect(handle, route: route, connectTo: connectTo, request: request, tls: tls)
        _ = CCurl_setString(handle, CURLOPT_CUSTOMREQUEST, request.method)
        _ = CCurl_setLong(handle, CURLOPT_TIMEOUT_MS, CurlTransport.milliseconds(request.timeout))
        // A declared Content-Length beyond the bound fails before any byte is read
        // (CURLE_FILESIZE_EXCEEDED); the write callback bounds the rest (chunked answers).
        if let limit = request.maxResponseBytes, stream == nil { _ = CCurl_setLong(handle, CURLOPT_MAXFILESIZE, limit) }
        _ = CCurl_setSlist(handle, CURLOPT_HTTPHEADER, headerList)
        _ = CCurl_setCallback(
            handle, CURLOPT_WRITEFUNCTION,
            { data, size, count, context in
                guard let data, let context else { return 0 }
                let sink = Unmanaged<ResponseSink>.fromOpaque(context).takeUnretainedValue()
                let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
                if let stream = sink.stream, let handle = sink.handle, (200..<300).contains(CCurl_responseCode(handle)) {
                    guard stream(Array(bytes)) else {
                        sink.stopped = true
                        return 0
                    }
                    return size * count
                }
                if let limit = sink.limit, bytes.count > limit - sink.body.count {
                    sink.overflowed = true
                    return 0
                }
                sink.body.append(contentsOf: bytes)
                return size * count
            })
        _ = CCurl_setPointer(handle, CURLOPT_WRITEDATA, context)
        _ = CCurl_setCallback(
            handle, CURLOPT_HEADERFUNCTION,
            { data, size, count, context in
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
        if let certificate = tls.clientCertificatePEM, let key = tls.clientKeyPEM {
            _ = CCurl_setString(handle, CURLOPT_SSLCERTTYPE, "PEM")
            _ = certificate.withUnsafeBytes { CCurl_setBlob(handle, CURLOPT_SSLCERT_BLOB, $0.baseAddress, $0.count) }
            _ = CCurl_setString(handle, CURLOPT_SSLKEYTYPE, "PEM")
            _ = key.withUnsafeBytes { CCurl_setBlob(handle, CURLOPT_SSLKEY_BLOB, $0.baseAddress, $0.count) }
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let result: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { buffer in
            _ = CCurl_setPointer(handle, CURLOPT_ERRORBUFFER, buffer.baseAddress)
            return request.body.withUnsafeBytes { body in
                if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method) {
                    _ = CCurl_setLong(handle, CURLOPT_POSTFIELDSIZE, body.count)
                    _ = CCurl_setPointer(
                        handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
                }
                let result = curl_easy_perform(handle)
                _ = CCurl_setPointer(handle, CURLOPT_ERRORBUFFER, nil)
                return result
            }
        }
        if let limit = request.maxResponseBytes, sink.overflowed || result == CURLE_FILESIZE_EXCEEDED {
            throw .responseTooLarge(limit)
        }
        if result == CURLE_WRITE_ERROR && sink.stopped {
            // The stream's consumer stopped it: not a failure, and the connection is not reused.
            return KubeResponse(status: CCurl_responseCode(handle), headers: sink.headers, body: [])
        }
        guard result == CURLE_OK else {
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(result)) : detail
            if let proxy = request.proxy {
                let connectCode = CCurl_infoLong(handle, CURLINFO_HTTP_CONNECTCODE)
                let name = Redaction.url(proxy)
                if connectCode >= 300 {
                    throw .proxy("proxy \(name) refused the tunnel to \(route.connectAuthority) with HTTP \(connectCode)")
                }
                if [CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_PROXY, CURLE_PROXY].contains(result) {
                    throw .proxy("proxy \(name) cannot be used: \(message)")
                }
            }
            switch result {
            case CURLE_OPERATION_TIMEDOUT: throw .timeout(message)
            case CURLE_PEER_FAILED_VERIFICATION:
                throw .tls(CurlTransport.diagnose(route: route, request: request, tls: tls, curlMessage: message))
            case CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE:
                throw .tls(message)
            default: throw .connection(message)
            }
        }
        healthy = true
        return KubeResponse(status: CCurl_responseCode(handle), headers: sink.headers, body: sink.body)
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    /// Where a request goes: with `tls-server-name`, the URL names that host (so libcurl verifies
    /// it and sends it as SNI) and CURLOPT_CONNECT_TO sends the connection to the real server.
    struct Route {
        var url: String
        var connectTo: String?
        var hostHeader: String?
        /// `host:port` of the real server.
        var connectAuthority: String

        init(request: KubeRequest, tls: TLSSettings) {
            url = request.url
            connectTo = nil
            hostHeader = nil
            guard var components = URLComponents(string: request.url), let host = components.host else {
                connectAuthority = request.url
                return
            }
            let port = components.port ?? (components.scheme?.lowercased() == "http" ? 80 : 443)
            let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
            connectAuthority = "\(bracketed):\(port)"
            guard let serverName = tls.serverName, !serverName.isEmpty, serverName != host, components.scheme?.lowercased() == "https" else { return }
            hostHeader = components.port.map { "\(bracketed):\($0)" } ?? bracketed
            components.host = serverName
            components.port = port
            if let rewritten = components.string {
                url = rewritten
                connectTo = "\(serverName):\(port):\(bracketed):\(port)"
            } else {
                hostHeader = nil
            }
        }
    }

    /// The options that decide where a handle connects and how it verifies the server: URL,
    /// CONNECT_TO, proxy (none when the request names none, so libcurl's own reading of the
    /// environment never applies), CA, verification.
    /// `connectTo` is `route.connectTo` as an slist, which must outlive the transfer.
    private static func connect(
        _ handle: UnsafeMutableRawPointer, route: Route, connectTo: UnsafeMutablePointer<curl_slist>?, request: KubeRequest, tls: TLSSettings
    ) {
        _ = CCurl_setString(handle, CURLOPT_URL, route.url)
        _ = CCurl_setLong(handle, CURLOPT_NOSIGNAL, 1)
        _ = CCurl_setLong(handle, CURLOPT_CONNECTTIMEOUT_MS, 5000)
        if let list = connectTo { _ = CCurl_setSlist(handle, CURLOPT_CONNECT_TO, list) }
        if var proxy = request.proxy {
            // Go's SOCKS5 dialer hands the host name to the proxy: libcurl's socks5h.
            if proxy.lowercased().hasPrefix("socks5://") { proxy = "socks5h://" + proxy.dropFirst("socks5://".count) }
            _ = CCurl_setString(handle, CURLOPT_PROXY, proxy)
            if let ca = tls.certificateAuthorityPEM {
                _ = ca.withUnsafeBytes { CCurl_setBlob(handle, CURLOPT_PROXY_CAINFO_BLOB, $0.baseAddress, $0.count) }
            }
            if tls.insecureSkipVerify {
                _ = CCurl_setLong(handle, CURLOPT_PROXY_SSL_VERIFYPEER, 0)
                _ = CCurl_setLong(handle, CURLOPT_PROXY_SSL_VERIFYHOST, 0)
            }
        } else {
            _ = CCurl_setString(handle, CURLOPT_PROXY, "")
        }
        if tls.insecureSkipVerify {
            _ = CCurl_setLong(handle, CURLOPT_SSL_VERIFYPEER, 0)
            _ = CCurl_setLong(handle, CURLOPT_SSL_VERIFYHOST, 0)
        }
        if let ca = tls.certificateAuthorityPEM {
            _ = ca.withUnsafeBytes { CCurl_setBlob(handle, CURLOPT_CAINFO_BLOB, $0.baseAddress, $0.count) }
        }
    }

    /// Says what failed in a certificate verification, in the words of Go's crypto/x509 (which
    /// kubectl prints): unknown authority, expired, or the names the certificate is valid for.
    /// The names and dates come from a second handshake that does not verify and sends nothing.
    static func diagnose(route: Route, request: KubeRequest, tls: TLSSettings, curlMessage: String) -> String {
        let lowered = curlMessage.lowercased()
        let certificate = peerCertificate(route: route, request: request, tls: tls)
        let verifiedName = tls.serverName.flatMap { $0.isEmpty ? nil : $0 } ?? URLComponents(string: request.url)?.host ?? "?"
        if lowered.contains("expired") || lowered.contains("not yet valid") {
            var text = "x509: certificate has expired or is not yet valid"
            if let certificate {
                text += ": the server's certificate is valid from \(certificate.notBefore) until \(certificate.notAfter)"
            }
            return text
        }
        if lowered.contains("subject name") || lowered.contains("host name") || lowered.contains("hostname") {
            guard let certificate else { return "x509: certificate is not valid for \(verifiedName) (\(curlMessage))" }
            let names = certificate.names
            var text: String
            if names.isEmpty {
                text = "x509: certificate is not valid for any names, but wanted to match \(verifiedName)"
            } else if EnvironmentProxy.IPv4(verifiedName) != nil || EnvironmentProxy.IPv6(verifiedName.trimmingCharacters(in: ["[", "]"])) != nil,
                !certificate.hasIPAddresses
            {
                text =
                    "x509: cannot validate certificate for \(verifiedName) because it doesn't contain any IP SANs (it is valid for \(names.joined(separator: ", ")))"
            } else {
                text = "x509: certificate is valid for \(names.joined(separator: ", ")), not \(verifiedName)"
            }
            if tls.serverName == nil || tls.serverName?.isEmpty == true {
                text += "; if the server is meant to be reached under one of those names, set the cluster's tls-server-name to it"
            }
            return text
        }
        if lowered.contains("issuer") || lowered.contains("self-signed") || lowered.contains("self signed") || lowered.contains("unknown ca")
            || lowered.contains("unable to get")
        {
            var text = "x509: certificate signed by unknown authority"
            if let certificate { text += " (issuer: \(certificate.issuer); not signed by the cluster's certificate-authority)" }
            return text
        }
        return curlMessage
    }

    /// What the server's own certificate says.
    struct PeerCertificate {
        var names: [String]
        var hasIPAddresses: Bool
        var issuer: String
        var notBefore: String
        var notAfter: String
    }

    static func peerCertificate(route: Route, request: KubeRequest, tls: TLSSettings) -> PeerCertificate? {
        guard let handle = curl_easy_init() else { return nil }
        defer { curl_easy_cleanup(handle) }
        var unverified = tls
        unverified.insecureSkipVerify = true
        unverified.certificateAuthorityPEM = nil
        let connectTo = route.connectTo.map { curl_slist_append(nil, $0) } ?? nil
        defer { curl_slist_free_all(connectTo) }
        connect(handle, route: route, connectTo: connectTo, request: request, tls: unverified)
        if request.proxy != nil, let ca = tls.certificateAuthorityPEM {
            _ = ca.withUnsafeBytes { CCurl_setBlob(handle, CURLOPT_PROXY_CAINFO_BLOB, $0.baseAddress, $0.count) }
        }
        _ = CCurl_setLong(handle, CURLOPT_CERTINFO, 1)
        _ = CCurl_setLong(handle, CURLOPT_CONNECT_ONLY, 1)
        _ = CCurl_setLong(handle, CURLOPT_TIMEOUT_MS, min(CurlTransport.milliseconds(request.timeout), 5000))
        let result = curl_easy_perform(handle)
        guard result == CURLE_OK else { return nil }
        func field(_ name: String) -> String? {
            var buffer = [CChar](repeating: 0, count: 4096)
            let found = buffer.withUnsafeMutableBufferPointer { CCurl_certificateField(handle, 0, name, $0.baseAddress, $0.count) }
            return found == 1 ? buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : nil
        }
        var names: [String] = []
        var hasIPAddresses = false
        for entry in (field("X509v3 Subject Alternative Name") ?? "").split(separator: ",") {
            let item = entry.trimmingCharacters(in: .whitespaces)
            if item.hasPrefix("DNS:") {
                names.append(String(item.dropFirst(4)))
            } else if item.hasPrefix("IP Address:") {
                names.append(String(item.dropFirst("IP Address:".count)))
                hasIPAddresses = true
            }
        }
        return PeerCertificate(
            names: names, hasIPAddresses: hasIPAddresses, issuer: field("Issuer") ?? "?", notBefore: field("Start date") ?? "?",
            notAfter: field("Expire date") ?? "?")
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
        let kept =
            keep
            && idle.withLock { handles in
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
    /// For `stream`: takes the body of a 2xx answer as it arrives.
    var stream: (([UInt8]) -> Bool)?
    var handle: UnsafeMutableRawPointer?
    /// The stream's consumer asked to stop.
    var stopped = false
    /// `KubeRequest.maxResponseBytes`: most bytes `body` may hold.
    var limit: Int?
    /// The body went beyond `limit`: the transfer was aborted.
    var overflowed = false
}
