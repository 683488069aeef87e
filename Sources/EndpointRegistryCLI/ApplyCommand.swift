import ArgumentParser
import Foundation
import RegistryClient
import RegistryCore

/// `--dry-run`: `none` (default) or `server` (the server checks and decides, and keeps nothing).
enum DryRunMode: String, ExpressibleByArgument, CaseIterable {
    case none, server
}

/// `apply -f FILE|DIR|- [-R] [--prune -l SELECTOR | --prune-all] [--dry-run=server]`.
struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or update registrations from files, and optionally prune those the files no longer contain.",
        discussion: """
            Files hold registrations in the API's format (YAML or JSON; several YAML documents, or \
            {"items": [...]}); a directory means its .yaml, .yml and .json files (-R: and its \
            subdirectories'). Each registration replaces the stored one (PUT) under If-Match with \
            the revision read just before, so a concurrent change is a conflict, never overwritten; \
            a `revision` in the file is a precondition too. One line per service: \
            service/NAME created|configured|unchanged|pruned. If any file is invalid nothing is \
            sent; if any item fails nothing is pruned; the exit status is then 2.
            -l applies only the files' registrations whose labels match the selector (as \
            kubectl apply -l); --prune then deletes the services matching it, in the namespaces \
            of the applied registrations (and -n), that were not applied: a service whose file \
            no longer carries the selected labels is pruned too. --prune-all deletes every \
            service there that the files do not contain.
            Examples:
              endpoint-registry apply -f registrations/ -R --prune -l team=storage
              endpoint-registry apply -f etcd.yaml --dry-run=server
            """)

    @Option(name: [.customShort("f"), .customLong("filename")], help: "File, directory or - (standard input); repeatable.", completion: .file())
    var files: [String] = []
    @Flag(name: [.customShort("R"), .customLong("recursive")], help: "Read directories recursively.")
    var recursive = false
    @Option(name: .shortAndLong, help: "Namespace of registrations that name none (default \"default\"); others must match it.")
    var namespace: String?
    @Flag(help: "Delete services matching -l that the files do not contain.")
    var prune = false
    @Flag(help: "Delete every service of the namespaces concerned that the files do not contain.")
    var pruneAll = false
    @Option(
        name: [.customShort("l"), .long],
        help: "Apply only the registrations matching this label selector (e.g. team=storage); with --prune, delete only services matching it.")
    var selector: String?
    @Option(help: "none, or server: the server validates and decides, and writes nothing.")
    var dryRun: DryRunMode = .none
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if files.isEmpty { throw ValidationError("name the registrations with -f FILE, -f DIR or -f -") }
        if prune && pruneAll { throw ValidationError("use --prune -l SELECTOR or --prune-all, not both") }
        if prune && (selector ?? "").isEmpty { throw ValidationError("--prune needs a label selector (-l); --prune-all prunes without one") }
        if selector != nil && pruneAll {
            throw ValidationError("--prune-all prunes without a selector; use --prune -l SELECTOR to prune the selected services")
        }
    }

    func run() throws {
        let labelSelector: LabelSelector?
        do {
            labelSelector = try selector.map { try LabelSelector(parsing: $0) }
        } catch {
            throw ValidationError("-l \(selector ?? ""): \(error)")
        }
        let loaded = RegistrationFiles.load(files, recursive: recursive, namespace: namespace)
        for problem in loaded.problems { Console.error("error: " + problem) }
        guard loaded.problems.isEmpty else {
            Console.error("error: nothing was applied")
            throw ExitCode(ClientExit.failed)
        }
        // As kubectl's "no objects passed to apply": above all, an empty directory or input with
        // --prune-all must not delete every service of the namespace.
        try RegistrationFiles.requireSome(loaded.registrations, files)
        // -l: only the registrations the selector matches are applied, and they are the set
        // --prune keeps (kubectl apply -l); none matching prunes nothing and is an error.
        var registrations = loaded.registrations
        if let labelSelector, let selector {
            registrations = registrations.filter { labelSelector.matches($0.input.service.labels) }
            guard !registrations.isEmpty else {
                Console.error("error: no registration in \(files.joined(separator: ", ")) matches -l \(selector); nothing was done")
                throw ExitCode(ClientExit.failed)
            }
        }
        let client = try client.client()
        let suffix = dryRun == .server ? " (server dry run)" : ""
        let query: [(String, String)] = dryRun == .server ? [("dryRun", "true")] : []
        try runClient {
            var status = ClientExit.success
            for registration in registrations {
                do {
                    let action = try apply(registration, client: client, query: query)
                    Console.out("service/\(registration.name) \(action)\(suffix)\n")
                } catch {
                    status = ClientExit.worst(status, Console.report(error, prefix: "service/\(registration.name) (\(registration.place))"))
                }
            }
            guard prune || pruneAll else { return status }
            guard status == ClientExit.success else {
                Console.error("error: nothing was pruned, since not every registration was applied")
                return status
            }
            var namespaces = Set(registrations.map(\.namespace))
            if let namespace { namespaces.insert(namespace) }
            if namespaces.isEmpty { namespaces.insert(ExternalService.defaultNamespace) }
            let kept = Set(registrations.map { "\($0.namespace)/\($0.name)" })
            for namespace in namespaces.sorted() {
                for item in try client.listServices(namespace: namespace, labelSelector: prune ? selector : nil) {
                    guard let name = item["name"]?.stringValue, !kept.contains("\(namespace)/\(name)") else { continue }
                    var headers: [(String, String)] = []
                    if let uid = item["uid"]?.stringValue, let revision = item["revision"]?.intValue {
                        headers.append(("If-Match", ServiceRecord.etag(revision: revision, uid: uid)))
                    }
                    do {
                        _ = try client.send("DELETE", RegistryClient.servicePath(namespace, name), query: query, headers: headers)
                        Console.out("service/\(name) pruned\(suffix)\n")
                    } catch {
                        status = ClientExit.worst(status, Console.report(error, prefix: "service/\(name) (prune)"))
                    }
                }
            }
            return status
        }
    }

    /// Creates or replaces one registration; returns what was done.
    private func apply(_ registration: Registration, client: RegistryClient, query: [(String, String)]) throws(ClientError) -> String {
        let path = RegistryClient.servicePath(registration.namespace, registration.name)
        let current = try client.send("GET", path, accept: [404])
        if current.status == 404 {
            // If-None-Match: * makes a creation that raced with another one a conflict (412).
            _ = try client.sendJSON("PUT", path, registration.json, query: query, headers: [("If-None-Match", "*")])
            return "created"
        }
        guard let record = ServiceDecoder.storedRecord(try current.json()) else {
            throw .invalidResponse("GET \(path) did not answer a registration")
        }
        if record.service == registration.input.service
            && (registration.input.revision == nil || registration.input.revision == record.revision)
            && (registration.input.uid == nil || registration.input.uid == record.uid)
        {
            return "unchanged"
        }
        _ = try client.sendJSON("PUT", path, registration.json, query: query, headers: [("If-Match", current.header("ETag") ?? record.etag)])
        return "configured"
    }
}

/// `diff -f FILE|DIR|-`: what apply would change, as a unified diff.
struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what apply would change, as a unified diff of the stored and the applied registrations.",
        discussion: """
            Compares each registration of the files, as the server would store it (defaults filled \
            in, addresses ordered), with the stored one; server-managed fields (uid, revision, \
            createdAt, updatedAt) are left out; a uid or revision in a file that no longer \
            matches (apply would refuse it) is an error. Exit status: 0 no differences, \
            1 differences, 2 or more on errors (as kubectl diff and diff(1)).
            """)

    @Option(name: [.customShort("f"), .customLong("filename")], help: "File, directory or -; repeatable.", completion: .file())
    var files: [String] = []
    @Flag(name: [.customShort("R"), .customLong("recursive")], help: "Read directories recursively.")
    var recursive = false
    @Option(name: .shortAndLong, help: "Namespace of registrations that name none (default \"default\").")
    var namespace: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if files.isEmpty { throw ValidationError("name the registrations with -f FILE, -f DIR or -f -") }
    }

    func run() throws {
        let loaded = RegistrationFiles.load(files, recursive: recursive, namespace: namespace)
        for problem in loaded.problems { Console.error("error: " + problem) }
        guard loaded.problems.isEmpty else { throw ExitCode(ClientExit.failed) }
        try RegistrationFiles.requireSome(loaded.registrations, files)
        let client = try client.client()
        try runClient {
            var status = ClientExit.success
            var text = ""
            for registration in loaded.registrations {
                let path = RegistryClient.servicePath(registration.namespace, registration.name)
                let current = try client.send("GET", path, accept: [404])
                var before = ""
                var record: ServiceRecord? = nil
                if current.status != 404 {
                    guard let stored = ServiceDecoder.storedRecord(try current.json()) else {
                        throw ClientError.invalidResponse("GET \(path) did not answer a registration")
                    }
                    record = stored
                    before = RegistrationFiles.canonicalYAML(stored.service)
                }
                // A `uid` or `revision` in the file is a precondition of apply: one that fails is
                // what apply would answer, not a difference.
                if let refusal = Self.preconditionFailure(registration.input, stored: record) {
                    Console.error("error: service/\(registration.name) (\(registration.place)): \(refusal)")
                    status = ClientExit.worst(status, ClientExit.failed)
                    continue
                }
                let after = RegistrationFiles.canonicalYAML(registration.input.service)
                guard before != after else { continue }
                let label = "service/\(registration.namespace)/\(registration.name)"
                text += UnifiedDiff.diff(before, after, from: current.status == 404 ? "/dev/null" : "a/\(label)", to: "b/\(label)")
                status = ClientExit.differences
            }
            Console.out(text)
            return status
        }
    }
}

extension Diff {
    /// Why the server would refuse to apply `input` over `stored` (nil: absent) because of the
    /// `uid` or `revision` it echoes, in the server's words (`checkEchoedFields`); nil if it would not.
    static func preconditionFailure(_ input: ServiceInput, stored: ServiceRecord?) -> String? {
        let key = "\(input.service.namespace)/\(input.service.name)"
        guard let stored else {
            return input.uid != nil || input.revision != nil
                ? "service \(key) does not exist (the file's \(input.uid != nil ? "uid" : "revision") is a precondition)" : nil
        }
        if let uid = input.uid, uid != stored.uid {
            return "uid: uid \(uid) does not match the stored service (uid \(stored.uid)): it was deleted and created again"
        }
        if let revision = input.revision, revision != stored.revision {
            return "revision: the service has been modified (revision \(stored.revision), the request says \(revision)); fetch it again and retry"
        }
        return nil
    }
}

/// `delete service NAME… [-n NS] | -f FILE | -l SELECTOR`.
struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete registrations by name, by file, or by label selector.",
        discussion: """
            Examples:
              endpoint-registry delete service etcd
              endpoint-registry delete services -l team=storage -n storage
              endpoint-registry delete -f etcd.yaml --dry-run=server
            """)

    @Argument(help: "service (or services, svc), then names; or service/NAME.")
    var arguments: [String] = []
    @Option(name: [.customShort("f"), .customLong("filename")], help: "Delete the registrations of these files.", completion: .file())
    var files: [String] = []
    @Option(name: .shortAndLong, help: "Namespace (default \"default\").")
    var namespace: String?
    @Option(name: [.customShort("l"), .long], help: "Delete every service of the namespace matching this selector.")
    var selector: String?
    @Flag(help: "Also delete the service's objects from every cluster it was pushed to (needs the push permission).")
    var cascade = false
    @Flag(help: "Succeed when a named service does not exist.")
    var ignoreNotFound = false
    @Option(help: "none, or server: the server checks the request and deletes nothing.")
    var dryRun: DryRunMode = .none
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if cascade && dryRun == .server { throw ValidationError("--cascade has no dry run (its deletions in clusters cannot be simulated)") }
    }

    func run() throws {
        let names = try ResourceWord.names(arguments, required: files.isEmpty)
        var targets = names.map { (namespace ?? ExternalService.defaultNamespace, $0) }
        if !files.isEmpty {
            let loaded = RegistrationFiles.load(files, recursive: false, namespace: namespace)
            for problem in loaded.problems { Console.error("error: " + problem) }
            guard loaded.problems.isEmpty else { throw ExitCode(ClientExit.failed) }
            try RegistrationFiles.requireSome(loaded.registrations, files)
            targets += loaded.registrations.map { ($0.namespace, $0.name) }
        }
        if targets.isEmpty && (selector ?? "").isEmpty { throw ValidationError("name services, give -f FILE, or select them with -l") }
        let client = try client.client()
        var query: [(String, String)] = []
        // The server's default is to cascade: without --cascade the objects in clusters stay,
        // as the flag's help says (and deleting a registration needs no push permission then).
        query.append(("cascade", cascade ? "true" : "false"))
        if dryRun == .server { query.append(("dryRun", "true")) }
        let suffix = dryRun == .server ? " (server dry run)" : ""
        try runClient {
            if let selector, !selector.isEmpty {
                let namespace = self.namespace ?? ExternalService.defaultNamespace
                targets += try client.listServices(namespace: namespace, labelSelector: selector).compactMap { item in
                    item["name"]?.stringValue.map { (namespace, $0) }
                }
            }
            var status = ClientExit.success
            for (namespace, name) in targets {
                do {
                    let answer = try client.send(
                        "DELETE", RegistryClient.servicePath(namespace, name), query: query, accept: ignoreNotFound ? [404] : [])
                    if answer.status != 404 { Console.out("service/\(name) deleted\(suffix)\n") }
                } catch {
                    status = ClientExit.worst(status, Console.report(error, prefix: "service/\(name)"))
                }
            }
            return status
        }
    }
}
