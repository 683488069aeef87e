import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A response as seen on the wire by the test client.
public struct ClientResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as a JSON object (nil if it is not one).
    public var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }
}

/// Errors of the test client.
public enum ClientError: Error {
    case connect(Int32)
    case closed
    case malformed(String)
}

/// A minimal blocking HTTP/1.1 client over a loopback TCP socket, so tests control every byte
/// (raw bodies, partial requests, keep-alive) and see every byte of the answer.
public final class RawHTTPClient {
    private let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to `host:port`; `source` binds the local end to another loopback address
    /// (e.g. `127.0.0.2`) so that one test can act as several clients.
    public init(port: UInt16, host: String = "127.0.0.1", source: String? = nil, timeoutSeconds: Int = 30, receiveBufferBytes: Int? = nil) throws {
        let isIPv6 = host.contains(":")
        fd = socket(isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError.connect(errno) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBufferBytes.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        if let source, !isIPv6 {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, source, &local.sin_addr)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            // Not closed here: `deinit` runs when an initializer throws after `fd` is set, and
            // a second close(2) would close whatever descriptor another thread got that number for.
            guard bound == 0 else { throw ClientError.connect(errno) }
        }
        let result: Int32
        if isIPv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            inet_pton(AF_INET6, host, &address.sin6_addr)
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            inet_pton(AF_INET, host, &address.sin_addr)
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard result == 0 else { throw ClientError.connect(errno) }  // closed by `deinit`, once
    }

    /// Closes the socket, also when the initializer threw after creating it.
    deinit { if fd >= 0 { close(fd) } }

    /// Makes the coming close(2) reset the connection (SO_LINGER 0: an RST, whatever is unread
    /// or unsent), as a client that crashes or a middlebox that gives up.
    public func resetOnClose() {
        var linger = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
    }

    /// Writes raw bytes (part of a request, or several).
    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw ClientError.closed }
            offset += written
        }
    }

    /// Sends one request and reads its response.
    public func request(
        _ method: String, _ target: String, headers: [String: String] = [:], body: [UInt8]? = nil,
        contentType: String? = "application/json"
    ) throws -> ClientResponse {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body {
            if let contentType, headers["Content-Type"] == nil { head += "Content-Type: \(contentType)\r\n" }
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        try send(Array(head.utf8) + (body ?? []))
        return try readResponse(method: method)
    }

    public func request(_ method: String, _ target: String, headers: [String: String] = [:], json: String) throws -> ClientResponse {
        try request(method, target, headers: headers, body: Array(json.utf8))
    }

    /// Everything the server sends until it closes the connection (or the receive timeout).
    public func readToEnd() -> [UInt8] {
        while (try? fill()) != nil {}
        defer { buffer = [] }
        return buffer
    }

    /// Whether the server has closed the connection (reads end of stream within the timeout).
    public func isClosedByServer() -> Bool {
        _ = readToEnd()
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw ClientError.closed }
        buffer += chunk[..<count]
    }

    /// Reads the status line and headers of a response, leaving its body to `readChunk()`.
    public func readHead() throws -> ClientResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int? = nil
        while headEnd == nil {
            if let range = buffer.firstRange(of: separator) { headEnd = range.lowerBound } else { try fill() }
        }
        let head = String(decoding: buffer[..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw ClientError.malformed(head) }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return ClientResponse(status: status, headers: headers, body: [])
    }

    /// Reads the next chunk of a chunked body: its bytes, or nil for the terminating chunk.
    /// Throws when the connection ends first (or nothing arrives within the receive timeout).
    public func readChunk() throws -> [UInt8]? {
        var lineEnd: Int? = nil
        while lineEnd == nil {
            if let range = buffer.firstRange(of: [13, 10]) { lineEnd = range.lowerBound } else { try fill() }
        }
        let sizeText = String(decoding: buffer[..<lineEnd!], as: UTF8.self)
        buffer.removeFirst(lineEnd! + 2)
        guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else { throw ClientError.malformed(sizeText) }
        while buffer.count < size + 2 { try fill() }
        let chunk = Array(buffer[..<size])
        buffer.removeFirst(size + 2)
        return size == 0 ? nil : chunk
    }

    /// Reads one response (Content-Length or chunked framing).
    public func readResponse(method: String = "GET") throws -> ClientResponse {
        let response = try readHead()
        let status = response.status
        var body: [UInt8] = []
        if method == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status) {
            return response
        }
        if let length = response.header("Content-Length").flatMap(Int.init) {
            while buffer.count < length { try fill() }
            body = Array(buffer[..<length])
            buffer.removeFirst(length)
        } else if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            while let chunk = try readChunk() { body += chunk }
        } else {
            while (try? fill()) != nil {}
            body = buffer
            buffer = []
        }
        var complete = response
        complete.body = body
        return complete
    }
}
