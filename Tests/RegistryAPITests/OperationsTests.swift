import Foundation
import HTTPServer
import RegistryAPI
import TestSupport
import Testing

/// Runs `endpoint-registry` as a real process, for what only a process shows: signals, TLS,
/// refusal to start.
final class ServerProcess {
    let process = Process()
    let log: URL
    let directory: URL
    private(set) var port: UInt16 = 0

    /// Starts `serve --port 0 --database DATABASE ARGUMENTS…` (a fresh database in a temporary
    /// directory unless `database` is given) in `currentDirectory` (relative paths in the
    /// arguments are read from there), run through `wrapper` when given (e.g. `setpriv` to drop
    /// privileges), and waits for it to listen unless `expectStart` is false.
    init(
        _ arguments: [String], expectStart: Bool = true, database: String? = nil, wrapper: [String] = [], currentDirectory: URL? = nil
    ) throws {
        directory = FileManager.default.temporaryDirectory.appending(path: "registry-process-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        log = directory.appending(path: "server.log")
        #expect(FileManager.default.createFile(atPath: log.path(), contents: nil))
        let serve = ["serve", "--port", "0", "--database", database ?? directory.appending(path: "db.sqlite").path()] + arguments
        if let command = wrapper.first {
            process.executableURL = URL(fileURLWithPath: command)
            process.arguments = Array(wrapper.dropFirst()) + [Paths.binary.path()] + serve
        } else {
            process.executableURL = Paths.binary
            process.arguments = serve
        }
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        try process.run()
        guard expectStart else { return }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, process.isRunning {
            // `port=N` in the text format, `"port":"N"` in the JSON one.
            if let range = logText.range(of: "port=") ?? logText.range(of: #""port":""#),
                let port = UInt16(logText[range.upperBound...].prefix { $0.isNumber })
            {
                self.port = port
                return
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw ClientError.malformed("server did not start: \(logText)")
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

@Suite(.serialized) struct OperationsTests {
    @Test func shutsDownGracefullyOnSIGTERM() throws {
        let server = try ServerProcess(["--durability", "normal"])
        let client = try RawHTTPClient(port: server.port)
        #expect(try client.request("POST", "/v1/services", json: #"{"name":"a","ports":[{"port":80}]}"#).status == 201)
        server.signal(SIGTERM)
        server.process.waitUntilExit()
        #expect(server.process.terminationReason == .exit && server.process.terminationStatus == 0)
        #expect(server.logText.contains("stopped"))
        let wal = server.directory.appending(path: "db.sqlite-wal").path()
        let walSize = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0
        #expect(walSize == 0, "the WAL was checkpointed into the database at shutdown")
    }

    @Test func reloadsTokensOnSIGHUP() throws {
        let tokens = try writeTokensFile([("one", "viewer", #"["*"]"#, "first-token-0123456789")])
        let server = try ServerProcess(["--tokens-file", tokens])
        let client = try RawHTTPClient(port: server.port)
        #expect(try client.request("GET", "/v1/services", headers: ["Authorization": "Bearer first-token-0123456789"]).status == 200)
        _ = try writeTokensFile([("two", "viewer", #"["*"]"#, "second-token-0123456789")])
        try FileManager.default.removeItem(atPath: tokens)
        try FileManager.default.copyItem(atPath: try writeTokensFile([("two", "viewer", #"["*"]"#, "second-token-0123456789")]), toPath: tokens)
        server.signal(SIGHUP)
        var reloaded = false
        for _ in 0..<100 where !reloaded {
            Thread.sleep(forTimeInterval: 0.05)
            reloaded = server.logText.contains("tokens reloaded")
        }
        #expect(reloaded)
        #expect(try client.request("GET", "/v1/services", headers: ["Authorization": "Bearer first-token-0123456789"]).status == 401)
        #expect(try client.request("GET", "/v1/services", headers: ["Authorization": "Bearer second-token-0123456789"]).status == 200)
        #expect(!server.logText.contains("second-token-0123456789") && !server.logText.contains("first-token-0123456789"))
    }

    @Test func refusesAnonymousAccessOnANonLoopbackAddress() throws {
        let server = try ServerProcess(["--host", "0.0.0.0"], expectStart: false)
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus != 0)
        #expect(server.logText.contains("--insecure-allow-anonymous"))
    }

    @Test func aSecondServerOnTheSameDatabaseRefusesToStart() throws {
        let first = try ServerProcess([])
        let database = first.directory.appending(path: "db.sqlite").path()
        let second = try ServerProcess([], expectStart: false, database: database)
        second.process.waitUntilExit()
        #expect(second.process.terminationStatus != 0)
        #expect(second.logText.contains("another process serves this database"), "\(second.logText)")
        // The first goes on serving; once it has stopped, the file is free again.
        #expect(try RawHTTPClient(port: first.port).request("GET", "/readyz").status == 200)
        first.signal(SIGTERM)
        first.process.waitUntilExit()
        let third = try ServerProcess([], database: database)
        #expect(try RawHTTPClient(port: third.port).request("GET", "/readyz").status == 200)
    }

    @Test func servesHTTPSWithTheGivenCertificate() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = directory.appending(path: "tls.crt").path()
        let key = directory.appending(path: "tls.key").path()
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", certificate,
        ]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        #expect(openssl.terminationStatus == 0)
        let server = try ServerProcess(["--tls-cert", certificate, "--tls-key", key])
        #expect(server.logText.contains("https://127.0.0.1"))
        let secure = try curl(["--cacert", certificate, "https://127.0.0.1:\(server.port)/healthz"])
        #expect(secure.status == 200 && secure.body.contains("ok"))
        let untrusted = try curl(["https://127.0.0.1:\(server.port)/healthz"])
        #expect(untrusted.status == 0)
        let plain = try curl(["http://127.0.0.1:\(server.port)/healthz"])
        #expect(plain.status != 200)
        // `healthcheck` follows the same settings, here from the environment: HTTPS on this port.
        let tlsEnvironment = [
            "ENDPOINT_REGISTRY_PORT": String(server.port), "ENDPOINT_REGISTRY_TLS_CERT": certificate, "ENDPOINT_REGISTRY_TLS_KEY": key,
        ]
        #expect(try runCLI(["healthcheck", "--ready"], environment: tlsEnvironment).status == 0)
        #expect(try runCLI(["healthcheck"], environment: ["ENDPOINT_REGISTRY_PORT": String(server.port)]).status == 1)
    }
}

@Suite struct RobustnessTests {
    @Test func keepsAnsweringWhileSlowClientsStall() throws {
        let server = try TestServer { $0.http.connectionTimeoutSeconds = 2 }
        var stalled: [RawHTTPClient] = []
        for _ in 0..<50 {
            let client = try RawHTTPClient(port: server.port)
            try client.send(
                Array("POST /v1/services HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"na".utf8))
            stalled.append(client)
        }
        let started = Date()
        let healthy = try server.client()
        for _ in 0..<20 { #expect(try healthy.request("GET", "/healthz").status == 200) }
        #expect(Date().timeIntervalSince(started) < 2)
        // The stalled connections are closed once the connection timeout passes.
        Thread.sleep(forTimeInterval: 3.5)
        #expect(throws: (any Error).self) { _ = try stalled[0].readResponse() }
        #expect(try server.client().request("GET", "/healthz").status == 200)
    }

    @Test func servesManyIdleConnectionsAtOnce() throws {
        let server = try TestServer { $0.http.connectionLimitPerClient = 0 }
        let idle = try (0..<300).map { _ in try RawHTTPClient(port: server.port) }
        let client = try server.client()
        #expect(try client.request("GET", "/readyz").status == 200)
        #expect(try idle[299].request("GET", "/healthz").status == 200)
    }

    @Test func survivesTruncatedAndHostileRequests() throws {
        let server = try TestServer()
        for raw in [
            "POST /v1/services HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":",
            "GARBAGE\r\n\r\n",
            "GET /v1/services HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            "POST /v1/services HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
            "GET /" + String(repeating: "a", count: 100_000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            let client = try server.client()
            try? client.send(Array(raw.utf8))
        }
        let client = try server.client()
        #expect(try client.request("GET", "/healthz").status == 200)
        let huge = String(repeating: "x", count: 40_000)
        let hugeHeader = try server.client().request("GET", "/healthz", headers: ["X-Big": huge])
        #expect((400..<500).contains(hugeHeader.status))
    }

    @Test func answersHostileBodiesWithA4xx() throws {
        let server = try TestServer(maxBodyBytes: 2 << 20)
        let client = try server.client()
        let labels = (0..<20_000).map { #""key-\#($0)":"\#(String(repeating: "v", count: 70))""# }.joined(separator: ",")
        let hugeLabels = try client.request("POST", "/v1/services", json: #"{"name":"a","ports":[{"port":80}],"labels":{\#(labels)}}"#)
        #expect(hugeLabels.status == 422)
        let binary = try client.request("POST", "/v1/services", body: (0..<4096).map { UInt8($0 % 256) })
        #expect(binary.status == 400)
        let nested = try client.request("POST", "/v1/services", json: String(repeating: #"{"a":"#, count: 10_000))
        #expect(nested.status == 400)
        let wrongTypes = try client.request("POST", "/v1/services", json: #"{"name":["x"],"ports":"80","addresses":{"ip":1}}"#)
        #expect(wrongTypes.status == 422)
        let nulls = try client.request("POST", "/v1/services", json: "null")
        #expect(nulls.status == 422)
        let hugeNumber = try client.request("POST", "/v1/services", json: #"{"name":"a","ports":[{"port":1e999999}]}"#)
        #expect(hugeNumber.status == 422)
        #expect(try client.request("GET", "/healthz").status == 200)
    }
}
