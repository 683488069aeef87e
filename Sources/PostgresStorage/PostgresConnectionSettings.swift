import Foundation

/// Why a PostgreSQL URL was refused; `description` names the part at fault and never contains
/// the password.
public enum PostgresSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    case scheme
    /// A value that starts like a URL (`scheme:`) of another scheme, or a `postgres:` without
    /// `//`: refused rather than taken for an SQLite file name (a mistyped URL would otherwise
    /// give each replica a database file of its own). Holds the scheme only, never the rest.
    case notADatabaseURL(scheme: String)
    case malformed(String)
    case badPort(String)
    case badParameter(name: String, value: String, reason: String)
    case unknownParameter(String)

    public var description: String {
        switch self {
        case .scheme: "a PostgreSQL URL starts with postgres:// or postgresql://"
        case .notADatabaseURL(let scheme):
            "\"\(scheme):…\" is neither a PostgreSQL URL (postgres://… or postgresql://…) nor an SQLite file name (a file name with a colon starts with ./ or /)"
        case .malformed(let reason): "malformed PostgreSQL URL: \(reason)"
        case .badPort(let port): "PostgreSQL URL: port must be a number from 1 to 65535, not \(port.debugDescription)"
        case .badParameter(let name, let value, let reason): "PostgreSQL URL: \(name)=\(value.debugDescription) \(reason)"
        case .unknownParameter(let name):
            "PostgreSQL URL: unknown parameter \(name.debugDescription) (known: \(PostgresConnectionSettings.knownParameters.joined(separator: ", ")))"
        }
    }
}

/// Where a connection to PostgreSQL goes and how: parsed from a libpq connection URI
/// (`postgres://[user[:password]@][host][:port][/dbname][?param=value&…]`, see
/// https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING). A host beginning
/// with `/` (percent-encoded in the host part as `%2F`, or given as `?host=/path`) is the
/// directory of a Unix socket. What the URL leaves out, libpq takes from its environment
/// variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGSSLMODE`, …) and defaults, as `psql` does.
///
/// The password comes, in this order, from the URL, from `passwordFile` (a file holding only
/// the password, such as a mounted Kubernetes Secret; read again on every new connection so that
/// a rotated password is picked up), or from `PGPASSWORD`; with none of them libpq consults its
/// password file (`PGPASSFILE`, `~/.pgpass`). `description` never shows the password.
public struct PostgresConnectionSettings: Sendable, Equatable, CustomStringConvertible {
    /// libpq's `sslmode` (https://www.postgresql.org/docs/15/libpq-ssl.html#LIBPQ-SSL-PROTECTION).
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    /// Where the password comes from.
    public enum PasswordSource: Sendable, Equatable {
        /// None given: libpq's own password file, if any, or no password.
        case none
        /// Written in the URL (`user:password@` or `?password=`).
        case url(String)
        /// A file holding only the password (one trailing newline is ignored).
        case file(String)
        /// The `PGPASSWORD` environment variable, read when the settings were made.
        case environment(String)
    }

    /// Query parameters accepted in the URL, passed on to libpq as they are.
    static let knownParameters = [
        "application_name", "connect_timeout", "dbname", "host", "passfile", "password", "port", "sslcert", "sslkey",
        "sslmode", "sslrootcert", "target_session_attrs", "user",
    ]

    /// A server to try: host name, IP address or Unix socket directory (nil: libpq's default,
    /// `PGHOST`, else the socket directory) and TCP port (or the number in the socket's name; nil:
    /// libpq's default, `PGPORT`, else 5432).
    public struct Endpoint: Sendable, Equatable {
        public var host: String?
        public var port: Int?

        public init(host: String? = nil, port: Int? = nil) {
            self.host = host
            self.port = port
        }
    }

    /// The first server's host (see `Endpoint`).
    public var host: String?
    /// The first server's port (see `Endpoint`).
    public var port: Int?
    /// Further servers from a URL naming several (`postgresql://db1:5432,db2:5432/registry`),
    /// tried in order when a connection is made, as libpq does; with
    /// `?target_session_attrs=read-write` libpq skips standbys, so a connection reaches the
    /// primary after a failover (https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-MULTIPLE-HOSTS).
    public var fallbackHosts: [Endpoint] = []
    /// nil: libpq's default (`PGDATABASE`, else the user name).
    public var database: String?
    /// nil: libpq's default (`PGUSER`, else the operating-system user).
    public var user: String?
    public var password: PasswordSource
    /// nil: libpq's default (`PGSSLMODE`, else `prefer`).
    public var sslMode: SSLMode?
    /// Other libpq parameters from the URL (`sslrootcert`, `sslcert`, `sslkey`, `passfile`, `application_name`).
    public var parameters: [String: String]
    /// How long to wait for a connection to be established (libpq's `connect_timeout`, whole
    /// seconds; libpq waits at least 2). Default 5 s; `?connect_timeout=` in the URL sets it.
    public var connectTimeout: Duration
    /// The server cancels any statement running longer than this (`statement_timeout`, set for
    /// every session). Default 30 s.
    public var statementTimeout: Duration
    /// The server ends a session that has stayed this long inside a transaction without sending
    /// a statement (`idle_in_transaction_session_timeout`, set for every session; nil: never),
    /// giving up its locks: a replica frozen or cut off in the middle of a write would otherwise
    /// hold the write lock (the resource version's row) of every replica until PostgreSQL noticed
    /// the dead connection, hours later by the server's default keepalives. The store sends the
    /// statements of a transaction one after another, without waiting on anything else between
    /// them. Default 10 s: less than the statement timeout, so that a write waiting behind a
    /// frozen replica gets the lock before it gives up.
    public var idleInTransactionTimeout: Duration?
    /// A TCP connection whose sent data stays unacknowledged this long is given up
    /// (`tcp_user_timeout`), and keepalives probe an idle one, so that a partitioned server
    /// cannot make a call hang. Default 15 s.
    public var networkTimeout: Duration

    /// What a `--database` (`--from`, `--to`) value names, without parsing it further.
    public enum DatabaseKind: Sendable, Equatable {
        /// An SQLite file: a value that does not start with a URI scheme (RFC 3986 §3.1).
        case sqliteFile
        /// Starts with `postgres://` or `postgresql://` (in any case): parse it with `init(url:)`.
        case postgreSQL
    }

    /// Tells an SQLite file name from a PostgreSQL URL. A value that starts with a URI scheme
    /// and a colon (`[A-Za-z][A-Za-z0-9+.-]*:`) but is not a PostgreSQL URL (`postgres:/db`,
    /// `postgress://…`, `mysql://…`) throws `notADatabaseURL`: taken for a relative file name it
    /// would start a replica on an empty SQLite file of its own. Such a file name is written
    /// `./name:…`.
    public static func kind(of value: String) throws(PostgresSettingsError) -> DatabaseKind {
        let lowered = value.lowercased()
        if lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://") { return .postgreSQL }
        guard let colon = value.firstIndex(of: ":") else { return .sqliteFile }
        let scheme = value[..<colon]
        let isScheme =
            scheme.first.map { $0.isASCII && $0.isLetter } == true
            && scheme.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
        guard isScheme else { return .sqliteFile }
        throw .notADatabaseURL(scheme: String(scheme))
    }

    /// Parses a `postgres://` or `postgresql://` URL. `passwordFile` and `PGPASSWORD` from
    /// `environment` (nil: the process's environment) are used when the URL holds no password.
    public init(url: String, passwordFile: String? = nil, environment: [String: String]? = nil) throws(PostgresSettingsError) {
        var rest: Substring
        if url.hasPrefix("postgresql://") {
            rest = url.dropFirst("postgresql://".count)
        } else if url.hasPrefix("postgres://") {
            rest = url.dropFirst("postgres://".count)
        } else {
            throw .scheme
        }
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var urlPassword: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try Self.decode(userInfo[..<colon], part: "user")
                urlPassword = try Self.decode(userInfo[userInfo.index(after: colon)...], part: "password")
            } else if !userInfo.isEmpty {
                user = try Self.decode(userInfo, part: "user")
            }
        }
        var endpoints: [Endpoint] = []
        for part in rest.split(separator: ",", omittingEmptySubsequences: false) {
            var hostPart = part
            var portPart: Substring?
            if hostPart.hasPrefix("[") {
                guard let close = hostPart.firstIndex(of: "]") else { throw .malformed("unterminated [ in the host") }
                let after = hostPart[hostPart.index(after: close)...]
                hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
                if !after.isEmpty {
                    guard after.hasPrefix(":") else { throw .malformed("unexpected \(String(after).debugDescription) after the host") }
                    portPart = after.dropFirst()
                }
            } else if let colon = hostPart.lastIndex(of: ":") {
                portPart = hostPart[hostPart.index(after: colon)...]
                hostPart = hostPart[..<colon]
            }
            endpoints.append(
                Endpoint(
                    host: hostPart.isEmpty ? nil : try Self.decode(hostPart, part: "host"),
                    port: try portPart.map { port throws(PostgresSettingsError) in try Self.port(String(port)) }))
        }
        host = endpoints.first?.host
        port = endpoints.first?.port
        fallbackHosts = Array(endpoints.dropFirst())
        if !path.isEmpty {
            guard !path.contains("/") else { throw .malformed("the database name cannot contain /") }
            database = try Self.decode(path, part: "database name")
        }
        parameters = [:]
        connectTimeout = .seconds(5)
        statementTimeout = .seconds(30)
        idleInTransactionTimeout = .seconds(10)
        networkTimeout = .seconds(15)
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: "=") ?? pair.endIndex
            let name = try Self.decode(pair[..<equals], part: "parameter name")
            let value = equals == pair.endIndex ? "" : try Self.decode(pair[pair.index(after: equals)...], part: name)
            switch name {
            case "host":
                let hosts = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.isEmpty ? nil : String($0) }
                host = hosts.first ?? nil
                for (index, fallback) in hosts.dropFirst().enumerated() {
                    if index < fallbackHosts.count { fallbackHosts[index].host = fallback } else { fallbackHosts.append(Endpoint(host: fallback)) }
                }
            case "port":
                let ports = try value.split(separator: ",", omittingEmptySubsequences: false).map { text throws(PostgresSettingsError) in
                    text.isEmpty ? nil : try Self.port(String(text))
                }
                port = ports.first ?? nil
                for (index, fallback) in ports.dropFirst().enumerated() {
                    if index < fallbackHosts.count { fallbackHosts[index].port = fallback } else { fallbackHosts.append(Endpoint(port: fallback)) }
                }
            case "target_session_attrs":
                let modes = ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"]
                guard modes.contains(value) else {
                    throw .badParameter(name: name, value: value, reason: "is not one of \(modes.joined(separator: ", "))")
                }
                parameters[name] = value
            case "dbname": database = value
            case "user": user = value
            case "password": urlPassword = value
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw .badParameter(
                        name: name, value: value, reason: "is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                sslMode = mode
            case "connect_timeout":
                guard let seconds = Int(value), seconds >= 0 else {
                    throw .badParameter(name: name, value: value, reason: "must be a whole number of seconds")
                }
                connectTimeout = .seconds(seconds)
            case _ where Self.knownParameters.contains(name): parameters[name] = value
            default: throw .unknownParameter(name)
            }
        }
        if let urlPassword {
            password = .url(urlPassword)
        } else if let passwordFile {
            password = .file(passwordFile)
        } else if let environmentPassword = (environment ?? ProcessInfo.processInfo.environment)["PGPASSWORD"] {
            password = .environment(environmentPassword)
        } else {
            password = .none
        }
    }

    private static func port(_ text: String) throws(PostgresSettingsError) -> Int {
        guard let port = Int(text), (1...65535).contains(port) else { throw .badPort(text) }
        return port
    }

    /// Percent-decodes one part of the URL.
    private static func decode(_ text: Substring, part: String) throws(PostgresSettingsError) -> String {
        guard let decoded = String(text).removingPercentEncoding else { throw .malformed("bad percent-encoding in the \(part)") }
        return decoded
    }

    /// The URL without the password, e.g. `postgresql://registry:***@db:5432/registry?sslmode=require`
    /// (`***` stands for a password written in the URL; a password from a file or the environment
    /// is named by its source after the URL).
    public var description: String {
        var text = "postgresql://"
        let passwordInURL: Bool
        if case .url = password { passwordInURL = true } else { passwordInURL = false }
        if user != nil || passwordInURL {
            text += user.map(Self.encode) ?? ""
            if passwordInURL { text += ":***" }
            text += "@"
        }
        text += ([Endpoint(host: host, port: port)] + fallbackHosts).map { endpoint in
            var text = endpoint.host.map { $0.contains(":") ? "[\($0)]" : Self.encode($0) } ?? ""
            if let port = endpoint.port { text += ":\(port)" }
            return text
        }.joined(separator: ",")
        if let database { text += "/" + Self.encode(database) }
        var query: [String] = []
        if let sslMode { query.append("sslmode=\(sslMode.rawValue)") }
        for (name, value) in parameters.sorted(by: { $0.key < $1.key }) { query.append("\(name)=\(Self.encode(value))") }
        if !query.isEmpty { text += "?" + query.joined(separator: "&") }
        switch password {
        case .none, .url: break
        case .file(let path): text += " (password from file \(path))"
        case .environment: text += " (password from PGPASSWORD)"
        }
        return text
    }

    private static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// The password to send, read from its file if it comes from one.
    func resolvedPassword() throws(PostgresError) -> String? {
        switch password {
        case .none: return nil
        case .url(let password), .environment(let password): return password
        case .file(let path):
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw PostgresError(kind: .connection, message: "cannot read the password file \(path): it \(Self.whyUnreadable(path))")
            }
            guard let contents = String(data: data, encoding: .utf8) else {
                throw PostgresError(kind: .connection, message: "cannot read the password file \(path): it is not UTF-8 text")
            }
            return contents.hasSuffix("\r\n") ? String(contents.dropLast(2)) : contents.hasSuffix("\n") ? String(contents.dropLast()) : contents
        }
    }

    /// Why a file could not be read, in words (Foundation's errors name only a code).
    private static func whyUnreadable(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "does not exist" }
        if isDirectory.boolValue { return "is a directory" }
        return FileManager.default.isReadableFile(atPath: path) ? "could not be read" : "is not readable by this process (permissions)"
    }

    /// The keyword/value pairs given to `PQconnectdbParams`.
    func connectionParameters() throws(PostgresError) -> [(String, String)] {
        var pairs: [(String, String)] = []
        let endpoints = [Endpoint(host: host, port: port)] + fallbackHosts
        if endpoints.contains(where: { $0.host != nil }) { pairs.append(("host", endpoints.map { $0.host ?? "" }.joined(separator: ","))) }
        if endpoints.contains(where: { $0.port != nil }) {
            pairs.append(("port", endpoints.map { $0.port.map(String.init) ?? "" }.joined(separator: ",")))
        }
        if let database { pairs.append(("dbname", database)) }
        if let user { pairs.append(("user", user)) }
        if let password = try resolvedPassword() { pairs.append(("password", password)) }
        if let sslMode { pairs.append(("sslmode", sslMode.rawValue)) }
        for (name, value) in parameters.sorted(by: { $0.key < $1.key }) { pairs.append((name, value)) }
        if parameters["application_name"] == nil { pairs.append(("application_name", "endpoint-registry")) }
        pairs.append(("connect_timeout", String(max(Self.milliseconds(connectTimeout) / 1000, 1))))
        let idle = idleInTransactionTimeout.map { Self.milliseconds($0) } ?? 0
        pairs.append(
            (
                "options",
                "-c statement_timeout=\(Self.milliseconds(statementTimeout)) -c idle_in_transaction_session_timeout=\(idle)"
                    + " -c bytea_output=hex -c TimeZone=UTC"
            ))
        let network = Self.milliseconds(networkTimeout)
        pairs.append(("tcp_user_timeout", String(network)))
        pairs.append(("keepalives", "1"))
        pairs.append(("keepalives_idle", String(max(network / 3000, 1))))
        pairs.append(("keepalives_interval", String(max(network / 6000, 1))))
        pairs.append(("keepalives_count", "3"))
        return pairs
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
