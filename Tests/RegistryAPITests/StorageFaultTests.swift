import Foundation
import HTTPServer
import Synchronization
import RegistryAPI
import RegistryCore
import RegistryResources
import RegistryStorage
import TestSupport
import Testing

/// The database failing under the server: a full disk, a read-only file, a damaged file. Each
/// must give a clean, specific answer (507 or 503 problem+json, `/readyz` false) and never a 500,
/// a half-write or a lost acknowledged write. The full disk is a small tmpfs mounted by the test
/// (root only); the read-only file is served by a process running as `nobody`.
@Suite(.serialized, .enabled(if: TestStore.current == .sqlite, "faults of the SQLite file itself: the SQLite pass runs them"))
struct StorageFaultTests {
    private static var isRoot: Bool { getuid() == 0 }

    private func temporaryDirectory(_ label: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appending(path: "registry-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    private func shell(_ command: String) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test(.enabled(if: isRoot, "mounting a small tmpfs needs root"))
    func fullDiskAnswers507AndLosesNothingAcknowledged() throws {
        let mount = try temporaryDirectory("full")
        guard shell("mount -t tmpfs -o size=3m tmpfs '\(mount.path())'") == 0 else {
            Issue.record("cannot mount a tmpfs at \(mount.path()) although running as root")
            return
        }
        defer { _ = shell("umount -l '\(mount.path())'") }
        let server = try TestServer { $0.databasePath = mount.appending(path: "registry.sqlite").path() }
        let filler = mount.appending(path: "filler").path()
        // Leave about 200 KiB free.
        _ = shell("dd if=/dev/zero of='\(filler)' bs=64k count=40 2>/dev/null")

        let statuses = Statuses()
        let group = DispatchGroup()
        let port = server.port
        for writer in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                guard let client = try? RawHTTPClient(port: port) else { return }
                let end = Date().addingTimeInterval(8)
                for index in 0..<3000 where Date() < end {
                    let name = "w\(writer)-\(index)"
                    let addresses = (1...40).map { #"{"ip":"10.\#(writer).\#(index % 250).\#($0)"}"# }.joined(separator: ",")
                    let body =
                        #"{"name":"\#(name)","description":"\#(String(repeating: "x", count: 2000))","ports":[{"port":80}],"addresses":[\#(addresses)]}"#
                    guard let response = try? client.request("POST", "/v1/services", json: body) else { return }
                    statuses.record(name, response)
                    if response.status == 507 && statuses.fullCount > 20 { return }
                }
            }
        }
        group.wait()
        let seen = statuses.all
        #expect(seen.contains { $0.status == 507 }, "the disk never filled up: \(Set(seen.map(\.status)))")
        #expect(seen.allSatisfy { $0.status == 201 || $0.status == 507 }, "unexpected statuses: \(Set(seen.map(\.status)))")
        if let full = seen.first(where: { $0.status == 507 }) {
            #expect(full.type == "urn:problem-type:endpoint-registry:insufficient-storage")
            #expect(full.retryAfter != nil)
        }
        // Space comes back: writes succeed again, and every acknowledged write is there.
        try FileManager.default.removeItem(atPath: filler)
        let client = try server.client()
        let after = try client.request("POST", "/v1/services", json: #"{"name":"after-space","ports":[{"port":80}]}"#)
        #expect(after.status == 201)
        #expect(try client.request("GET", "/readyz").status == 200)
        for entry in seen where entry.status == 201 {
            #expect(try client.request("GET", "/v1/services/default/\(entry.name)").status == 200, "acknowledged \(entry.name) is missing")
        }
        for entry in seen.prefix(200) where entry.status == 507 {
            #expect(try client.request("GET", "/v1/services/default/\(entry.name)").status == 404, "refused \(entry.name) was half-written")
        }
    }

    @Test(.enabled(if: isRoot, "running the server as nobody needs root"))
    func readOnlyDatabaseIsNotReadyAndRefusesWritesWith503() throws {
        let directory = try temporaryDirectory("readonly")
        let database = directory.appending(path: "registry.sqlite").path()
        do {
            let server = try TestServer { $0.databasePath = database }
            #expect(try server.client().request("POST", "/v1/services", json: #"{"name":"kept","ports":[{"port":80}]}"#).status == 201)
        }
        // The directory is nobody's (SQLite may create its -wal and -shm files there), the
        // database file is not writable by anyone but root.
        #expect(shell("chown -R nobody '\(directory.path())' && chmod 444 '\(database)'") == 0)
        let process = try ServerProcess([], database: database, wrapper: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        let client = try RawHTTPClient(port: process.port)
        let ready = try client.request("GET", "/readyz")
        #expect(ready.status == 503)
        #expect(ready.text.contains("cannot be written"), "\(ready.text)")
        #expect(try client.request("GET", "/v1/services/default/kept").status == 200)
        let write = try client.request("POST", "/v1/services", json: #"{"name":"refused","ports":[{"port":80}]}"#)
        #expect(write.status == 503)
        #expect(write.header("Retry-After") != nil)
        #expect((write.json?["reason"] as? String) == "readOnly", "\(write.text)")
        #expect(process.logText.contains("cannot be used for writes"))
    }

    /// Writes waiting for the database (here locked by another process for 3 s) hold no worker
    /// thread: with one worker, other requests are answered meanwhile, and the writes complete
    /// once the lock is gone. A `DELETE` is answered after its commit as creates and updates
    /// are; an import runs off the worker thread.
    @Test(arguments: ["DELETE", "import"])
    func aWriteWaitingForTheDatabaseHoldsNoWorker(write: String) throws {
        let server = try TestServer { $0.http.threads = 1 }
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: #"{"name":"gone","ports":[{"port":80}]}"#).status == 201)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = [
            "python3", "-c",
            "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(3); c.execute('ROLLBACK')",
            server.databasePath,
        ]
        let output = Pipe()
        holder.standardOutput = output
        try holder.run()
        defer { holder.waitUntilExit() }
        #expect(String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).hasPrefix("locked"))
        let status = Mutex<Int?>(nil)
        let done = DispatchSemaphore(value: 0)
        let port = server.port
        Thread {
            let answer =
                write == "DELETE"
                ? try? RawHTTPClient(port: port).request("DELETE", "/v1/services/default/gone")
                : try? RawHTTPClient(port: port).request(
                    "POST", "/v1/import", json: #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"imported"},"spec":{"ports":[{"port":80}]}}"#
                )
            status.withLock { $0 = answer?.status }
            done.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.3)
        let start = ContinuousClock.now
        #expect(try client.request("GET", "/healthz").status == 200)
        #expect(try client.request("GET", "/v1/services/default/gone").status == 200)
        #expect(ContinuousClock.now - start < .milliseconds(1_500), "answered while the \(write) waits for the database")
        done.wait()
        #expect(status.withLock { $0 } == (write == "DELETE" ? 204 : 200))
        #expect(
            try client.request("GET", write == "DELETE" ? "/v1/services/default/gone" : "/v1/services/default/imported").status
                == (write == "DELETE" ? 404 : 200))
    }

    @Test func damagedDatabaseIsRefusedAtStartUnlessTheCheckIsSkipped() throws {
        let directory = try temporaryDirectory("corrupt")
        let database = directory.appending(path: "registry.sqlite").path()
        let (servicesRoot, pageSize): (Int, Int)
        do {
            let store = try ServiceStore(path: database, migrations: try Migration.parse(RegistryResources.migrations))
            for index in 0..<300 {
                _ = try store.create(try ServiceDecoderFixture.service(name: "s\(index)"))
            }
            try store.checkpoint()
            // Where the services table starts (migrations that make tables again move it).
            let connection = try store.database.connect(readOnly: true)
            let root = try connection.prepare(
                "SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_schema WHERE type = 'table' AND name = 'services'")
            try #require(try root.step())
            (servicesRoot, pageSize) = (root.int(0), root.int(1))
            connection.resetStatements()
        }
        try #require(servicesRoot > 1 && pageSize >= 512)
        // Overwrite six pages from the services table's root with garbage, keeping the header page.
        let handle = try #require(FileHandle(forUpdatingAtPath: database))
        try handle.seek(toOffset: UInt64((servicesRoot - 1) * pageSize))
        handle.write(Data((0..<(6 * pageSize)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }))
        try handle.close()

        let refused = try ServerProcess([], expectStart: false, database: database)
        refused.process.waitUntilExit()
        #expect(refused.process.terminationStatus != 0)
        #expect(refused.logText.contains("quick_check"), "\(refused.logText)")
        #expect(refused.logText.contains("--skip-db-check"))

        let process = try ServerProcess(["--skip-db-check"], database: database)
        let client = try RawHTTPClient(port: process.port)
        let list = try client.request("GET", "/v1/services?limit=500")
        #expect(list.status == 503, "\(list.status) \(list.text)")
        #expect((list.json?["reason"] as? String) == "corrupt")
    }
}

/// One registration, decoded as the API would.
enum ServiceDecoderFixture {
    static func service(name: String) throws -> ExternalService {
        let json = try JSONParser.parse(Array(#"{"name":"\#(name)","ports":[{"port":80}],"addresses":[{"ip":"10.1.2.3"},{"ip":"10.1.2.4"}]}"#.utf8))
        return try ServiceDecoder.decode(json).get().service
    }
}

/// Statuses of many concurrent writes, with what the problem documents said.
private final class Statuses: @unchecked Sendable {
    // Why @unchecked Sendable is safe: every access goes through `lock`.
    struct Entry {
        var name: String
        var status: Int
        var type: String?
        var retryAfter: String?
    }
    private let lock = NSLock()
    private var entries: [Entry] = []

    func record(_ name: String, _ response: ClientResponse) {
        let entry = Entry(name: name, status: response.status, type: response.json?["type"] as? String, retryAfter: response.header("Retry-After"))
        lock.withLock { entries.append(entry) }
    }
    var all: [Entry] { lock.withLock { entries } }
    var fullCount: Int { lock.withLock { entries.filter { $0.status == 507 }.count } }
}
