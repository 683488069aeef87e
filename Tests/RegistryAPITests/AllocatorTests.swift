import Foundation
import Testing

/// The server's allocator: `endpoint-registry` links tcmalloc (`CTCMalloc`) ahead of the C
/// library, so the process's `malloc` is tcmalloc's, which `serve` checks and logs at start.
@Suite struct AllocatorTests {
    @Test func theServerAllocatesWithTCMalloc() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "allocator-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appending(path: "server.log")
        _ = FileManager.default.createFile(atPath: log.path(), contents: nil)
        let process = Process()
        process.executableURL = Paths.binary
        process.arguments = ["serve", "--port", "0", "--database", directory.appending(path: "r.sqlite").path()]
        process.environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("ENDPOINT_REGISTRY_") && $0.key != "KUBECONFIG" && $0.key != "LD_PRELOAD"
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        func logText() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline && !logText().contains("listening on") { Thread.sleep(forTimeInterval: 0.05) }
        #expect(logText().contains("allocator: tcmalloc (gperftools "), "\(logText())")
        #expect(!logText().contains("malloc is not tcmalloc's"))
        // Read to its end: a /proc file has no size, and a read sized by it stops after a page.
        let file = try #require(FileHandle(forReadingAtPath: "/proc/\(process.processIdentifier)/maps"))
        let maps = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        #expect(maps.contains("libtcmalloc_minimal.so"))
    }
}
