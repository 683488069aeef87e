import Foundation
import Testing

/// The server's allocator: `endpoint-registry` links tcmalloc (`CTCMalloc`) ahead of the C
/// library, so the process's `malloc` is tcmalloc's, which `serve` checks and logs at start.
@Suite struct AllocatorTests {
    @Test func theServerAllocatesWithTCMalloc() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "allocator-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try LoggedServerProcess(
            ["serve", "--port", "0", "--database", directory.appending(path: "r.sqlite").path()], log: directory.appending(path: "server.log"))
        defer { server.stop() }
        #expect(server.waitFor("listening on"))
        #expect(server.logText().contains("allocator: tcmalloc (gperftools "), "\(server.logText())")
        #expect(!server.logText().contains("malloc is not tcmalloc's"))
        // Read to its end: a /proc file has no size, and a read sized by it stops after a page.
        let file = try #require(FileHandle(forReadingAtPath: "/proc/\(server.process.processIdentifier)/maps"))
        let maps = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        #expect(maps.contains("libtcmalloc_minimal.so"))
    }
}
