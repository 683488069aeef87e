import Foundation

/// The recording loopback proxy of Tests/FakeAPIServer/connect_proxy.py: HTTP CONNECT and SOCKS5,
/// every host name mapped to 127.0.0.1, each tunnel target ("host:port") logged.
public final class LoopbackProxy {
    let process = Process()
    public private(set) var port: UInt16 = 0
    let logFile: URL

    /// - Parameter refuse: answer every CONNECT with 403.
    public init(refuse: Bool = false) throws {
        logFile = FileManager.default.temporaryDirectory.appending(path: "proxy-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logFile.path(), contents: nil)
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["python3", RepositoryPaths.root.appending(path: "Tests/FakeAPIServer/connect_proxy.py").path(), "--log", logFile.path()]
            + (refuse ? ["--refuse"] : [])
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        guard let port = UInt16(line.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "PORT ", with: "")) else {
            throw ClientError.malformed("proxy did not start: \(line)")
        }
        self.port = port
    }

    /// `http://127.0.0.1:<port>`.
    public var url: String { "http://127.0.0.1:\(port)" }

    /// The tunnel targets so far, in order.
    public var targets: [String] {
        ((try? String(contentsOf: logFile, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
    }
}
