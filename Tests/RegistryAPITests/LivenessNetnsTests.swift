import Foundation
import Testing

/// Whether this process may create a private network namespace (`unshare -n`, root).
enum NetworkNamespace {
    static let available: Bool = {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else { return false }
        return unshareWorks(["-n"])
    }()
}

/// Whether `unshare FLAGS true` succeeds here.
func unshareWorks(_ flags: [String]) -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
    process.arguments = flags + ["true"]
    do {
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    } catch {
        return false
    }
}

/// End-to-end health checks with real backends and the real server, all inside a private
/// network namespace (scripts/e2e/liveness-netns.sh), with the fake API server as the bound
/// cluster: the documentation addresses exist only there, so no probe can leave the machine. Skipped, saying so, where `unshare -n` is not
/// permitted.
@Suite struct LivenessNetnsTests {
    @Test(.enabled(if: NetworkNamespace.available, "needs `unshare -n` (root): private network namespace not permitted here"))
    func deadBackendLeavesTheRenderingAndComesBack() throws {
        let (status, text) = try runUnshared(
            ["-n"], script: "scripts/e2e/liveness-netns.sh", arguments: [Paths.root.path()], workPrefix: "liveness", timeoutSeconds: 180)
        #expect(status == 0, "\(text)")
        #expect(text.contains("ok: dead backend leaves the rendering"))
        #expect(text.contains("ok: dead backend leaves the fake cluster"))
        #expect(text.contains("ok: recovered backend comes back"))
        #expect(text.contains("ok: recovered backend comes back in the fake cluster"))
        #expect(text.hasSuffix("PASS\n"), "\(text)")
    }
}

/// Runs `sh SCRIPT BINARY WORK ARGUMENTS...` under `unshare FLAGS` (a private namespace the
/// script sets up), with a fresh work directory, for at most `timeoutSeconds` (then SIGKILL: a
/// child inherits the spawning thread's blocked signals, so SIGTERM might never arrive).
/// Returns the exit status and everything the script wrote (stdout and stderr).
func runUnshared(_ flags: [String], script: String, arguments: [String], workPrefix: String, timeoutSeconds: Double) throws -> (Int32, String) {
    let work = FileManager.default.temporaryDirectory.appending(path: "\(workPrefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: work) }
    let output = work.appending(path: "output.txt")
    try #require(FileManager.default.createFile(atPath: output.path(), contents: nil))
    let handle = try FileHandle(forWritingTo: output)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
    process.arguments = flags + ["sh", Paths.root.appending(path: script).path(), Paths.binary.path(), work.path()] + arguments
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    // Bounded: the script's own waits add up to well under this.
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    try handle.close()
    return (process.terminationStatus, try String(contentsOf: output, encoding: .utf8))
}
