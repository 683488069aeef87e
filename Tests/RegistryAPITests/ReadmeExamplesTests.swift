import Foundation
import KubernetesClient
import RegistryAPI
import TestSupport
import Testing
import Yams

/// A fenced block of README.md and the marker comment on the line before it.
///
/// Markers:
/// - `<!-- readme-test: NAME [serve flags…] -->` before a `sh` block: run it (see
///   `ReadmeExamplesTests`); the flags are added to `endpoint-registry serve` for this block.
/// - `<!-- readme-skip: REASON -->` before a `sh` block: not run, for the reason given.
/// - `<!-- readme-file: PATH -->` before any block: the block shows the file PATH exactly.
struct ReadmeBlock {
    enum Marker: Equatable {
        case run(name: String, serveArguments: [String])
        case skip(reason: String)
        case file(path: String)
        case none
    }

    var marker: Marker
    var language: String
    var text: String
    /// 1-based line of the opening fence.
    var line: Int

    static func parse(_ readme: String) -> [ReadmeBlock] {
        let lines = readme.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var blocks: [ReadmeBlock] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            guard line.hasPrefix("```") else {
                index += 1
                continue
            }
            let language = String(line.dropFirst(3)).trimmingCharacters(in: .whitespaces)
            var body: [String] = []
            var end = index + 1
            while end < lines.count, !lines[end].hasPrefix("```") {
                body.append(lines[end])
                end += 1
            }
            let previous = lines[..<index].last { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? ""
            blocks.append(ReadmeBlock(marker: marker(previous), language: language, text: body.map { $0 + "\n" }.joined(), line: index + 1))
            index = end + 1
        }
        return blocks
    }

    private static func marker(_ line: String) -> Marker {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("<!-- readme-"), trimmed.hasSuffix("-->") else { return .none }
        let inner = trimmed.dropFirst("<!-- readme-".count).dropLast("-->".count).trimmingCharacters(in: .whitespaces)
        guard let colon = inner.firstIndex(of: ":") else { return .none }
        let kind = inner[..<colon]
        let value = inner[inner.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        switch kind {
        case "test":
            let words = value.split(separator: " ").map(String.init)
            return words.isEmpty ? .none : .run(name: words[0], serveArguments: Array(words.dropFirst()))
        case "skip": return value.isEmpty ? .none : .skip(reason: value)
        case "file": return value.isEmpty ? .none : .file(path: value)
        default: return .none
        }
    }
}

/// The top-level JSON values printed one after another (as several `curl` calls print them),
/// skipping anything between them that is not an object or an array.
func jsonValues(in text: String) -> [Any] {
    let bytes = Array(text.utf8)
    var values: [Any] = []
    var index = 0
    while index < bytes.count {
        guard bytes[index] == UInt8(ascii: "{") || bytes[index] == UInt8(ascii: "[") else {
            index += 1
            continue
        }
        var depth = 0
        var inString = false
        var escaped = false
        var end = index
        scan: while end < bytes.count {
            let byte = bytes[end]
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
            } else {
                switch byte {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { break scan }
                default: break
                }
            }
            end += 1
        }
        if end < bytes.count, let value = try? JSONSerialization.jsonObject(with: Data(bytes[index...end])) {
            values.append(value)
            index = end + 1
        } else {
            index += 1
        }
    }
    return values
}

/// Runs every shell example of README.md marked `<!-- readme-test: … -->`, in order, against
/// servers started here on ephemeral ports with fresh databases, and checks that each gives what
/// the README says. Every `sh` block must be marked either way, so that none is forgotten.
///
/// What the test changes in a block before running it with `bash` (`set -euo pipefail`), in a
/// temporary directory holding a copy of `examples/`:
/// - `127.0.0.1:8478` becomes the address of the block's server;
/// - `.build/release/endpoint-registry` becomes the binary built for the tests;
/// - `curl` gets `--fail-with-body --show-error`, so that an HTTP error fails the block, unless
///   the command prints the status itself (`-w '%{http_code}…'`), which the checks then read.
///
/// The cluster `prod` of `examples/kubeconfig.yaml` is the fake API server of
/// `Tests/FakeAPIServer`: the copy of the kubeconfig gets its address, and `prod-ca.crt` and
/// `prod-token` are the fake's CA and a token it accepts.
@Suite(.serialized) struct ReadmeExamplesTests {
    static let readme = Paths.root.appending(path: "README.md")

    @Test func everyShellBlockIsMarkedToRunOrSkippedWithAReason() throws {
        let blocks = ReadmeBlock.parse(try String(contentsOf: Self.readme, encoding: .utf8))
        let shell = blocks.filter { $0.language == "sh" }
        #expect(shell.count >= 10, "README.md should have its shell examples")
        for block in shell {
            switch block.marker {
            case .run, .skip: break
            case .file, .none:
                Issue.record(
                    "README.md line \(block.line): a sh block needs <!-- readme-test: NAME --> or <!-- readme-skip: REASON --> on the line before")
            }
        }
        let names = shell.compactMap { block -> String? in
            if case .run(let name, _) = block.marker { return name }
            return nil
        }
        #expect(Set(names).count == names.count, "block names must be unique: \(names)")
        #expect(Set(names) == Set(Self.checks.keys), "every block that runs has checks, and every check a block")
    }

    @Test func filesShownInTheReadmeAreTheShippedOnes() throws {
        let blocks = ReadmeBlock.parse(try String(contentsOf: Self.readme, encoding: .utf8))
        var shown: [String] = []
        for block in blocks {
            guard case .file(let path) = block.marker else { continue }
            shown.append(path)
            let file = try String(contentsOf: Paths.root.appending(path: path), encoding: .utf8)
            #expect(block.text == file, "README.md line \(block.line) differs from \(path)")
        }
        #expect(shown == ["examples/etcd.yaml", "examples/services.json", "examples/tokens.yaml"])
    }

    @Test func shellExamplesRunInOrderAndGiveWhatTheTextSays() throws {
        let blocks = ReadmeBlock.parse(try String(contentsOf: Self.readme, encoding: .utf8))
        let work = FileManager.default.temporaryDirectory.appending(path: "readme-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Paths.examples, to: work.appending(path: "examples"))

        // The cluster "prod" of examples/kubeconfig.yaml, played by the fake API server.
        let cluster = try FakeCluster()
        let kubeconfig = work.appending(path: "examples/kubeconfig.yaml")
        let original = try String(contentsOf: kubeconfig, encoding: .utf8)
        let exampleServer = "https://prod.k8s.example.com:6443"
        #expect(original.contains("server: \(exampleServer)"))
        try original.replacingOccurrences(of: exampleServer, with: cluster.server).write(to: kubeconfig, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: work.appending(path: "examples/prod-ca.crt"), ifExists: true)
        try FileManager.default.copyItem(at: cluster.directory.appending(path: "ca.crt"), to: work.appending(path: "examples/prod-ca.crt"))
        try "admin-token\n".write(to: work.appending(path: "examples/prod-token"), atomically: true, encoding: .utf8)

        var servers: [[String]: ServerProcess] = [:]
        func server(_ arguments: [String]) throws -> ServerProcess {
            if let running = servers[arguments] { return running }
            let started = try ServerProcess(["--kubeconfig", kubeconfig.path()] + arguments, currentDirectory: work)
            servers[arguments] = started
            return started
        }

        var ran: [String] = []
        for block in blocks where block.language == "sh" {
            guard case .run(let name, let arguments) = block.marker else { continue }
            let server = try server(arguments)
            let script = Self.rewrite(block.text, port: server.port)
            let result = try Self.bash(script, in: work)
            try #require(
                result.status == 0,
                "README.md line \(block.line) (\(name)) failed with exit status \(result.status)\n--- script\n\(script)--- stdout\n\(result.output)--- stderr\n\(result.errors)--- server log\n\(server.logText.suffix(2000))"
            )
            let check = try #require(Self.checks[name], "no checks for the README block \(name)")
            let client = try RawHTTPClient(port: server.port)
            try check(Context(output: result.output, directory: work, client: client, cluster: cluster))
            ran.append(name)
        }
        #expect(ran == Self.order, "README blocks ran in this order: \(ran)")
    }

    /// The blocks that run, in README order (the checks of a block rely on those before it).
    static let order = [
        "register-ceph", "register-etcd", "read-and-change", "manifests", "import", "render", "push", "cli", "watch", "tokens", "make-token",
        "leader",
    ]

    struct Context {
        var output: String
        var directory: URL
        var client: RawHTTPClient
        var cluster: FakeCluster

        var json: [[String: Any]] { jsonValues(in: output).compactMap { $0 as? [String: Any] } }

        func file(_ name: String) throws -> String { try String(contentsOf: directory.appending(path: name), encoding: .utf8) }

        func service(_ path: String) throws -> [String: Any] {
            let response = try client.request("GET", "/v1/services/\(path)")
            try #require(response.status == 200, "GET /v1/services/\(path): \(response.status)")
            return try #require(response.json)
        }
    }

    /// "ip:port" of each address of a registration.
    static func backends(_ service: [String: Any]) -> [String] {
        ((service["addresses"] as? [[String: Any]]) ?? []).map { "\($0["ip"] ?? "-"):\($0["port"] ?? "-")" }
    }

    /// (kind, name) of each object of a YAML stream or a JSON List.
    static func kindsAndNames(_ objects: [[String: Any]]) -> [String] {
        objects.map { "\($0["kind"] ?? "-")/\(($0["metadata"] as? [String: Any])?["name"] ?? "-")" }
    }

    static func yamlObjects(_ text: String) throws -> [[String: Any]] {
        try Array(Yams.load_all(yaml: text)).compactMap { $0 as? [String: Any] }
    }

    static let twelveGateways = (50...55).flatMap { host in [8080, 8081].map { "192.168.7.\(host):\($0)" } }

    /// What each block must give, by name.
    static let checks: [String: @Sendable (Context) throws -> Void] = [
        "register-ceph": { context in
            let created = try #require(context.json.first)
            #expect(created["revision"] as? Int == 1)
            #expect(backends(created) == twelveGateways)
            #expect(backends(try context.service("default/ocs-external-rgw-lb")) == twelveGateways)
        },
        "register-etcd": { context in
            let created = try #require(context.json.first)
            #expect(created["namespace"] as? String == "default" && created["name"] as? String == "etcd")
            #expect(((created["addresses"] as? [[String: Any]]) ?? []).map { $0["ip"] as? String } == ["10.20.30.40", "10.20.30.41", "10.20.30.42"])
            #expect(try context.service("default/etcd")["revision"] as? Int == 1)
        },
        "read-and-change": { context in
            #expect(context.output.lowercased().contains("\netag: \"1-"), "curl -si shows the ETag of revision 1")
            let listed = try #require(context.json.first { $0["items"] != nil })
            #expect(((listed["items"] as? [[String: Any]]) ?? []).map { $0["name"] as? String } == ["ocs-external-rgw-lb"])
            let service = try context.service("default/ocs-external-rgw-lb")
            #expect(backends(service) == twelveGateways, "the seventh host came and went")
            #expect(service["description"] as? String == "S3 gateways")
            #expect(service["revision"] as? Int == 4)
        },
        "manifests": { context in
            let one = try yamlObjects(try context.file("ocs-external-rgw-lb.yaml"))
            #expect(one.map { $0["kind"] as? String } == ["Service", "Endpoints", "EndpointSlice", "EndpointSlice"])
            let subsets = (one.first { $0["kind"] as? String == "Endpoints" }?["subsets"] as? [[String: Any]]) ?? []
            #expect(subsets.map { ($0["addresses"] as? [Any])?.count } == [6, 6])
            #expect(subsets.map { ($0["ports"] as? [[String: Any]])?.first?["port"] as? Int } == [8080, 8081])
            let all = try yamlObjects(try context.file("default.yaml"))
            #expect(
                kindsAndNames(all).map { $0.replacingOccurrences(of: #"-ipv4-[0-9a-f]+"#, with: "", options: .regularExpression) } == [
                    "Service/etcd", "Endpoints/etcd", "EndpointSlice/etcd", "Service/ocs-external-rgw-lb", "Endpoints/ocs-external-rgw-lb",
                    "EndpointSlice/ocs-external-rgw-lb", "EndpointSlice/ocs-external-rgw-lb",
                ])
            let list = try #require(context.json.first)
            #expect(list["kind"] as? String == "List")
            #expect(((list["items"] as? [[String: Any]]) ?? []).map { $0["kind"] as? String } == ["Service", "EndpointSlice"])
        },
        "import": { context in
            let answers = context.json
            try #require(answers.count == 3, "\(context.output)")
            func outcome(_ answer: [String: Any]) -> String {
                let service = (answer["services"] as? [[String: Any]])?.first ?? [:]
                return "\(service["namespace"] ?? "-")/\(service["name"] ?? "-"):\(service["action"] ?? "-")"
            }
            #expect(answers[0]["dryRun"] as? Bool == true && outcome(answers[0]) == "storage/ocs-external-rgw-lb:created")
            #expect(answers[1]["dryRun"] as? Bool == false && outcome(answers[1]) == "storage/ocs-external-rgw-lb:created")
            #expect(outcome(answers[2]) == "default/ocs-external-rgw-lb:skipped")
            let imported = try context.service("storage/ocs-external-rgw-lb")
            #expect(backends(imported) == twelveGateways)
            // Endpoints only, in a shape the ≥ 1.27 mirroring controller cannot mirror: `both`, with a warning.
            #expect(imported["endpointsMode"] as? String == "both")
            #expect(
                ((answers[1]["warnings"] as? [[String: Any]]) ?? []).contains { ($0["message"] as? String)?.contains("both") == true },
                "\(answers[1])")
            #expect(imported["labels"] as? [String: String] == ["app": "ceph-rgw"])
            #expect(try context.service("default/ocs-external-rgw-lb")["revision"] as? Int == 4, "skip leaves default alone")
        },
        "render": { context in
            let etcd = try yamlObjects(try context.file("etcd-manifests.yaml"))
            #expect(etcd.map { $0["kind"] as? String } == ["Service", "Endpoints", "EndpointSlice"])
            #expect(Set(etcd.map { ($0["metadata"] as? [String: Any])?["namespace"] as? String }) == ["default"])
            let list = try #require(context.json.first)
            #expect(list["kind"] as? String == "List")
            let items = (list["items"] as? [[String: Any]]) ?? []
            let services = items.map { item -> String in
                let metadata = item["metadata"] as? [String: Any]
                let service = (metadata?["labels"] as? [String: String])?["kubernetes.io/service-name"] ?? metadata?["name"] as? String ?? "-"
                return "\(item["kind"] ?? "-")/\(service)"
            }
            #expect(
                services == ["Service/postgres", "EndpointSlice/postgres", "EndpointSlice/postgres", "EndpointSlice/postgres", "Service/warehouse"])
            #expect((items.last?["spec"] as? [String: Any])?["type"] as? String == "ExternalName")
        },
        "push": { context in
            let answers = context.json
            try #require(answers.count >= 8, "\(context.output)")
            let clusters = (answers[0]["items"] as? [[String: Any]]) ?? []
            let prod = try #require(clusters.first { $0["name"] as? String == "prod" }, "\(clusters)")
            #expect(prod["usable"] as? Bool == true && prod["reachable"] as? Bool == true && prod["auth"] as? String == "tokenFile")
            func actions(_ answer: [String: Any]) -> [String] {
                let objects = ((answer["clusters"] as? [[String: Any]])?.first?["objects"] as? [[String: Any]]) ?? []
                return objects.map { "\($0["kind"] ?? "-"):\($0["action"] ?? "-")" }
            }
            #expect(answers[1]["dryRun"] as? Bool == true && answers[1]["status"] as? String == "success")
            #expect(actions(answers[1]) == ["Service:created", "Endpoints:created", "EndpointSlice:created", "EndpointSlice:created"])
            #expect(answers[2]["revision"] as? Int == 5 && answers[2]["clusters"] as? [String] == ["prod"], "\(answers[2])")
            #expect(answers[3]["dryRun"] as? Bool == false && answers[3]["status"] as? String == "success", "\(answers[3])")
            let status = (answers[4]["items"] as? [[String: Any]]) ?? []
            #expect(status.first?["cluster"] as? String == "prod" && status.first?["revision"] as? Int == 5, "\(status)")
            #expect(status.first?["state"] as? String == "synced" && status.first?["outOfDate"] as? Bool == false, "\(status)")
            #expect(answers[5]["inSync"] as? Bool == true, "\(answers[5])")
            #expect(answers[6]["services"] as? Int == 1 && answers[6]["failed"] as? Int == 0, "\(answers[6])")
            #expect(answers[7]["cluster"] as? String == "prod", "\(answers[7])")
            // What is left on the cluster: the storage gateways only (pushed once, in mode `both`).
            let objects = try context.cluster.objects()
            let left = objects.map {
                "\(($0["metadata"] as? [String: Any])?["namespace"] ?? "-")/\($0["kind"] ?? "-")/\(($0["metadata"] as? [String: Any])?["name"] ?? "-")"
            }
            #expect(left.allSatisfy { $0.hasPrefix("storage/") }, "\(left)")
            #expect(left.contains("storage/Endpoints/ocs-external-rgw-lb") && left.contains("storage/Service/ocs-external-rgw-lb"), "\(left)")
            #expect(left.contains { $0.hasPrefix("storage/EndpointSlice/") }, "\(left)")
            #expect(try context.client.request("GET", "/v1/services/default/ocs-external-rgw-lb").status == 404)
        },
        "cli": { context in
            let lines = context.output.split(separator: "\n").map(String.init)
            #expect(
                Array(lines.prefix(6)) == [
                    "service/etcd configured", "service/postgres created", "service/warehouse created",
                    "service/etcd unchanged (server dry run)", "service/postgres unchanged (server dry run)",
                    "service/warehouse unchanged (server dry run)",
                ])
            let table = lines.dropFirst(6).prefix { !$0.hasPrefix("service/") }.map {
                $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            }
            #expect(table.first == ["NAMESPACE", "NAME", "TYPE", "PORTS", "ADDRESSES", "CLUSTERS", "AGE"])
            #expect(
                table.dropFirst().map { Array($0.prefix(6)) } == [
                    ["data", "postgres", "Headless", "5432/TCP,9187/TCP", "2/3", "<none>"],
                    ["data", "warehouse", "ExternalName", "5432/TCP", "<none>", "<none>"],
                    ["default", "etcd", "ClusterIP", "2379/TCP", "3/3", "<none>"],
                    ["storage", "ocs-external-rgw-lb", "ClusterIP", "80/TCP", "12/12", "1/1"],
                ])
            #expect(lines.last == "service/etcd unchanged")
            let saved = try context.file("etcd.yaml")
            #expect(saved.contains("hostname: etcd-0") && saved.contains("revision: 2"))
            let etcd = try context.service("default/etcd")
            #expect(etcd["description"] as? String == "the etcd cluster behind the control plane")
        },
        "watch": { context in
            // The patch made after the list, replayed from the list's version; a bookmark at the timeout.
            #expect(context.output.split(separator: "\n") == [#""type":"MODIFIED""#, #""type":"BOOKMARK""#])
            let events = try context.file("events.ndjson")
            #expect(events.contains(#""name":"etcd""#) && events.contains(#""description":"watched""#))
            #expect(try context.service("default/etcd")["description"] as? String == "watched")
        },
        "tokens": { context in
            let created = try #require(context.json.first)
            #expect(created["namespace"] as? String == "storage" && created["name"] as? String == "minio")
            // `-w '%{http_code}\n'` ends a line, which may start with the JSON printed before it.
            let statuses = context.output.split(separator: "\n").compactMap { line -> String? in
                let tail = line.suffix(3)
                guard tail.count == 3, Int(tail) != nil, line.count == 3 || line.dropLast(3).last == "}" else { return nil }
                return String(tail)
            }
            #expect(statuses == ["403", "401"])
            let listed = try #require(context.json.first { $0["items"] != nil })
            #expect(((listed["items"] as? [[String: Any]]) ?? []).map { $0["name"] as? String } == ["minio"])
            #expect(context.json.last?["status"] as? String == "ok")
            let etcd = try context.client.request(
                "GET", "/v1/services/default/etcd", headers: ["Authorization": "Bearer example-admin-token-not-secret"])
            #expect(etcd.status == 404, "this server's database is its own: nothing but minio")
        },
        "make-token": { context in
            let line = context.output.trimmingCharacters(in: .newlines)
            #expect(line.wholeMatch(of: #/[0-9a-f]{64}  -/#) != nil, "\(line)")
        },
        "leader": { context in
            // SQLite: this process leads at once, in generation 1, under its default identity.
            let leader = try #require(context.json.first)
            #expect(leader["generation"] as? Int == 1 && leader["held"] as? Bool == true && leader["self"] as? Bool == true)
            #expect((leader["holder"] as? String)?.isEmpty == false)
            #expect(leader["since"] as? String != nil)
        },
    ]

    /// The block as the test runs it (see the type's documentation).
    static func rewrite(_ block: String, port: UInt16) -> String {
        let binary = "'" + Paths.binary.path() + "'"
        let lines = block.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var line = line.replacingOccurrences(of: "127.0.0.1:8478", with: "127.0.0.1:\(port)")
                .replacingOccurrences(of: ".build/release/endpoint-registry", with: binary)
            if line.hasPrefix("curl "), !line.contains("%{http_code}") {
                line = "curl --fail-with-body --show-error " + line.dropFirst("curl ".count)
            }
            return line
        }
        return "set -euo pipefail\n" + lines.joined(separator: "\n")
    }

    /// Runs `script` with bash in `directory`, at most 120 seconds.
    static func bash(_ script: String, in directory: URL) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = directory
        let output = directory.appending(path: ".stdout")
        let errors = directory.appending(path: ".stderr")
        try Data().write(to: output)
        try Data().write(to: errors)
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: errors)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            return (
                -1, try String(contentsOf: output, encoding: .utf8), "timed out after 120 s\n" + (try String(contentsOf: errors, encoding: .utf8))
            )
        }
        return (process.terminationStatus, try String(contentsOf: output, encoding: .utf8), try String(contentsOf: errors, encoding: .utf8))
    }
}

extension FileManager {
    fileprivate func removeItem(at url: URL, ifExists: Bool) throws {
        if ifExists, !fileExists(atPath: url.path()) { return }
        try removeItem(at: url)
    }
}

/// The files of `examples/` that the README example run does not cover by itself.
@Suite struct ExampleFilesTests {
    @Test func theTokensFileAuthenticatesEachDocumentedToken() throws {
        let authenticator = try TokenAuthenticator(path: Paths.examples.appending(path: "tokens.yaml").path())
        #expect(authenticator.count == 4)
        for (token, name, role) in [
            ("example-storage-team-token-not-secret", "storage-team", Role.editor), ("example-ci-token-not-secret", "ci", .viewer),
            ("example-deployer-token-not-secret", "deployer", .pusher), ("example-admin-token-not-secret", "platform-admin", .admin),
        ] {
            let principal = try #require(authenticator.principal(forToken: token), "\(token)")
            #expect(principal.name == name && principal.role == role)
        }
        #expect(authenticator.principal(forToken: "example-admin-token-not-secre") == nil)
    }

    @Test func theKubeconfigNamesProdWithATokenFileAndSaysWhatIsMissing() throws {
        // A copy, so that a prod-ca.crt a developer put beside the example does not count.
        let directory = FileManager.default.temporaryDirectory.appending(path: "kubeconfig-example-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let copy = directory.appending(path: "kubeconfig.yaml")
        try FileManager.default.copyItem(at: Paths.examples.appending(path: "kubeconfig.yaml"), to: copy)
        let targets = try KubeConfigLoader.load(paths: [copy.path()])
        #expect(targets.map(\.name) == ["prod"])
        let prod = try #require(targets.first)
        #expect(prod.server == "https://prod.k8s.example.com:6443")
        #expect(prod.unusableReason?.contains("prod-ca.crt") == true, "\(prod.unusableReason ?? "usable")")
    }

    @Test func theImportExampleMeansTheSameGatewaysAsTheSeedManifest() throws {
        let server = try TestServer()
        let client = try server.client()
        for (file, namespace) in [
            (Paths.examples.appending(path: "ceph-rgw-endpoints.yaml"), "example"),
            (Paths.fixtures.appending(path: "seed-001-ceph-rgw.yaml"), "seed"),
        ] {
            let response = try client.request(
                "POST", "/v1/import?namespace=\(namespace)", headers: ["Content-Type": "application/yaml"],
                body: Array(try String(contentsOf: file, encoding: .utf8).utf8))
            #expect(response.status == 200, "\(response.text)")
        }
        let example = try #require(try client.request("GET", "/v1/services/example/ocs-external-rgw-lb").json)
        let seed = try #require(try client.request("GET", "/v1/services/seed/ocs-external-rgw-lb").json)
        #expect(ReadmeExamplesTests.backends(example) == ReadmeExamplesTests.twelveGateways)
        #expect(ReadmeExamplesTests.backends(seed) == ReadmeExamplesTests.backends(example))
    }
}

/// A clone with nothing beside it passes its tests: no test, script or build file names a path
/// outside the repository (the seed fixtures live in `Tests/Fixtures/`).
@Suite struct SelfContainedRepositoryTests {
    @Test func nothingReadsBesideTheCheckout() throws {
        // Built from pieces so that this file does not match itself.
        let outside = try Regex("(\\.\\./|/work/)" + "shared\\b|\\bshared/(fixtures|reference|seeds|bench|hooks)|\"" + "shared[\"/]")
        var checked = 0
        var offenders: [String] = []
        for folder in ["Sources", "Tests", "scripts", "Plugins", ".ci"] {
            let root = Paths.root.appending(path: folder)
            guard let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { continue }
            for case let file as URL in files {
                guard let text = try? String(contentsOf: file, encoding: .utf8) else { continue }  // folders and binary files
                checked += 1
                if text.contains(outside) { offenders.append(file.path()) }
            }
        }
        for file in ["Package.swift", "Makefile", "Dockerfile"] {
            let text = try String(contentsOf: Paths.root.appending(path: file), encoding: .utf8)
            checked += 1
            if text.contains(outside) { offenders.append(file) }
        }
        #expect(checked > 50, "the repository's files were read")
        #expect(offenders.isEmpty, "files that read beside the checkout: \(offenders)")
    }
}
