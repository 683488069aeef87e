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
            -w prints the list, then one line (or document) per change as it happens, like \
            kubectl get -w, until interrupted; --watch-only prints only the changes, and \
            --output-watch-events the kind of each change (ADDED, MODIFIED, DELETED). When the \
            server ends a watch that worked (its timeout), it resumes at once from the last change \
            seen. When the server drops it (falling behind, busy), no longer keeps that change \
            (the list is then read again, printing what differs), ends it at once with no change, \
            does not answer (restarting) or answers 429, 502, 503 or 504, it is tried again after \
            1, 2, 4... up to 30 seconds, with a line on standard error. An event that is not the \
            API's (not JSON, an unknown type, not a service) ends it with exit status 3.
            Examples:
              endpoint-registry get services -A
              endpoint-registry get service etcd -o yaml > etcd.yaml
              endpoint-registry get services -n storage -w
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
    @Flag(name: .shortAndLong, help: "After the list, print each change as it happens (until interrupted).")
    var watch = false
    @Flag(help: "Print only the changes, not the list first.")
    var watchOnly = false
    @Flag(help: "With -w or --watch-only, print the kind of each change (ADDED, MODIFIED, DELETED); the list's items as ADDED.")
    var outputWatchEvents = false
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
        if watch || watchOnly {
            try runClient { try watchServices(client, names: Set(names)) }
            return
        }
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
            // Named services none of which exists: only the errors, as kubectl (no empty list).
            if names.isEmpty || !items.isEmpty { Console.out(try render(items, single: names.count == 1, client: client)) }
            if names.isEmpty && items.isEmpty && (output == .table || output == .wide) {
                Console.error(allNamespaces ? "No resources found" : "No resources found in \(namespace ?? "default") namespace.")
            }
            return status
        }
    }

    /// `-w` / `--watch-only`: the list (unless watch-only), then each change, resuming after the
    /// server ends a watch and listing again when the watched version is gone (printing what the
    /// new list changes: an informer's relist).
    private func watchServices(_ client: RegistryClient, names: Set<String>) throws -> Int32 {
        let namespace = allNamespaces ? nil : (namespace ?? "default")
        func wanted(_ item: JSONValue) -> Bool { names.isEmpty || names.contains(item["name"]?.stringValue ?? "") }
        func key(_ item: JSONValue) -> String { "\(item["namespace"]?.stringValue ?? "")/\(item["name"]?.stringValue ?? "")" }
        var known: [String: JSONValue] = [:]
        var header = true
        func emit(_ type: String, _ item: JSONValue) throws {
            Console.out(try renderEvent(type, item, header: header, client: client))
            header = false
        }
        var listing = try client.listServicesWithVersion(namespace: namespace, labelSelector: selector)
        for item in listing.items where wanted(item) {
            known[key(item)] = item
            if !watchOnly { try emit("ADDED", item) }
        }
        var version = listing.resourceVersion
        // A watch or list that fails for a reason that passes (no answer: the server restarting;
        // 429, 502, 503, 504: busy or shutting down), and a watch that ends abnormally (dropped,
        // its version gone, or ended at once with no event), is tried again after 1, 2, 4… up
        // to 30 seconds, with a line on standard error each time: client-go's reflector backs
        // off the same way (and calls a watch that ends within a second with no event "very
        // short"). A watch that delivered an event or lasted a second sets the wait back to 1 s.
        var delay = 1
        func backOff(_ reason: String) {
            Console.error("watch: \(reason); trying again in \(delay) s")
            Thread.sleep(forTimeInterval: Double(delay))
            delay = min(delay * 2, Self.maximumDelay)
        }
        var mustList = false
        while true {
            if mustList {
                let fresh = Result { () throws(ClientError) in try client.listServicesWithVersion(namespace: namespace, labelSelector: selector) }
                switch fresh {
                case .success(let fresh):
                    listing = fresh
                case .failure(let error) where Self.passes(error):
                    backOff("\(error)")
                    continue
                case .failure(let error):
                    throw error
                }
                var items: [String: JSONValue] = [:]
                for item in listing.items where wanted(item) { items[key(item)] = item }
                for (name, item) in items.sorted(by: { $0.key < $1.key }) {
                    guard let old = known[name] else {
                        try emit("ADDED", item)
                        continue
                    }
                    if old["uid"] != item["uid"] || old["revision"] != item["revision"] { try emit("MODIFIED", item) }
                }
                for (name, item) in known.sorted(by: { $0.key < $1.key }) where items[name] == nil { try emit("DELETED", item) }
                known = items
                version = listing.resourceVersion
                mustList = false
            }
            var failure: (any Error)? = nil
            var received = 0
            let started = ContinuousClock.now
            let ended = Result { () throws(ClientError) in
                try client.watchServices(namespace: namespace, labelSelector: selector, resourceVersion: version) { event in
                    received += 1
                    guard let type = event["type"]?.stringValue, let object = event["object"] else { return true }
                    if let seen = object["metadata"]?["resourceVersion"]?.stringValue { version = seen }
                    guard type != "BOOKMARK", wanted(object) else { return true }
                    var item = object
                    if case .object(var members) = object {
                        members["metadata"] = nil
                        item = .object(members)
                    }
                    if type == "DELETED" { known[key(item)] = nil } else { known[key(item)] = item }
                    do {
                        try emit(type, item)
                    } catch {
                        failure = error
                        return false
                    }
                    return true
                }
            }
            if let failure { throw failure }
            let worked = received > 0 || ContinuousClock.now - started >= .seconds(1)
            if worked { delay = 1 }
            switch ended {
            case .failure(let error) where Self.passes(error):
                backOff("\(error)")
            case .failure(let error):
                // Refused (401, 403, 400…), or not the API's answer (exit status 3).
                throw error
            // The server ended a watch that worked (its timeout, or shutdown): watch again at
            // once from the last change printed.
            case .success(.closed), .success(.stopped):
                if !worked { backOff("the server ended the watch at once, with no event") }
            // Dropped for falling behind (a slow terminal or pipe) or the server being busy:
            // watch again from the last change printed; what was missed is sent again.
            case .success(.dropped(let message)):
                backOff("the server dropped the watch" + (message.isEmpty ? "" : " (\(message))"))
            // The server no longer keeps the changes after `version`: list again.
            case .success(.expired):
                backOff("the server no longer keeps the changes after version \(version) (410 Gone), so the list is read again")
                mustList = true
            }
        }
    }

    /// The longest wait between two attempts of `get -w`, in seconds (client-go's reflector: 30 s).
    static let maximumDelay = 30

    /// Whether a failed watch or list is worth trying again: no answer (connection refused or
    /// reset, timeout), or 429, 502, 503, 504.
    static func passes(_ error: ClientError) -> Bool {
        switch error {
        case .transport: true
        case .problem(let problem): [429, 502, 503, 504].contains(problem.status)
        case .invalidResponse: false
        }
    }

    /// One change as `get -w` prints it: a table row (the header before the first), a YAML
    /// document, a JSON object, or a name; with `--output-watch-events` the kind of change too.
    private func renderEvent(_ type: String, _ item: JSONValue, header: Bool, client: RegistryClient) throws -> String {
        switch output {
        case .table, .wide:
            var table = try render([item], single: false, client: client).split(separator: "\n", omittingEmptySubsequences: false)
            if !header { table.removeFirst() }
            let lines = table.filter { !$0.isEmpty }.enumerated().map { index, line in
                guard outputWatchEvents else { return String(line) }
                let cell = header && index == 0 ? "EVENT" : type
                return cell + String(repeating: " ", count: max(1, 11 - cell.count)) + line
            }
            return lines.map { $0 + "\n" }.joined()
        case .yaml:
            return Output.yaml([outputWatchEvents ? Self.event(type, item) : item])
        case .json:
            return Output.json(outputWatchEvents ? Self.event(type, item) : item)
        case .name:
            return (outputWatchEvents ? "\(type) " : "") + "service/\(item["name"]?.stringValue ?? "")\n"
        }
    }

    private static func event(_ type: String, _ item: JSONValue) -> JSONValue {
        .object(JSONObject([("type", .string(type)), ("object", item)]))
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
        // 404: deleted meanwhile (a watch prints deleted services too).
        let answer = try client.send("GET", RegistryClient.servicePath(namespace, name) + "/status", accept: [404])
        guard answer.status != 404 else { return "<none>" }
        let status = try answer.json()
        let records = status["items"]?.arrayValue ?? []
        guard !records.isEmpty else { return "<none>" }
        let inSync = records.filter { $0["outOfDate"]?.boolValue == false }.count
        return "\(inSync)/\(records.count)"
    }
}
