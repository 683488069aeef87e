import ArgumentParser
import Foundation
import RegistryClient
import RegistryCore

/// Output formats of `get`.
enum GetFormat: String, ExpressibleByArgument, CaseIterable {
    case table, wide, yaml, json, name
}

/// `get services [NAME…] [-n NS | -A] [-l SELECTOR] [-o FORMAT]`.
struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show registered services.",
        discussion: """
            Without names, lists the services of the namespace (-n, default "default"), or of every \
            namespace the token may read (-A), optionally filtered by a label selector. The table \
            shows the ports, the ready/total addresses, the clusters whose last push is up to date \
            (in sync/pushed) and the age. -o yaml gives documents that apply accepts unchanged.
            Examples:
              endpoint-registry get services -A
              endpoint-registry get service etcd -o yaml > etcd.yaml
            """)

    @Argument(help: "services (or service, svc), then optional names; or service/NAME.")
    var arguments: [String] = []
    @Option(name: .shortAndLong, help: "Namespace (default \"default\").")
    var namespace: String?
    @Flag(name: [.customShort("A"), .customLong("all-namespaces")], help: "Every namespace the token may read.")
    var allNamespaces = false
    @Option(name: [.customShort("l"), .long], help: "Label selector (e.g. app=etcd,tier!=db).")
    var selector: String?
    @Option(name: .shortAndLong, help: "table, wide, yaml, json or name.")
    var output: GetFormat = .table
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if allNamespaces && namespace != nil { throw ValidationError("-n and -A exclude each other") }
    }

    func run() throws {
        let names = try ResourceWord.names(arguments, required: true)
        if !names.isEmpty && (allNamespaces || selector != nil) {
            throw ValidationError("names cannot be combined with -A or -l")
        }
        let client = try client.client()
        try runClient {
            var status = ClientExit.success
            var items: [JSONValue] = []
            if names.isEmpty {
                items = try client.listServices(namespace: allNamespaces ? nil : (namespace ?? "default"), labelSelector: selector)
            } else {
                for name in names {
                    do {
                        items.append(try client.send("GET", RegistryClient.servicePath(namespace ?? "default", name)).json())
                    } catch {
                        status = ClientExit.worst(status, Console.report(error))
                    }
                }
            }
            Console.out(try render(items, single: names.count == 1, client: client))
            if names.isEmpty && items.isEmpty && (output == .table || output == .wide) {
                Console.error(allNamespaces ? "No resources found" : "No resources found in \(namespace ?? "default") namespace.")
            }
            return status
        }
    }

    private func render(_ items: [JSONValue], single: Bool, client: RegistryClient) throws -> String {
        switch output {
        case .yaml:
            return items.isEmpty ? "" : Output.yaml(items)
        case .json:
            if single, let item = items.first { return Output.json(item) }
            return Output.json(.object(JSONObject([("items", .array(items))])))
        case .name:
            return items.map { "service/\($0["name"]?.stringValue ?? "")\n" }.joined()
        case .table, .wide:
            guard !items.isEmpty else { return "" }
            var header = ["NAME", "TYPE", "PORTS", "ADDRESSES", "CLUSTERS", "AGE"]
            if allNamespaces { header.insert("NAMESPACE", at: 0) }
            if output == .wide { header += ["ENDPOINTS-MODE", "EXTERNAL-NAME", "LABELS"] }
            var rows: [[String]] = []
            for item in items {
                var row = [
                    item["name"]?.stringValue ?? "", item["type"]?.stringValue ?? "", Self.ports(item), Self.addresses(item),
                    try Self.clusters(item, client: client), Output.age(since: item["createdAt"]?.stringValue ?? ""),
                ]
                if allNamespaces { row.insert(item["namespace"]?.stringValue ?? "", at: 0) }
                if output == .wide {
                    let labels =
                        (item["labels"].map { value -> [String] in
                            guard case .object(let object) = value else { return [] }
                            return object.members.map { "\($0.key)=\($0.value.stringValue ?? "")" }
                        }) ?? []
                    row += [
                        item["endpointsMode"]?.stringValue ?? "", item["externalName"]?.stringValue ?? "<none>",
                        labels.isEmpty ? "<none>" : labels.joined(separator: ","),
                    ]
                }
                rows.append(row)
            }
            return Output.table(header, rows)
        }
    }

    /// `80/TCP,2379/TCP`, as kubectl's PORT(S) column.
    static func ports(_ item: JSONValue) -> String {
        let ports = (item["ports"]?.arrayValue ?? []).map { port in
            "\(port["port"]?.intValue.map(String.init) ?? "?")/\(port["protocol"]?.stringValue ?? "TCP")"
        }
        return ports.isEmpty ? "<none>" : ports.joined(separator: ",")
    }

    /// Ready/total addresses; `<none>` for an ExternalName service.
    static func addresses(_ item: JSONValue) -> String {
        if item["type"]?.stringValue == "ExternalName" { return "<none>" }
        let addresses = item["addresses"]?.arrayValue ?? []
        let ready = addresses.filter { $0["ready"]?.boolValue ?? true }.count
        return "\(ready)/\(addresses.count)"
    }

    /// In sync/pushed clusters from the push status; `<none>` when never pushed.
    static func clusters(_ item: JSONValue, client: RegistryClient) throws -> String {
        guard let namespace = item["namespace"]?.stringValue, let name = item["name"]?.stringValue else { return "<none>" }
        let status = try client.send("GET", RegistryClient.servicePath(namespace, name) + "/status").json()
        let records = status["items"]?.arrayValue ?? []
        guard !records.isEmpty else { return "<none>" }
        let inSync = records.filter { $0["outOfDate"]?.boolValue == false }.count
        return "\(inSync)/\(records.count)"
    }
}
