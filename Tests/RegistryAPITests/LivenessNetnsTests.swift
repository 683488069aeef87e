import Foundation
import Testing

/// Whether this process may create a private network namespace (`unshare -n`, root).
enum NetworkNamespace {
    static let available: Bool = {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["-n", "true"]
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        } catch {
            return false
        }
    }()
}

/// End-to-end health checks with real backends and the real server, all inside a private
/// network namespace (scripts/e2e/liveness-netns.sh): the documentation addresses exist only
/// there, so no probe can leave the machine. Skipped, saying so, where `unshare -n` is not
/// permitted.
@Suite struct LivenessNetnsTests {
    @Test(.enabled(if: NetworkNamespace.available, "needs `unshare -n` (root): private network namespace not permitted here"))
    func deadBackendLeavesTheRenderingAndComesBack() throws {
        let work = FileManager.default.temporaryDirectory.appending(path: "liveness-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let output = work.appending(path: "output.txt")
        try #require(FileManager.default.createFile(atPath: output.path(), contents: nil))
        let handle = try FileHandle(forWritingTo: output)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = [
            "-n", "sh", Paths.root.appending(path: "scripts/e2e/liveness-netns.sh").path(), Paths.binary.path(), work.path(),
        ]
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        // Bounded: the script's own waits add up to well under this.
        let deadline = Date().addingTimeInterval(180)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try handle.close()
        let text = try String(contentsOf: output, encoding: .utf8)
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("ok: dead backend leaves the rendering"))
        #expect(text.contains("ok: recovered backend comes back"))
        #expect(text.hasSuffix("PASS\n"), "\(text)")
    }
}
