import Foundation
public import PostgresStorage

#if canImport(Glibc)
    import Glibc
#endif

/// Why the throwaway server could not be started; tests that need it fail with this message.
public struct TestPostgresError: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) {
        self.description = description
    }
}

/// A throwaway PostgreSQL server for the tests: `initdb` into a fresh temporary directory (as
/// the unprivileged `postgres` user when the tests run as root, since PostgreSQL refuses to run
/// as root), started with `pg_ctl` on a Unix socket in that directory and on a loopback port,
/// without fsync, with TLS (a self-signed certificate, `certificate`). Local (socket) logins are trusted; TCP logins need the password
/// `TestPostgres.password` (SCRAM-SHA-256). A watchdog process stops the server
/// (`pg_ctl stop -m immediate`) and removes the directory as soon as the test process ends,
/// however it ends.
///
/// Missing binaries are a failure, not a skip: `scripts/test` installs Debian's `postgresql`.
public final class TestPostgres: Sendable {
    public static let password = "test-password-not-secret"

    /// The server most tests share (each in a database of its own); started on first use.
    public static func shared() throws -> TestPostgres { try sharedServer.get() }
    private static let sharedServer = Result { try TestPostgres() }

    public let directory: String
    public let dataDirectory: String
    public let port: Int
    private let binaries: String
    private let synchronousCommit: Bool
    /// `setpriv` arguments that run a command as the server's owner (empty when not root).
    private let asOwner: [String]

    /// `synchronousCommit`: acknowledge a commit only once its WAL is written (PostgreSQL's
    /// default; needed by tests that stop the server with `-m immediate` and count what
    /// survived). Off by default here, for speed.
    public init(synchronousCommit: Bool = false) throws {
        self.synchronousCommit = synchronousCommit
        binaries = try Self.findBinaries()
        let directory = "/tmp/pgtest-\(UUID().uuidString.prefix(8))"
        self.directory = directory
        dataDirectory = directory + "/data"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        if getuid() == 0 {
            let owner = getpwnam("postgres") != nil ? "postgres" : "nobody"
            guard let entry = getpwnam(owner) else { throw TestPostgresError(description: "no user to run PostgreSQL as") }
            guard chown(directory, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
                throw TestPostgresError(description: "cannot give \(directory) to \(owner)")
            }
            asOwner = ["/usr/bin/setpriv", "--reuid=\(entry.pointee.pw_uid)", "--regid=\(entry.pointee.pw_gid)", "--clear-groups", "--"]
        } else {
            asOwner = []
        }
        port = try Self.freePort()
        try startWatchdog()
        let passwordFile = directory + "/initdb-password"
        try Self.password.write(toFile: passwordFile, atomically: false, encoding: .utf8)
        try run(
            "initdb", "-D", dataDirectory, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=\(passwordFile)",
            "-E", "UTF8", "--locale=C", "--no-sync")
        // TLS with a self-signed certificate for 127.0.0.1, which clients can verify with `certificate`.
        try run(
            "/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", dataDirectory + "/server.key", "-out", dataDirectory + "/server.crt")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: dataDirectory + "/server.key")
        try start()
    }

    /// The server's self-signed TLS certificate (PEM), to verify it with `sslmode=verify-full`.
    public var certificate: String { dataDirectory + "/server.crt" }

    /// Starts the server and waits until it accepts connections.
    public func start() throws {
        let options = [
            "-c port=\(port)", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=\(directory)", "-c fsync=off",
            "-c full_page_writes=off", "-c synchronous_commit=\(synchronousCommit ? "on" : "off")", "-c shared_buffers=16MB",
            "-c max_connections=600", "-c ssl=on",
        ]
        try run("pg_ctl", "-D", dataDirectory, "-l", directory + "/server.log", "-w", "-t", "60", "-o", options.joined(separator: " "), "start")
    }

    /// Stops the server at once, as a crash would (`-m immediate`: no checkpoint, sessions cut).
    public func stop() throws {
        try run("pg_ctl", "-D", dataDirectory, "-m", "immediate", "-w", "stop")
    }

    /// Stops the server (fast: sessions are told and cut) and starts it again.
    public func restart() throws {
        try run("pg_ctl", "-D", dataDirectory, "-m", "fast", "-w", "stop")
        try start()
    }

    /// Stops the server if it runs and removes its directory (for servers a test starts itself).
    public func destroy() {
        _ = try? run("pg_ctl", "-D", dataDirectory, "-m", "immediate", "-w", "stop")
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Settings for `database` over the Unix socket as `postgres` (trusted).
    public func settings(database: String = "postgres") throws -> PostgresConnectionSettings {
        var settings = try PostgresConnectionSettings(url: url(database: database), environment: [:])
        settings.connectTimeout = .seconds(5)
        return settings
    }

    /// A new empty database; settings that reach it over the Unix socket.
    public func createDatabase() throws -> PostgresConnectionSettings {
        try settings(database: try createDatabaseNamed())
    }

    /// A new empty database; a `postgresql://` URL that reaches it over the Unix socket (as
    /// `serve --database` takes it).
    public func createDatabaseURL() throws -> String {
        url(database: try createDatabaseNamed())
    }

    /// The URL of `database` over the Unix socket as `postgres` (trusted).
    public func url(database: String) -> String {
        "postgresql://postgres@\(directory.replacingOccurrences(of: "/", with: "%2F")):\(port)/\(database)"
    }

    private func createDatabaseNamed() throws -> String {
        let name = "test_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try PostgresConnection(settings: settings())
        try admin.execute("CREATE DATABASE \(name)")
        return name
    }

    /// Runs a PostgreSQL program (or another, by absolute path) as the server's owner; throws with its output if it fails.
    @discardableResult
    private func run(_ program: String, _ arguments: String...) throws -> String {
        let command = asOwner + [program.hasPrefix("/") ? program : binaries + "/" + program] + arguments
        let outputPath = directory + "/\(URL(fileURLWithPath: program).lastPathComponent).out"
        let status = try Self.spawn(command, output: outputPath, wait: true)
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
            throw TestPostgresError(
                description: "\(command.joined(separator: " ")) exited with \(status): \(text)\nserver log:\n\(log.suffix(2000))")
        }
        return text
    }

    /// A shell that waits for this test process to end, then stops the server and removes its
    /// directory, so that no server outlives the tests (a crash or `kill -9` included).
    private func startWatchdog() throws {
        let stop = (asOwner + [binaries + "/pg_ctl", "-D", dataDirectory, "-m", "immediate", "-w", "stop"]).map { "'\($0)'" }
            .joined(separator: " ")
        let script = "while kill -0 \(getpid()) 2>/dev/null; do sleep 0.5; done; \(stop) >/dev/null 2>&1; rm -rf '\(directory)'"
        _ = try Self.spawn(["/bin/sh", "-c", script], output: "/dev/null", wait: false)
    }

    /// Starts `command` with stdin from /dev/null and stdout and stderr into `output`; with
    /// `wait`, returns its exit status. (posix_spawn and waitpid rather than Foundation's
    /// Process, whose exit detection hung here when a server was started from a test.) The child
    /// inherits no other descriptor: Foundation's `Process` learns that a child exited when the
    /// other end of a socket pair it gave that child closes, and a child spawned here meanwhile
    /// (the watchdog lives as long as the test process) would hold that end open, so another
    /// test's `waitUntilExit()` would never return.
    private static func spawn(_ command: [String], output: String, wait: Bool) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        try closeInheritedDescriptors(&actions)
        let arguments = command.map { strdup($0) } + [nil]
        defer { for argument in arguments { free(argument) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, nil, arguments, environ)
        guard spawned == 0 else { throw TestPostgresError(description: "cannot start \(command[0]): error \(spawned)") }
        guard wait else { return 0 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw TestPostgresError(description: "waitpid failed for \(command[0]): error \(errno)") }
        }
        // WIFEXITED / WEXITSTATUS: the low 7 bits are the signal (0 for a normal exit), the next 8 the status.
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+; Swift's Glibc module does
    /// not import GNU extensions, so it is looked up by name): closes every descriptor from 3 on
    /// in the child.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) throws {
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            throw TestPostgresError(description: "glibc lacks posix_spawn_file_actions_addclosefrom_np (needs 2.34 or newer)")
        }
        guard unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3) == 0 else {
            throw TestPostgresError(description: "posix_spawn_file_actions_addclosefrom_np failed")
        }
    }

    /// A loopback TCP port nothing listens on now (the kernel's choice for port 0).
    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestPostgresError(description: "socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else { throw TestPostgresError(description: "cannot find a free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The newest `/usr/lib/postgresql/N/bin` holding `initdb` and `pg_ctl` (Debian's layout), or
    /// the directory of `initdb` on PATH.
    private static func findBinaries() throws -> String {
        let debian = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: debian)) ?? []).compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(debian)/\(version)/bin/initdb") {
            return "\(debian)/\(version)/bin"
        }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        for directory in path where ["initdb", "pg_ctl"].allSatisfy({ FileManager.default.isExecutableFile(atPath: "\(directory)/\($0)") }) {
            return String(directory)
        }
        throw TestPostgresError(
            description:
                "PostgreSQL's server programs (initdb, pg_ctl) are not installed (looked in /usr/lib/postgresql/*/bin and PATH): "
                + "install Debian's postgresql package (scripts/test does: scripts/install-deps postgresql)")
    }
}
