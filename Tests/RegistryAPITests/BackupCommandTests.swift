import Foundation
import Synchronization
import TestSupport
import Testing

/// `endpoint-registry backup` against a running server process, and the restore the README
/// describes (stop the server, copy the backup over the database, remove the stale -wal and
/// -shm, start).
@Suite(.serialized) struct BackupCommandTests {
    private static func names(_ port: UInt16) throws -> Set<String> {
        let response = try RawHTTPClient(port: port).request("GET", "/v1/services?limit=1000")
        #expect(response.status == 200)
        return Set(((response.json?["items"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String })
    }

    @Test func backsUpAServingDatabaseUnderWritesAndRestoresIt() throws {
        let server = try ServerProcess(["--durability", "normal"])
        let database = server.directory.appending(path: "db.sqlite").path()
        let client = try RawHTTPClient(port: server.port)
        for index in 0..<20 {
            let body = #"{"name":"before-\#(index)","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.\#(index + 1)"}]}"#
            #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        }

        // Writes through the API go on while the backup runs (bounded in count).
        let state = WriterProgress()
        let done = DispatchSemaphore(value: 0)
        let port = server.port
        Thread.detachNewThread {
            defer { done.signal() }
            do {
                let writer = try RawHTTPClient(port: port)
                for index in 0..<300 where !state.stop.load(ordering: .relaxed) {
                    let body = #"{"name":"during-\#(index)","ports":[{"port":80}]}"#
                    let status = try writer.request("POST", "/v1/services", json: body).status
                    guard status == 201 else {
                        state.failures.withLock { $0.append("status \(status)") }
                        return
                    }
                    state.written.add(1, ordering: .relaxed)
                }
            } catch {
                state.failures.withLock { $0.append("\(error)") }
            }
        }
        let deadline = Date().addingTimeInterval(30)
        while state.written.load(ordering: .relaxed) < 3, Date() < deadline { usleep(1000) }

        let backup = server.directory.appending(path: "backups/registry.sqlite").path()
        try FileManager.default.createDirectory(at: server.directory.appending(path: "backups"), withIntermediateDirectories: true)
        let result = try runCLI(["backup", "--output", backup], environment: ["ENDPOINT_REGISTRY_DATABASE": database])
        state.stop.store(true, ordering: .relaxed)
        #expect(done.wait(timeout: .now() + 60) == .success)
        #expect(state.failures.withLock { $0 } == [], "writes through the server go on during the backup")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("backed up \(database) to \(backup): "))
        #expect(result.stdout.contains("integrity_check ok"))
        let counted = result.stdout.split(separator: "\n").first { $0.hasPrefix("services: ") }.flatMap { Int($0.dropFirst("services: ".count)) }
        let services = try #require(counted, "\(result.stdout)")
        #expect(services >= 23)
        #expect(result.stdout.contains("revisions: ") && result.stdout.contains("audit lines: "))

        // The server kept serving; a second backup to the same file is refused.
        #expect(try RawHTTPClient(port: server.port).request("GET", "/readyz").status == 200)
        let again = try runCLI(["backup", "--database", database, "--output", backup])
        #expect(again.status == 1)
        #expect(again.stderr == "error: \(backup) exists; give --force to replace it\n")

        // Restore: stop, copy over, remove -wal and -shm, start.
        server.signal(SIGTERM)
        server.process.waitUntilExit()
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: database + suffix) {
            try FileManager.default.removeItem(atPath: database + suffix)
        }
        try FileManager.default.copyItem(atPath: backup, toPath: database)
        let restored = try ServerProcess([], database: database)
        let names = try Self.names(restored.port)
        #expect(names.count == services)
        #expect(Set((0..<20).map { "before-\($0)" }).isSubset(of: names))
    }

    @Test func refusesAPostgreSQLDatabaseAndPointsToPgDump() throws {
        let result = try runCLI(["backup", "--database", "postgres://registry:s3cret@db.example.com/registry", "--output", "/tmp/never"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("pg_dump"))
        #expect(!result.stderr.contains("s3cret"), "the URL (and its password) is not echoed")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never"))
    }
}

/// What the writer thread shares with the test.
private final class WriterProgress: Sendable {
    let stop = Atomic<Bool>(false)
    let written = Atomic<Int>(0)
    let failures = Mutex<[String]>([])
}
