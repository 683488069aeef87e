import ArgumentParser
import Foundation
import KubernetesClient
import RegistryClient
import RegistryCore

/// Options every client command takes: where the server is and how to authenticate.
///
/// The token is never an argument (it would show in `ps` and shell history): it comes from
/// `--token-file`, `ENDPOINT_REGISTRY_TOKEN_FILE` or `ENDPOINT_REGISTRY_TOKEN`.
struct ClientOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The registry's base URL (env ENDPOINT_REGISTRY_URL; default \(ClientOptions.defaultServer)).", valueName: "url"))
    var server: String?

    @Option(
        help: ArgumentHelp(
            "File holding the bearer token (env ENDPOINT_REGISTRY_TOKEN_FILE, or the token itself in ENDPOINT_REGISTRY_TOKEN).",
            valueName: "path"), completion: .file())
    var tokenFile: String?

    @Option(help: ArgumentHelp("PEM file of the CA that signed an HTTPS server's certificate.", valueName: "path"), completion: .file())
    var certificateAuthority: String?

    @Flag(help: "Do not verify an HTTPS server's certificate (insecure).")
    var insecureSkipTLSVerify = false

    @Option(help: ArgumentHelp("Seconds to wait for each request.", valueName: "seconds"))
    var requestTimeout: Int = 30

    static let defaultServer = "http://127.0.0.1:8478"
    /// Retries of a request answered 429 or 5xx with `Retry-After` (client-go's default).
    static let maxRetries = 10

    func validate() throws {
        guard requestTimeout > 0 else { throw ValidationError("--request-timeout must be a positive number of seconds") }
    }

    /// A client from the options and the environment.
    func client(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> RegistryClient {
        let server = self.server ?? environment["ENDPOINT_REGISTRY_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? ClientOptions.defaultServer
        guard server.hasPrefix("http://") || server.hasPrefix("https://") else {
            throw ValidationError("--server must be an http:// or https:// URL, not \"\(server)\"")
        }
        var token: String? = nil
        if let path = tokenFile ?? environment["ENDPOINT_REGISTRY_TOKEN_FILE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw ValidationError("cannot read the token file \(path)")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard token?.isEmpty == false else { throw ValidationError("the token file \(path) is empty") }
        } else if let value = environment["ENDPOINT_REGISTRY_TOKEN"], !value.isEmpty {
            token = value.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var tls = TLSSettings()
        tls.insecureSkipVerify = insecureSkipTLSVerify
        if let path = certificateAuthority {
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read the CA file \(path)") }
            tls.certificateAuthorityPEM = Array(data)
        }
        // Every answer's warnings on standard error, as kubectl prints the API server's; a busy
        // server's 429 or 503 with Retry-After is tried again up to 10 times, as client-go does.
        return RegistryClient(
            settings: ClientSettings(
                server: server, token: token, tls: tls, timeout: .seconds(requestTimeout), warningHandler: { Console.error("Warning: \($0)") },
                maxRetries: ClientOptions.maxRetries, retryNotice: { Console.error("retrying: \($0)") }))
    }
}

/// Exit statuses of the client commands (also listed in README.md, "Command-line client").
enum ClientExit {
    /// Success; for `diff`, no differences.
    static let success: Int32 = 0
    /// `diff` only: there are differences (as diff(1) and `kubectl diff`).
    static let differences: Int32 = 1
    /// Something failed: the server refused or failed a request or an item (4xx/5xx, e.g. not
    /// found, invalid, conflict), or an input file is invalid.
    static let failed: Int32 = 2
    /// The server could not be reached (connection, TLS, timeout) or gave an answer that is not the API's.
    static let unreachable: Int32 = 3
    /// Not authenticated (401) or not allowed (403).
    static let denied: Int32 = 4

    /// The status for an error of a request.
    static func status(for error: ClientError) -> Int32 {
        switch error {
        case .transport, .invalidResponse: unreachable
        case .problem(let problem): [401, 403].contains(problem.status) ? denied : failed
        }
    }

    /// The worst of two statuses (differences < failed < unreachable < denied).
    static func worst(_ left: Int32, _ right: Int32) -> Int32 { max(left, right) }
}

/// Writing to standard error.
enum Console {
    static func error(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Reports a failed request: `error: PREFIX: LINE` per problem. Returns the exit status.
    @discardableResult
    static func report(_ error: any Error, prefix: String? = nil) -> Int32 {
        let lead = "error: " + (prefix.map { $0 + ": " } ?? "")
        guard let error = error as? ClientError else {
            Console.error(lead + "\(error)")
            return ClientExit.failed
        }
        switch error {
        case .problem(let problem):
            for line in problem.lines { Console.error(lead + line + " (\(problem.statusText))") }
        default:
            Console.error(lead + error.description)
        }
        return ClientExit.status(for: error)
    }
}

/// Runs a command body, mapping request errors to the documented exit statuses.
func runClient(_ body: () throws -> Int32) throws {
    let status: Int32
    do {
        status = try body()
    } catch let error as ClientError {
        status = Console.report(error)
    }
    if status != 0 { throw ExitCode(status) }
}

/// The resource words accepted before names (`get services`, `delete svc x`), as kubectl.
enum ResourceWord {
    static let all: Set<String> = ["service", "services", "svc", "services.registry"]

    /// Splits off a leading resource word; `required` makes its absence an error.
    static func names(_ arguments: [String], required: Bool) throws -> [String] {
        guard let first = arguments.first else {
            if required { throw ValidationError("name the resource type: services") }
            return []
        }
        if all.contains(first.lowercased()) { return Array(arguments.dropFirst()) }
        if first.contains("/") {
            // service/NAME forms, as kubectl accepts.
            return try arguments.map { argument in
                let parts = argument.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2, all.contains(parts[0].lowercased()) else {
                    throw ValidationError("\(argument): the registry only has services (service/NAME)")
                }
                return parts[1]
            }
        }
        if required { throw ValidationError("unknown resource type \"\(first)\": the registry has services (service, services, svc)") }
        return arguments
    }
}

/// Helpers on the API's JSON documents.
extension JSONValue {
    subscript(_ key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var arrayValue: [JSONValue] {
        if case .array(let items) = self { return items }
        return []
    }

    var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }
}
