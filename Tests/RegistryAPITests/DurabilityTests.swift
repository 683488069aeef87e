import Foundation
import RegistryCore
import RegistryResources
import RegistryStorage
import TestSupport
import Testing

/// Kills the real server process with SIGKILL in the middle of a stream of writes, then checks
/// that every acknowledged write is in the database and that the file is sound.
@Suite(.serialized) struct DurabilityTests {
    /// Starts `endpoint-registry serve` on an ephemeral port and returns it with its port.
    private func startServer(database: String, durability: String) throws -> (Process, UInt16) {
        let log = URL(fileURLWithPath: database + ".log")
        #expect(FileManager.default.createFile(atPath: log.path(), contents: nil))
        let process = Process()
        process.executableURL = Paths.binary
        process.arguments = ["serve", "--port", "0", "--database", database, "--durability", durability, "--log-level", "notice"]
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: "port="), let port = UInt16(text[range.upperBound...].prefix { $0.isNumber }) {
                return (process, port)
            }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw ClientError.malformed("server did not start: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    /// A blocking writer on a thread of its own (not the 2-thread cooperative pool): POSTs
    /// `request(index)` for each index until one is not answered 201, and collects the name of
    /// each that was (acknowledged).
    private func startWriter(
        port: UInt16, finished: DispatchGroup, into results: Results, count: Int,
        _ request: @escaping @Sendable (Int) -> (path: String, body: String, name: String)
    ) {
        finished.enter()
        Thread.detachNewThread {
            defer { finished.leave() }
            guard let client = try? RawHTTPClient(port: port, timeoutSeconds: 5) else { return }
            for index in 0..<count {
                let (path, body, name) = request(index)
                guard let response = try? client.request("POST", path, json: body), response.status == 201 else { return }
                results.append(name)
            }
        }
    }

    @Test(arguments: ["full", "normal"])
    func everyAcknowledgedWriteSurvivesKill9(durability: String) throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "registry-kill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let database = directory.appending(path: "registry.sqlite").path()
        let (process, port) = try startServer(database: database, durability: durability)

        // A service large enough for its document to be kept apart as a whole part and patches
        // (issue 14): a fifth writer adds addresses to it, one request each.
        let setup = try RawHTTPClient(port: port, timeoutSeconds: 30)
        let many = (0..<2_500).map { #"{"ip":"10.1.\#($0 / 250).\#($0 % 250 + 1)"}"# }.joined(separator: ",")
        #expect(try setup.request("POST", "/v1/services", json: #"{"name":"big","ports":[{"port":80}],"addresses":[\#(many)]}"#).status == 201)

        let results = Results()
        let added = Results()
        let finished = DispatchGroup()
        startWriter(port: port, finished: finished, into: added, count: 60_000) { index in
            let ip = "10.50.\(index / 250).\(index % 250 + 1)"
            return (path: "/v1/services/default/big/addresses", body: #"{"ip":"\#(ip)"}"#, name: ip)
        }
        for writer in 0..<4 {
            startWriter(port: port, finished: finished, into: results, count: 1_000_000) { index in
                let name = "w\(writer)-\(index)"
                let body = #"{"name":"\#(name)","ports":[{"port":80}],"addresses":[{"ip":"10.0.\#(writer).1"},{"ip":"10.0.\#(writer).2"}]}"#
                return (path: "/v1/services", body: body, name: name)
            }
        }
        Thread.sleep(forTimeInterval: 1.5)
        kill(process.processIdentifier, SIGKILL)
        finished.wait()
        let acknowledged = results.names
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(acknowledged.count > 50, "too few writes were acknowledged to test anything")

        let store = try ServiceStore(path: database, migrations: try Migration.parse(RegistryResources.migrations))
        #expect(try store.integrityCheck() == ["ok"])
        let missing = try acknowledged.filter { try store.document(namespace: "default", name: $0) == nil }
        #expect(missing.isEmpty, "acknowledged but lost: \(missing.prefix(10))")
        #expect(try store.count() >= acknowledged.count + 1)
        // Every acknowledged address is in the large service's document, rebuilt from its parts.
        #expect(added.names.count > 10, "too few addresses were acknowledged to test anything")
        let big = try #require(try store.record(namespace: "default", name: "big"))
        let stored = Set(big.service.addresses.map(\.ip))
        let lost = added.names.filter { !stored.contains($0) }
        #expect(lost.isEmpty, "acknowledged but lost: \(lost.prefix(10))")
        #expect(big.revision >= 1 + added.names.count)
    }
}

/// Names acknowledged by the server, collected from several threads.
private final class Results: @unchecked Sendable {
    // Why @unchecked Sendable is safe: every access goes through `lock`.
    private let lock = NSLock()
    private var collected: [String] = []

    func append(_ name: String) { lock.withLock { collected.append(name) } }
    var names: [String] { lock.withLock { collected } }
}
