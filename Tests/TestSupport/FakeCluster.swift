public import Foundation

/// The fake Kubernetes API server (Tests/FakeAPIServer/fake_apiserver.py) on loopback HTTPS,
/// with a CA, server and client certificates made for the test, and a kubeconfig naming it in
/// several ways: `token`, `cert` (client certificate), `readonly` (a user without write
/// rights), `tokenfile`, `exec` (a plugin with `interactiveMode: Always`: unusable) and
/// `untrusted` (wrong CA).
public final class FakeCluster {
    /// The certificate the fake API server presents.
    public enum ServerCertificate: Sendable {
        /// For `IP:127.0.0.1` and `DNS:localhost`, signed by the fake CA.
        case standard
        /// For `DNS:kube.test` only: a client reaches 127.0.0.1 only with `tls-server-name: kube.test`
        /// (or through a proxy that maps kube.test to loopback).
        case dnsOnly
        /// For `IP:127.0.0.1`, expired yesterday.
        case expired
    }

    public let directory: URL
    let process = Process()
    public private(set) var port: UInt16 = 0
    public let kubeconfig: String
    public var server: String { "https://127.0.0.1:\(port)" }
    public let tokenFile: URL
    public let serverCertificate: ServerCertificate

    public convenience init() throws {
        try self.init(serverCertificate: .standard)
    }

    public init(serverCertificate: ServerCertificate) throws {
        self.serverCertificate = serverCertificate
        directory = FileManager.default.temporaryDirectory.appending(path: "fake-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=fake-ca -keyout ca.key -out ca.crt 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
            printf 'subjectAltName=\(serverCertificate == .dnsOnly ? "DNS:kube.test" : "IP:127.0.0.1,DNS:localhost")\\n' > server.ext
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days \(serverCertificate == .expired ? -1 : 1) -extfile server.ext -out server.crt 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj /CN=cert-user -keyout client.key -out client.crt.csr 2>/dev/null
            openssl x509 -req -in client.crt.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -out client.crt 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca -keyout other.key -out other.crt 2>/dev/null
            """
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", script]
        shell.currentDirectoryURL = directory
        try shell.run()
        shell.waitUntilExit()
        guard shell.terminationStatus == 0 else { throw ClientError.malformed("openssl failed") }

        tokenFile = directory.appending(path: "token")
        try "file-token-1".write(to: tokenFile, atomically: true, encoding: .utf8)
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", RepositoryPaths.root.appending(path: "Tests/FakeAPIServer/fake_apiserver.py").path(), "--cert",
            directory.appending(path: "server.crt").path(),
            "--key", directory.appending(path: "server.key").path(), "--client-ca", directory.appending(path: "ca.crt").path(),
            "--token", "admin-token=admin", "--token", "readonly-token=viewer", "--token", "file-token-1=filer", "--readonly", "viewer",
        ]
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        guard let port = UInt16(line.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "PORT ", with: "")) else {
            throw ClientError.malformed("fake API server did not start: \(line)")
        }
        self.port = port
        let folder = directory
        func base64(_ file: String) throws -> String { try Data(contentsOf: folder.appending(path: file)).base64EncodedString() }
        let config = """
            apiVersion: v1
            kind: Config
            current-context: token
            clusters:
            - name: fake
              cluster:
                server: https://127.0.0.1:\(port)
                certificate-authority-data: \(try base64("ca.crt"))
            - name: fake-by-file
              cluster:
                server: https://127.0.0.1:\(port)
                certificate-authority: ca.crt
            - name: fake-untrusted
              cluster:
                server: https://127.0.0.1:\(port)
                certificate-authority-data: \(try base64("other.crt"))
            users:
            - name: admin
              user:
                token: admin-token
            - name: viewer
              user:
                token: readonly-token
            - name: cert-user
              user:
                client-certificate: client.crt
                client-key-data: \(try base64("client.key"))
            - name: filer
              user:
                tokenFile: token
            - name: plugin
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: aws
                  interactiveMode: Always
            contexts:
            - name: token
              context: {cluster: fake, user: admin}
            - name: cert
              context: {cluster: fake-by-file, user: cert-user}
            - name: readonly
              context: {cluster: fake, user: viewer}
            - name: tokenfile
              context: {cluster: fake, user: filer}
            - name: exec
              context: {cluster: fake, user: plugin}
            - name: untrusted
              context: {cluster: fake-untrusted, user: admin}
            """
        kubeconfig = directory.appending(path: "kubeconfig").path()
        try config.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
    }

    /// A control or API call to the fake with curl (admin token).
    @discardableResult
    public func call(
        _ method: String, _ path: String, json: String? = nil, contentType: String = "application/json"
    ) throws -> (status: Int, body: String) {
        var arguments = ["-X", method, "--cacert", directory.appending(path: "ca.crt").path(), "-H", "Authorization: Bearer admin-token"]
        if let json { arguments += ["-H", "Content-Type: \(contentType)", "--data-binary", json] }
        switch serverCertificate {
        case .standard: return try curl(arguments + [server + path])
        case .dnsOnly: return try curl(arguments + ["--resolve", "kube.test:\(port):127.0.0.1", "https://kube.test:\(port)" + path])
        case .expired: return try curl(arguments + ["--insecure", server + path])
        }
    }

    /// Creates a Service that another owner applied (kubectl's field manager, with a selector and
    /// no managed-by label), as `kubectl apply --server-side` would; returns the fake's status
    /// (201 when created).
    public func applyForeignService(namespace: String, name: String, selector: String) throws -> Int {
        let service =
            #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"\#(name)","namespace":"\#(namespace)"},"spec":{"selector":{"app":"\#(selector)"},"ports":[{"port":80}]}}"#
        return try call(
            "PATCH", "/api/v1/namespaces/\(namespace)/services/\(name)?fieldManager=kubectl", json: service,
            contentType: "application/apply-patch+yaml"
        ).status
    }

    /// Every object the fake stores; throws when the fake does not answer a list (so that an
    /// empty answer always means "no objects").
    public func objects() throws -> [[String: Any]] {
        let response = try call("GET", "/_fake/objects")
        guard response.status == 200,
            let items = (try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])?["items"] as? [[String: Any]]
        else {
            throw ClientError.malformed("GET /_fake/objects answered \(response.status): \(response.body.prefix(300))")
        }
        return items
    }

    public func object(_ kind: String, _ name: String) throws -> [String: Any]? {
        try objects().first { $0["kind"] as? String == kind && ($0["metadata"] as? [String: Any])?["name"] as? String == name }
    }

    deinit {
        // SIGKILL and no waitUntilExit: the interpreter may sit behind a pyenv shim.
        kill(process.processIdentifier, SIGKILL)
    }
}

/// Paths of the repository, for test helpers.
public enum RepositoryPaths {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

/// Runs curl and returns (status, body); status 0 when no HTTP answer came.
public func curl(_ arguments: [String]) throws -> (status: Int, body: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["-s", "-o", "-", "-w", "\n%{http_code}"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
}
