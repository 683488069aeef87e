import ArgumentParser
import Foundation
import RegistryClient
import RegistryCore

/// Output formats of the commands that show a server answer.
enum AnswerFormat: String, ExpressibleByArgument, CaseIterable {
    case table, yaml, json
}

/// Prints a JSON answer as YAML or JSON, or calls `table` for the table form.
private func show(_ value: JSONValue, _ format: AnswerFormat, table: () -> String) {
    switch format {
    case .yaml: Console.out(Output.yaml([value]))
    case .json: Console.out(Output.json(value))
    case .table: Console.out(table())
    }
}

/// `push NAME [--cluster C]… [--dry-run] [--adopt]`.
struct Push: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Push a service's objects to clusters (all usable clusters by default).")

    @Argument(help: "The service (NAME or service/NAME).")
    var name: String
    @Option(name: .shortAndLong, help: "Namespace (default \"default\").")
    var namespace: String?
    @Option(name: .customLong("cluster"), help: "A cluster from `clusters`; repeatable.")
    var clusters: [String] = []
    @Flag(help: "Let the clusters validate the objects without changing them.")
    var dryRun = false
    @Flag(help: "Take over objects of the same name that another owner created.")
    var adopt = false
    @Option(name: .shortAndLong, help: "table, yaml or json.")
    var output: AnswerFormat = .table
    @OptionGroup var client: ClientOptions

    func run() throws {
        let name = try ResourceWord.names([name], required: false).first ?? name
        let client = try client.client()
        var body = JSONObject()
        if !clusters.isEmpty { body["clusters"] = .array(clusters.map(JSONValue.string)) }
        if dryRun { body["dryRun"] = .bool(true) }
        if adopt { body["adopt"] = .bool(true) }
        try runClient {
            let answer = try client.sendJSON("POST", RegistryClient.servicePath(namespace ?? "default", name) + "/push", .object(body))
            let result = try answer.json()
            show(result, output) {
                var rows: [[String]] = []
                for cluster in result["clusters"]?.arrayValue ?? [] {
                    let objects = cluster["objects"]?.arrayValue ?? []
                    for object in objects {
                        rows.append([
                            cluster["cluster"]?.stringValue ?? "", "\(object["kind"]?.stringValue ?? "")/\(object["name"]?.stringValue ?? "")",
                            object["action"]?.stringValue ?? "", object["error"]?["detail"]?.stringValue ?? "",
                        ])
                    }
                    if objects.isEmpty {
                        rows.append([
                            cluster["cluster"]?.stringValue ?? "", "", cluster["status"]?.stringValue ?? "", cluster["error"]?.stringValue ?? "",
                        ])
                    }
                }
                return Output.table(["CLUSTER", "OBJECT", "ACTION", "ERROR"], rows)
            }
            return result["status"]?.stringValue == "success" || answer.status < 300 && result["status"]?.stringValue == nil
                ? ClientExit.success : ClientExit.failed
        }
    }
}

/// `status NAME`.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the last push of a service to each cluster, and whether it is out of date.")

    @Argument(help: "The service (NAME or service/NAME).")
    var name: String
    @Option(name: .shortAndLong, help: "Namespace (default \"default\").")
    var namespace: String?
    @Option(name: .shortAndLong, help: "table, yaml or json.")
    var output: AnswerFormat = .table
    @OptionGroup var client: ClientOptions

    func run() throws {
        let name = try ResourceWord.names([name], required: false).first ?? name
        let client = try client.client()
        try runClient {
            let result = try client.send("GET", RegistryClient.servicePath(namespace ?? "default", name) + "/status").json()
            show(result, output) {
                let rows = (result["items"]?.arrayValue ?? []).map { item in
                    [
                        item["cluster"]?.stringValue ?? "", item["revision"]?.intValue.map(String.init) ?? "", item["outcome"]?.stringValue ?? "",
                        item["outOfDate"]?.boolValue == true ? "yes" : "no", item["time"]?.stringValue ?? "",
                    ]
                }
                let revision = result["revision"]?.intValue.map(String.init) ?? "?"
                guard !rows.isEmpty else { return "service/\(name) (revision \(revision)) was never pushed\n" }
                return Output.table(["CLUSTER", "REVISION", "OUTCOME", "OUT-OF-DATE", "TIME"], rows)
            }
            return ClientExit.success
        }
    }
}

/// `history NAME [--chunk-size N]`.
struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every revision of a service, with who changed what.",
        discussion: """
            Reads the revisions page by page (--chunk-size per request, following the server's \
            continue tokens as kubectl's chunked lists do) and prints them all, oldest first.
            """)

    @Argument(help: "The service (NAME or service/NAME).")
    var name: String
    @Option(name: .shortAndLong, help: "Namespace (default \"default\").")
    var namespace: String?
    @Option(name: .shortAndLong, help: "table, yaml or json.")
    var output: AnswerFormat = .table
    @Option(help: ArgumentHelp("Revisions per request (1 to 1000).", valueName: "count"))
    var chunkSize = 500
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard (1...1000).contains(chunkSize) else { throw ValidationError("--chunk-size must be from 1 to 1000") }
    }

    func run() throws {
        let name = try ResourceWord.names([name], required: false).first ?? name
        let client = try client.client()
        try runClient {
            let items = try client.listAllPages(RegistryClient.servicePath(namespace ?? "default", name) + "/history", limit: chunkSize)
            let result = JSONValue.object(JSONObject([("items", .array(items))]))
            show(result, output) {
                let rows = items.map { item in
                    [
                        item["revision"]?.intValue.map(String.init) ?? "", item["change"]?.stringValue ?? "", item["actor"]?.stringValue ?? "",
                        item["time"]?.stringValue ?? "", item["action"]?.stringValue ?? "",
                    ]
                }
                return Output.table(["REVISION", "CHANGE", "ACTOR", "TIME", "OPERATION"], rows)
            }
            return ClientExit.success
        }
    }
}

/// `manifests [NAME] [-o yaml|json]`.
struct Manifests: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the Kubernetes manifests of a service (or, without a name, of every service of the namespace or selector).",
        discussion: "Example: endpoint-registry manifests etcd | kubectl apply -f -")

    @Argument(help: "The service (NAME or service/NAME); without it, every service of -n/-A and -l.")
    var name: String?
    @Option(name: .shortAndLong, help: "Namespace (default \"default\").")
    var namespace: String?
    @Flag(name: [.customShort("A"), .customLong("all-namespaces")], help: "Every namespace the token may read (without a name).")
    var allNamespaces = false
    @Option(name: [.customShort("l"), .long], help: "Label selector (without a name).")
    var selector: String?
    @Option(name: .shortAndLong, help: "yaml or json (a v1 List).")
    var output: ManifestOutput = .yaml
    @Option(help: "Override the endpoint objects: endpoints, endpointslices or both.")
    var endpoints: String?
    @OptionGroup var client: ClientOptions

    func run() throws {
        let client = try client.client()
        var query: [(String, String)] = [("format", output.rawValue)]
        if let endpoints { query.append(("endpoints", endpoints)) }
        try runClient {
            let path: String
            if let name {
                let name = try ResourceWord.names([name], required: false).first ?? name
                path = RegistryClient.servicePath(namespace ?? "default", name) + "/manifests"
            } else {
                path = "/v1/manifests"
                if !allNamespaces { query.append(("namespace", namespace ?? "default")) }
                if let selector { query.append(("labelSelector", selector)) }
            }
            let answer = try client.send("GET", path, query: query, headers: [("Accept", output.format.mediaType)])
            FileHandle.standardOutput.write(Data(answer.body))
            return ClientExit.success
        }
    }
}

/// `-o` of `manifests`.
enum ManifestOutput: String, ExpressibleByArgument, CaseIterable {
    case yaml, json

    var format: ManifestFormat { self == .yaml ? .yaml : .json }
}

/// `import -f FILE`.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Register services from Kubernetes manifests (Services without selector with their Endpoints/EndpointSlices, ExternalName Services).",
        discussion: """
            What the import leaves out (valid in Kubernetes, but not held by a registration) and \
            the choices it made are printed on standard error, one `Warning: FIELD: MESSAGE` line \
            each; --strict refuses such an import instead (exit status 2, one line per field).
            """)

    @Option(name: [.customShort("f"), .customLong("filename")], help: "A YAML or JSON manifest file, or -.", completion: .file())
    var file: String
    @Option(name: .shortAndLong, help: "Namespace of objects that name none (default \"default\").")
    var namespace: String?
    @Option(help: "fail (default), skip or replace: what to do with services that exist with other content.")
    var onConflict: String?
    @Option(help: "none, or server: report what would be registered, write nothing.")
    var dryRun: DryRunMode = .none
    @Flag(help: "Refuse the import (import nothing) if it would leave out anything valid in Kubernetes that a registration cannot hold.")
    var strict = false
    @Option(name: .shortAndLong, help: "table, yaml or json.")
    var output: AnswerFormat = .table
    @OptionGroup var client: ClientOptions

    func run() throws {
        let text: String
        do {
            text = try RegistrationFiles.read(file)
        } catch {
            Console.error("error: \(error)")
            throw ExitCode(ClientExit.failed)
        }
        let client = try client.client()
        var query: [(String, String)] = []
        if let namespace { query.append(("namespace", namespace)) }
        if let onConflict { query.append(("onConflict", onConflict)) }
        if dryRun == .server { query.append(("dryRun", "true")) }
        if strict { query.append(("strict", "true")) }
        let suffix = dryRun == .server ? " (server dry run)" : ""
        try runClient {
            // Each warning (what is left out, choices made) comes as a `Warning` header too:
            // printed on standard error by the client's warning handler.
            let result = try client.send(
                "POST", "/v1/import", query: query, headers: [("Content-Type", "application/yaml")], body: Array(text.utf8)
            ).json()
            show(result, output) {
                var lines = (result["services"]?.arrayValue ?? []).map { item in
                    "service/\(item["name"]?.stringValue ?? "") \(item["action"]?.stringValue ?? "")\(suffix) (namespace \(item["namespace"]?.stringValue ?? ""))\n"
                }
                lines += (result["refused"]?.arrayValue ?? []).map { item in
                    "refused: \(item["document"]?.stringValue ?? "") \(item["kind"]?.stringValue ?? "") \(item["name"]?.stringValue ?? ""): \(item["reason"]?.stringValue ?? "")\n"
                }
                return lines.joined()
            }
            return ClientExit.success
        }
    }
}

/// `clusters [--probe]`.
struct Clusters: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the clusters the server pushes to.")

    @Flag(help: "Ask each usable cluster for its version.")
    var probe = false
    @Option(name: .shortAndLong, help: "table, yaml or json.")
    var output: AnswerFormat = .table
    @OptionGroup var client: ClientOptions

    func run() throws {
        let client = try client.client()
        try runClient {
            let result = try client.send("GET", "/v1/clusters", query: probe ? [("probe", "true")] : []).json()
            show(result, output) {
                let rows = (result["items"]?.arrayValue ?? []).map { item in
                    var row = [
                        item["name"]?.stringValue ?? "", item["server"]?.stringValue ?? "", item["auth"]?.stringValue ?? "",
                        item["usable"]?.boolValue == true ? "yes" : "no: \(item["reason"]?.stringValue ?? "")",
                    ]
                    if probe {
                        row.append(item["version"]?.stringValue ?? item["error"]?.stringValue ?? "")
                    }
                    return row
                }
                guard !rows.isEmpty else { return "No clusters configured (see --kubeconfig of serve)\n" }
                return Output.table(["NAME", "SERVER", "AUTH", "USABLE"] + (probe ? ["VERSION"] : []), rows)
            }
            return ClientExit.success
        }
    }
}
