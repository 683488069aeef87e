import Foundation
import RegistryAPI
import TestSupport
import Testing

/// What a run of the binary gave.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `endpoint-registry ARGUMENTS…` (or `executable`) with `environment` added to a minimal
/// one, feeding `input` on standard input.
func runCLI(
    _ arguments: [String], environment: [String: String] = [:], input: String? = nil, executable: URL = Paths.binary,
    currentDirectory: URL? = nil
) throws -> CLIResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    var base = ["PATH": "/usr/bin:/bin", "HOME": FileManager.default.temporaryDirectory.path()]
    base.merge(environment) { $1 }
    process.environment = base
    if let currentDirectory { process.currentDirectoryURL = currentDirectory }
    let directory = FileManager.default.temporaryDirectory.appending(path: "cli-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let out = directory.appending(path: "out")
    let err = directory.appending(path: "err")
    let inFile = directory.appending(path: "in")
    try Data((input ?? "").utf8).write(to: inFile)
    #expect(FileManager.default.createFile(atPath: out.path(), contents: nil))
    #expect(FileManager.default.createFile(atPath: err.path(), contents: nil))
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    process.standardInput = try FileHandle(forReadingFrom: inFile)
    try process.run()
    process.waitUntilExit()
    return CLIResult(
        status: process.terminationStatus, stdout: try String(contentsOf: out, encoding: .utf8), stderr: try String(contentsOf: err, encoding: .utf8))
}

/// A temporary directory of registration files.
func registrationDirectory(_ files: [String: String]) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appending(path: "cli-files-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    for (name, text) in files {
        let url = directory.appending(path: name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }
    return directory
}

private let etcdFile = """
    name: etcd
    labels: {team: a}
    ports: [{name: client, port: 2379}]
    addresses: [{ip: 10.20.30.40}, {ip: 10.20.30.41, ready: false}]
    """

private let twoServicesFile = """
    name: minio
    labels: {team: a}
    ports: [{port: 9000}]
    addresses: [{ip: 10.0.0.9}]
    ---
    name: mail
    namespace: ops
    labels: {team: a}
    type: ExternalName
    externalName: mail.example.com
    ports: [{port: 25}]
    """

@Suite struct CLITests {
    let server: TestServer
    var environment: [String: String] { ["ENDPOINT_REGISTRY_URL": "http://127.0.0.1:\(server.port)"] }

    init() throws {
        server = try TestServer()
    }

    @Test func applyOfADirectoryTwiceLeavesEverythingUnchangedTheSecondTime() throws {
        let directory = try registrationDirectory(["etcd.yaml": etcdFile, "more/two.yaml": twoServicesFile, "notes.txt": "not read"])
        let first = try runCLI(["apply", "-f", directory.path(), "-R"], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout == "service/etcd created\nservice/minio created\nservice/mail created\n")
        let second = try runCLI(["apply", "-f", directory.path(), "-R"], environment: environment)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout == "service/etcd unchanged\nservice/minio unchanged\nservice/mail unchanged\n")
        // Without -R the subdirectory is not read.
        let flat = try runCLI(["apply", "-f", directory.path()], environment: environment)
        #expect(flat.stdout == "service/etcd unchanged\n")
        // A change is "configured", with the revision bumped once.
        try etcdFile.replacingOccurrences(of: "10.20.30.41, ready: false", with: "10.20.30.41")
            .write(to: directory.appending(path: "etcd.yaml"), atomically: true, encoding: .utf8)
        let third = try runCLI(["apply", "-f", directory.appending(path: "etcd.yaml").path()], environment: environment)
        #expect(third.stdout == "service/etcd configured\n")
        let stored = try server.client().request("GET", "/v1/services/default/etcd")
        #expect(stored.json?["revision"] as? Int == 2)
    }

    @Test func applyReadsStandardInputAndGetYamlIsAcceptedUnchanged() throws {
        let applied = try runCLI(["apply", "-f", "-"], environment: environment, input: etcdFile)
        #expect(applied.stdout == "service/etcd created\n")
        let yaml = try runCLI(["get", "service", "etcd", "-o", "yaml"], environment: environment)
        #expect(yaml.status == 0)
        #expect(yaml.stdout.contains("name: etcd") && yaml.stdout.contains("revision: 1"))
        let again = try runCLI(["apply", "-f", "-"], environment: environment, input: yaml.stdout)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout == "service/etcd unchanged\n")
        // The list as YAML (one document per service) is accepted too.
        let list = try runCLI(["get", "services", "-A", "-o", "yaml"], environment: environment)
        #expect(try runCLI(["apply", "-f", "-"], environment: environment, input: list.stdout).stdout == "service/etcd unchanged\n")
    }

    @Test func pruneDeletesWhatTheFilesNoLongerContainAmongTheSelected() throws {
        let directory = try registrationDirectory(["etcd.yaml": etcdFile, "two.yaml": twoServicesFile])
        #expect(try runCLI(["apply", "-f", directory.path()], environment: environment).status == 0)
        // Another team's service in the same namespace, and an unlabelled one.
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: #"{"name":"other","labels":{"team":"b"},"ports":[{"port":1}]}"#).status == 201)
        #expect(try client.request("POST", "/v1/services", json: #"{"name":"loose","ports":[{"port":1}]}"#).status == 201)
        try FileManager.default.removeItem(at: directory.appending(path: "two.yaml"))

        let usage = try runCLI(["apply", "-f", directory.path(), "--prune"], environment: environment)
        #expect(usage.status == 64)
        #expect(usage.stderr.contains("--prune needs a label selector"))

        let dryRun = try runCLI(["apply", "-f", directory.path(), "--prune", "-l", "team=a", "--dry-run=server"], environment: environment)
        #expect(dryRun.stdout == "service/etcd unchanged (server dry run)\nservice/minio pruned (server dry run)\n")
        #expect(try client.request("GET", "/v1/services/default/minio").status == 200)

        let pruned = try runCLI(["apply", "-f", directory.path(), "--prune", "-l", "team=a"], environment: environment)
        #expect(pruned.status == 0, "\(pruned.stderr)")
        #expect(pruned.stdout == "service/etcd unchanged\nservice/minio pruned\n")
        #expect(try client.request("GET", "/v1/services/default/minio").status == 404)
        #expect(try client.request("GET", "/v1/services/default/other").status == 200)
        // ops/mail is in a namespace the files no longer name: left alone.
        #expect(try client.request("GET", "/v1/services/ops/mail").status == 200)

        // Files with no registration at all are an error, and above all prune nothing.
        let empty = try registrationDirectory(["notes.txt": "not read", "sub/etcd.yaml": etcdFile])
        for (arguments, input) in [(["-f", empty.path()], ""), (["-f", "-"], "\n---\n")] {
            for command in [["apply", "--prune-all"], ["diff"], ["delete"]] {
                let refused = try runCLI([command[0]] + arguments + command.dropFirst(), environment: environment, input: input)
                #expect(refused.status == 2 && refused.stdout.isEmpty, "\(command) \(arguments)")
                #expect(refused.stderr == "error: no registrations in \(arguments[1]); nothing was done\n")
            }
        }
        #expect(try client.request("GET", "/v1/services/default/loose").status == 200)

        let all = try runCLI(["apply", "-f", directory.path(), "--prune-all"], environment: environment)
        #expect(all.stdout == "service/etcd unchanged\nservice/loose pruned\nservice/other pruned\n")
    }

    @Test func aSelectorFiltersTheRegistrationsApplyReadsAndPrunesAmongThem() throws {
        let teamB = "name: db\nlabels: {team: b}\nports: [{port: 5432}]\n---\nname: cache\nlabels: {team: b}\nports: [{port: 6379}]\n"
        let directory = try registrationDirectory(["b.yaml": teamB, "etcd.yaml": etcdFile, "two.yaml": twoServicesFile])
        let applied = try runCLI(["apply", "-f", directory.path(), "-l", "team=b"], environment: environment)
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout == "service/db created\nservice/cache created\n")
        let client = try server.client()
        #expect(try client.request("GET", "/v1/services/default/etcd").status == 404)
        #expect(try runCLI(["apply", "-f", directory.path()], environment: environment).status == 0)
        // db's file no longer carries team=b and etcd's changed: only cache is applied, and db,
        // selected on the server but not applied, is pruned (as kubectl apply -l --prune).
        try teamB.replacingOccurrences(of: "name: db\nlabels: {team: b}", with: "name: db\nlabels: {team: c}")
            .write(to: directory.appending(path: "b.yaml"), atomically: true, encoding: .utf8)
        try etcdFile.replacingOccurrences(of: "port: 2379", with: "port: 2380").write(
            to: directory.appending(path: "etcd.yaml"), atomically: true, encoding: .utf8)
        let pruned = try runCLI(["apply", "-f", directory.path(), "--prune", "-l", "team=b"], environment: environment)
        #expect(pruned.status == 0, "\(pruned.stderr)")
        #expect(pruned.stdout == "service/cache unchanged\nservice/db pruned\n")
        #expect(try client.request("GET", "/v1/services/default/etcd").json?["revision"] as? Int == 1)
        #expect(try client.request("GET", "/v1/services/default/minio").status == 200)
        // A selector no registration matches applies and prunes nothing.
        let none = try runCLI(["apply", "-f", directory.path(), "--prune", "-l", "team=x"], environment: environment)
        #expect(none.status == 2 && none.stdout.isEmpty)
        #expect(none.stderr == "error: no registration in \(directory.path()) matches -l team=x; nothing was done\n")
        #expect(try client.request("GET", "/v1/services/default/cache").status == 200)
        let badSelector = try runCLI(["apply", "-f", directory.path(), "-l", "team in (b"], environment: environment)
        #expect(badSelector.status == 64, "\(badSelector.stderr)")
    }

    @Test func dryRunChecksEverythingAndWritesNothing() throws {
        let created = try runCLI(["apply", "-f", "-", "--dry-run=server"], environment: environment, input: etcdFile)
        #expect(created.status == 0)
        #expect(created.stdout == "service/etcd created (server dry run)\n")
        let client = try server.client()
        #expect(try client.request("GET", "/v1/services/default/etcd").status == 404)
        // The server still validates: an invalid registration fails the dry run with its field.
        #expect(try runCLI(["apply", "-f", "-"], environment: environment, input: etcdFile).status == 0)
        let changed = try runCLI(
            ["apply", "-f", "-", "--dry-run=server"], environment: environment,
            input: etcdFile.replacingOccurrences(of: "10.20.30.40", with: "10.20.30.50"))
        #expect(changed.stdout == "service/etcd configured (server dry run)\n")
        #expect(try client.request("GET", "/v1/services/default/etcd").json?["revision"] as? Int == 1)
        let deleted = try runCLI(["delete", "service", "etcd", "--dry-run=server"], environment: environment)
        #expect(deleted.stdout == "service/etcd deleted (server dry run)\n")
        #expect(try client.request("GET", "/v1/services/default/etcd").status == 200)
    }

    @Test func conflictsAndInvalidFilesFailWithOneLinePerProblem() throws {
        #expect(try runCLI(["apply", "-f", "-"], environment: environment, input: etcdFile).status == 0)
        let saved = try runCLI(["get", "service", "etcd", "-o", "yaml"], environment: environment).stdout
        let client = try server.client()
        let patch = try client.request(
            "PATCH", "/v1/services/default/etcd", body: Array(#"{"description":"changed meanwhile"}"#.utf8),
            contentType: "application/merge-patch+json")
        #expect(patch.status == 200)
        let stale = try runCLI(
            ["apply", "-f", "-"], environment: environment, input: saved.replacingOccurrences(of: "ready: false", with: "ready: true"))
        #expect(stale.status == 2)
        #expect(stale.stderr.contains("error: service/etcd (- document 0): revision: the service has been modified"))
        #expect(try client.request("GET", "/v1/services/default/etcd").json?["description"] as? String == "changed meanwhile")

        let invalid = try runCLI(
            ["apply", "-f", "-"], environment: environment,
            input: "name: Bad_Name\nports: [{port: 70000}]\n---\nname: fine\nports: [{port: 1}]\n")
        #expect(invalid.status == 2)
        #expect(invalid.stdout.isEmpty)
        let lines = invalid.stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("error: - document 0: name: ") })
        #expect(lines.contains { $0.hasPrefix("error: - document 0: ports[0].port: ") })
        #expect(lines.last == "error: nothing was applied")
        #expect(try client.request("GET", "/v1/services/default/fine").status == 404)

        // A Kubernetes manifest is pointed to import.
        let manifest = try runCLI(["apply", "-f", "-"], environment: environment, input: "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
        #expect(manifest.stderr.contains("use `import -f` for manifests"))
    }

    @Test func hostileFilesAreRefusedOneLinePerProblem() throws {
        // A link to the parent directory does not make -R loop; a file reached twice is read once.
        let directory = try registrationDirectory(["etcd.yaml": etcdFile])
        try FileManager.default.createDirectory(at: directory.appending(path: "sub"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: directory.appending(path: "sub/up"), withDestinationURL: directory)
        try FileManager.default.createSymbolicLink(
            at: directory.appending(path: "again.yaml"), withDestinationURL: directory.appending(path: "etcd.yaml"))
        let looped = try runCLI(["apply", "-f", directory.path(), "-R"], environment: environment)
        #expect(looped.status == 0, "\(looped.stderr)")
        #expect(looped.stdout == "service/etcd created\n")
        // YAML syntax errors: one line each, with the position, quoting none of the file.
        let duplicated = try runCLI(["apply", "-f", "-"], environment: environment, input: "name: a\nsecret: s3cr3t\nname: b\n")
        #expect(duplicated.status == 2)
        #expect(duplicated.stderr == "error: -: not valid YAML: line 1, column 1: duplicate key \"name\" in a mapping\nerror: nothing was applied\n")
        let indented = try runCLI(["diff", "-f", "-"], environment: environment, input: "name: a\n  secret: s3cr3t\n")
        #expect(indented.status == 2)
        #expect(indented.stderr == "error: -: not valid YAML: line 2, column 9: mapping values are not allowed in this context\n")
        // An alias bomb is cut short; documents that are not registrations are named.
        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 { bomb += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        let exploded = try runCLI(["apply", "-f", "-"], environment: environment, input: bomb)
        #expect(exploded.status == 2 && exploded.stderr.contains("the YAML expands to more than 2000000 nodes"))
        let strays = try runCLI(["apply", "-f", "-"], environment: environment, input: "- 1\n---\nplain\n---\nitems: [3]\n")
        #expect(
            strays.stderr.split(separator: "\n") == [
                "error: - document 0: a registration must be an object, not array",
                "error: - document 1: a registration must be an object, not string",
                "error: - document 2 item 0: a registration must be an object, not number", "error: nothing was applied",
            ])
    }

    @Test func everyOutputFormatOfGet() throws {
        let directory = try registrationDirectory(["etcd.yaml": etcdFile, "two.yaml": twoServicesFile])
        #expect(try runCLI(["apply", "-f", directory.path()], environment: environment).status == 0)
        let table = try runCLI(["get", "services"], environment: environment)
        let rows = table.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(rows.first == ["NAME", "TYPE", "PORTS", "ADDRESSES", "CLUSTERS", "AGE"])
        #expect(
            rows.dropFirst().map { Array($0.prefix(5)) } == [
                ["etcd", "ClusterIP", "2379/TCP", "1/2", "<none>"], ["minio", "ClusterIP", "9000/TCP", "1/1", "<none>"],
            ])
        let all = try runCLI(["get", "services", "-A", "-o", "wide", "-l", "team=a"], environment: environment)
        let wide = all.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(wide.first == ["NAMESPACE", "NAME", "TYPE", "PORTS", "ADDRESSES", "CLUSTERS", "AGE", "ENDPOINTS-MODE", "EXTERNAL-NAME", "LABELS"])
        #expect(wide.dropFirst().map { $0[1] } == ["etcd", "minio", "mail"])
        #expect(wide.last?.suffix(3) == ["both", "mail.example.com", "team=a"])
        let names = try runCLI(["get", "services", "-A", "-o", "name"], environment: environment)
        #expect(names.stdout == "service/etcd\nservice/minio\nservice/mail\n")
        let json = try runCLI(["get", "services", "-n", "ops", "-o", "json"], environment: environment)
        let list = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((list?["items"] as? [[String: Any]])?.map { $0["name"] as? String } == ["mail"])
        let one = try runCLI(["get", "service/etcd", "-o", "json"], environment: environment)
        #expect((try JSONSerialization.jsonObject(with: Data(one.stdout.utf8)) as? [String: Any])?["name"] as? String == "etcd")
        let empty = try runCLI(["get", "services", "-n", "nothing-here"], environment: environment)
        #expect(empty.status == 0 && empty.stdout.isEmpty && empty.stderr == "No resources found in nothing-here namespace.\n")
    }

    @Test func diffShowsWhatApplyWouldChange() throws {
        #expect(try runCLI(["apply", "-f", "-"], environment: environment, input: etcdFile).status == 0)
        let same = try runCLI(["diff", "-f", "-"], environment: environment, input: etcdFile)
        #expect(same.status == 0 && same.stdout.isEmpty)
        let changed = try runCLI(["diff", "-f", "-"], environment: environment, input: etcdFile.replacingOccurrences(of: "2379", with: "2380"))
        #expect(changed.status == 1)
        #expect(changed.stdout.hasPrefix("--- a/service/default/etcd\n+++ b/service/default/etcd\n@@ "))
        #expect(changed.stdout.contains("\n-  port: 2379\n-  targetPort: 2379\n+  port: 2380\n+  targetPort: 2380\n"))
        let new = try runCLI(["diff", "-f", "-"], environment: environment, input: "name: fresh\nports: [{port: 1}]\n")
        #expect(new.status == 1 && new.stdout.hasPrefix("--- /dev/null\n+++ b/service/default/fresh\n@@ -0,0 +1,"))
        // What apply would refuse (a stale revision or uid, a revision of a service that is gone)
        // is an error, not "no differences" or a creation.
        let saved = try runCLI(["get", "service", "etcd", "-o", "yaml"], environment: environment).stdout
        #expect(
            try server.client().request(
                "PATCH", "/v1/services/default/etcd", body: Array(#"{"description":"x"}"#.utf8), contentType: "application/merge-patch+json"
            ).status == 200)
        #expect(
            try server.client().request(
                "PATCH", "/v1/services/default/etcd", body: Array(#"{"description":null}"#.utf8), contentType: "application/merge-patch+json"
            ).status == 200)
        let stale = try runCLI(["diff", "-f", "-"], environment: environment, input: saved)
        #expect(stale.status == 2 && stale.stdout.isEmpty)
        #expect(
            stale.stderr
                == "error: service/etcd (- document 0): revision: the service has been modified (revision 3, the request says 1); fetch it again and retry\n"
        )
        #expect(try runCLI(["apply", "-f", "-"], environment: environment, input: saved).status == 2)
        let ghost = try runCLI(["diff", "-f", "-"], environment: environment, input: "name: ghost\nrevision: 2\nports: [{port: 1}]\n")
        #expect(ghost.status == 2 && ghost.stdout.isEmpty)
        #expect(ghost.stderr == "error: service/ghost (- document 0): service default/ghost does not exist (the file's revision is a precondition)\n")
    }

    @Test func otherCommands() throws {
        #expect(try runCLI(["apply", "-f", "-"], environment: environment, input: etcdFile).status == 0)
        let status = try runCLI(["status", "etcd"], environment: environment)
        #expect(status.stdout == "service/etcd (revision 1) was never pushed\n")
        let history = try runCLI(["history", "etcd", "-o", "json"], environment: environment)
        #expect(history.stdout.contains("\"change\": \"created\""))
        let manifests = try runCLI(["manifests", "etcd"], environment: environment)
        #expect(manifests.stdout.contains("kind: Service") && manifests.stdout.contains("kind: EndpointSlice"))
        let manifestsJSON = try runCLI(["manifests", "-o", "json"], environment: environment)
        #expect(manifestsJSON.stdout.hasPrefix(#"{"apiVersion":"v1","kind":"List""#))
        let imported = try runCLI(
            ["import", "-f", Paths.examples.appending(path: "ceph-rgw-endpoints.yaml").path(), "-n", "storage"], environment: environment)
        #expect(imported.stdout == "service/ocs-external-rgw-lb created (namespace storage)\n")
        let clusters = try runCLI(["clusters"], environment: environment)
        #expect(clusters.status == 0 && clusters.stdout.hasPrefix("No clusters configured"))
        let push = try runCLI(["push", "etcd"], environment: environment)
        #expect(push.status == 2)
        #expect(push.stderr.contains("error: clusters: service default/etcd is bound to no usable cluster"), "\(push.stderr)")
        let deleted = try runCLI(["delete", "svc", "etcd"], environment: environment)
        #expect(deleted.stdout == "service/etcd deleted\n")
        let again = try runCLI(["delete", "svc", "etcd"], environment: environment)
        #expect(again.status == 2 && again.stderr == "error: service/etcd: service default/etcd does not exist (HTTP 404 Not found)\n")
        #expect(try runCLI(["delete", "svc", "etcd", "--ignore-not-found"], environment: environment).status == 0)
    }

    @Test func historyReadsEveryPage() throws {
        #expect(try runCLI(["apply", "-f", "-"], environment: environment, input: etcdFile).status == 0)
        let client = try server.client()
        for round in 2...5 {
            let body = #"{"description":"round \#(round)"}"#
            let answer = try client.request("PATCH", "/v1/services/default/etcd", body: Array(body.utf8), contentType: "application/merge-patch+json")
            #expect(answer.status == 200)
        }
        // Pages of two revisions: every one of the five is printed, oldest first, in each format.
        let table = try runCLI(["history", "etcd", "--chunk-size", "2"], environment: environment)
        #expect(table.status == 0, "\(table.stderr)")
        let rows = table.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(rows == ["1", "2", "3", "4", "5"], "\(table.stdout)")
        let json = try runCLI(["history", "etcd", "--chunk-size", "2", "-o", "json"], environment: environment)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((object?["items"] as? [[String: Any]])?.compactMap { $0["revision"] as? Int } == [1, 2, 3, 4, 5])
        #expect(object?["continue"] == nil)
        let yaml = try runCLI(["history", "etcd", "--chunk-size", "2", "-o", "yaml"], environment: environment)
        #expect(yaml.stdout.components(separatedBy: "revision: ").count == 6, "\(yaml.stdout)")
        #expect(try runCLI(["history", "etcd", "--chunk-size", "0"], environment: environment).status == 64)
    }

    @Test func theServersWarningsArePrintedOnStandardError() throws {
        let headless = "name: hl\ntype: Headless\nports: [{port: 80, targetPort: 8080}]\naddresses: [{ip: 10.7.0.1}]\n"
        let applied = try runCLI(["apply", "-f", "-"], environment: environment, input: headless)
        #expect(applied.status == 0)
        #expect(applied.stdout == "service/hl created\n")
        let lines = applied.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("Warning: ports[0]: a Headless service does no port translation: "), "\(applied.stderr)")
        #expect(!applied.stderr.contains("299"), "the text, not the header value")
        let dryRun = try runCLI(["apply", "-f", "-", "--dry-run=server"], environment: environment, input: headless + "description: x\n")
        #expect(dryRun.stdout == "service/hl configured (server dry run)\n")
        #expect(dryRun.stderr.hasPrefix("Warning: ports[0]: a Headless service does no port translation: "), "\(dryRun.stderr)")
        // What an import leaves out, in a dry run too; --strict refuses it instead.
        let manifest = "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {clusterIP: 10.96.0.9, ports: [{port: 5432}]}\n"
        let imported = try runCLI(["import", "-f", "-", "--dry-run=server"], environment: environment, input: manifest)
        #expect(imported.status == 0)
        #expect(imported.stdout == "service/db created (server dry run) (namespace default)\n")
        #expect(imported.stderr.hasPrefix("Warning: documents[0].spec.clusterIP: "), "\(imported.stderr)")
        let strict = try runCLI(["import", "-f", "-", "--strict"], environment: environment, input: manifest)
        #expect(strict.status == 2)
        #expect(strict.stdout.isEmpty)
        #expect(strict.stderr.hasPrefix("error: documents[0].spec.clusterIP: "), "\(strict.stderr)")
        #expect(try runCLI(["get", "service", "db"], environment: environment).status == 2)
    }

    @Test func renderExitsAsApplyOnFilesThatAreMissingOrInvalid() throws {
        let directory = try registrationDirectory(["bad.yaml": "name: Bad_Name\nports: [{port: 80}]\n", "etcd.yaml": etcdFile])
        let bad = directory.appending(path: "bad.yaml").path()
        let missing = directory.appending(path: "missing.yaml").path()
        for (file, said) in [(bad, "error: \(bad) document 0: name: "), (missing, "error: \(missing) does not exist")] {
            let rendered = try runCLI(["render", file, directory.appending(path: "etcd.yaml").path()])
            #expect(rendered.status == 2 && rendered.stdout.isEmpty, "\(rendered.stderr)")
            #expect(rendered.stderr.hasPrefix(said), "\(rendered.stderr)")
            let applied = try runCLI(["apply", "-f", file], environment: environment)
            #expect(applied.status == 2 && applied.stderr.hasPrefix(said), "\(applied.stderr)")
        }
        #expect(try runCLI(["render", "--format", "xml", bad]).status == 64)
    }

    @Test func exitStatuses() throws {
        #expect(try runCLI(["get", "service", "missing"], environment: environment).status == 2)
        // As kubectl: a named service that does not exist prints its error, not an empty list.
        for format in ["json", "yaml", "name"] {
            let missing = try runCLI(["get", "service", "missing", "-o", format], environment: environment)
            #expect(missing.status == 2 && missing.stdout.isEmpty && missing.stderr.contains("missing"), "\(format): \(missing)")
        }
        #expect(try runCLI(["get", "pods"], environment: environment).status == 64)
        let unreachable = try runCLI(["get", "services", "--server", "http://127.0.0.1:1"], environment: environment)
        #expect(unreachable.status == 3)
        #expect(unreachable.stderr.hasPrefix("error: GET http://127.0.0.1:1/v1/services: connection failed"))
        #expect(try runCLI(["healthcheck", "--port", String(server.port)]).status == 0)
        #expect(try runCLI(["healthcheck", "--ready", "--port", String(server.port)]).status == 0)
        #expect(try runCLI(["healthcheck", "--port", "1"]).status == 1)
        // As in the container: a wildcard host is probed on loopback, and an anonymous
        // configuration on it does not stop the probe.
        let containerLike = ["ENDPOINT_REGISTRY_HOST": "0.0.0.0", "ENDPOINT_REGISTRY_PORT": String(server.port)]
        #expect(try runCLI(["healthcheck"], environment: containerLike).status == 0)
        let completion = try runCLI(["--generate-completion-script", "bash"])
        #expect(completion.status == 0 && completion.stdout.contains("apply") && completion.stdout.contains("--prune-all"))
    }

    @Test func kubectlRunsTheBinaryAsAPlugin() throws {
        guard let kubectl = Paths.kubectl else {
            print("skipped: no kubectl (set KUBECTL, or run scripts/test, which installs one into .venv), so the plugin cannot be tried through it")
            return
        }
        let bin = try registrationDirectory([:])
        try FileManager.default.createSymbolicLink(at: bin.appending(path: "kubectl-registry"), withDestinationURL: Paths.binary)
        #expect(try runCLI(["apply", "-f", "-"], environment: environment, input: etcdFile).status == 0)
        var pluginEnvironment = environment
        pluginEnvironment["PATH"] = bin.path() + ":/usr/bin:/bin"
        pluginEnvironment["KUBECONFIG"] = bin.appending(path: "no-kubeconfig").path()
        let listed = try runCLI(["plugin", "list"], environment: pluginEnvironment, executable: kubectl)
        #expect(listed.stdout.contains("kubectl-registry"))
        let get = try runCLI(["registry", "get", "services", "-o", "name"], environment: pluginEnvironment, executable: kubectl)
        #expect(get.status == 0, "\(get.stderr)")
        #expect(get.stdout == "service/etcd\n")
        let help = try runCLI(["registry", "--help"], environment: pluginEnvironment, executable: kubectl)
        #expect(help.stdout.contains("USAGE: kubectl registry <subcommand>"))
        #expect(!help.stdout.contains("render"))
        let failed = try runCLI(["registry", "get", "service", "missing"], environment: pluginEnvironment, executable: kubectl)
        #expect(failed.status == 2)
    }
}

/// The client against a server with tokens: the token comes from a file or the environment, and
/// a refusal exits 4.
@Suite struct CLIAuthenticationTests {
    @Test func tokensFromAFileOrTheEnvironment() throws {
        let tokens = try writeTokensFile([
            ("writer", "editor", #"["*"]"#, "editor-token-0123456789"), ("prometheus", "metrics", #"["*"]"#, "metrics-token-0123456789"),
        ])
        let server = try TestServer { $0.tokensFile = tokens }
        let environment = ["ENDPOINT_REGISTRY_URL": "http://127.0.0.1:\(server.port)"]
        let anonymous = try runCLI(["get", "services"], environment: environment)
        #expect(anonymous.status == 4)
        #expect(anonymous.stderr.hasPrefix("error: this route needs a bearer token"))
        let tokenFile = try registrationDirectory(["token": "editor-token-0123456789\n"]).appending(path: "token")
        #expect(try runCLI(["apply", "-f", "-", "--token-file", tokenFile.path()], environment: environment, input: etcdFile).status == 0)
        var withToken = environment
        withToken["ENDPOINT_REGISTRY_TOKEN"] = "editor-token-0123456789"
        #expect(try runCLI(["get", "services", "-o", "name"], environment: withToken).stdout == "service/etcd\n")
        withToken["ENDPOINT_REGISTRY_TOKEN"] = "metrics-token-0123456789"
        #expect(try runCLI(["get", "services"], environment: withToken).status == 4)
        // There is no flag that takes a token itself.
        #expect(try runCLI(["get", "services", "--token", "editor-token-0123456789"], environment: environment).status == 64)
    }
}

/// Server-side pieces the client relies on: `dryRun` on writes, entity tags on lists, and the
/// metrics-only role.
@Suite struct ClientSupportRouteTests {
    let server: TestServer
    let client: RawHTTPClient

    init() throws {
        server = try TestServer()
        client = try server.client()
    }

    @Test func dryRunWritesDecideWithoutWriting() throws {
        let body = #"{"ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"}]}"#
        let created = try client.request("PUT", "/v1/services/default/web?dryRun=true", json: body)
        #expect(created.status == 201)
        #expect(created.json?["revision"] as? Int == 1)
        #expect(try client.request("GET", "/v1/services/default/web").status == 404)
        #expect(try client.request("POST", "/v1/services?dryRun=true", json: #"{"name":"web","ports":[{"port":80}]}"#).status == 201)
        #expect(try client.request("GET", "/v1/services/default/web").status == 404)
        // Validation still answers.
        let invalid = try client.request("PUT", "/v1/services/default/web?dryRun=true", json: #"{"ports":[{"port":0}]}"#)
        #expect(invalid.status == 422)
        #expect(invalid.problemFields == ["ports[0].port"])
        #expect(try client.request("PUT", "/v1/services/default/web", json: body).status == 201)
        let etag = try #require(try client.request("GET", "/v1/services/default/web").header("ETag"))
        // Preconditions too.
        let stale = try client.request("PUT", "/v1/services/default/web?dryRun=true", headers: ["If-Match": "\"9-00000000\""], json: body)
        #expect(stale.status == 412)
        let changed = try client.request(
            "PUT", "/v1/services/default/web?dryRun=true", headers: ["If-Match": etag], json: #"{"ports":[{"port":81}]}"#)
        #expect(changed.status == 200 && changed.json?["revision"] as? Int == 2)
        let patched = try client.request(
            "PATCH", "/v1/services/default/web?dryRun=true", body: Array(#"{"description":"x"}"#.utf8), contentType: "application/merge-patch+json")
        #expect(patched.status == 200 && patched.json?["description"] as? String == "x")
        #expect(try client.request("DELETE", "/v1/services/default/web?dryRun=true").status == 204)
        let after = try client.request("GET", "/v1/services/default/web")
        #expect(after.status == 200 && after.header("ETag") == etag && after.json?["description"] == nil)
        // A dry run deletes nothing anywhere, cascade or not.
        let cascade = try client.request("DELETE", "/v1/services/default/web?dryRun=true&cascade=true")
        #expect(cascade.status == 204)
        #expect(try client.request("GET", "/v1/services/default/web").status == 200)
        // Nothing of the dry runs is in the history.
        let history = try client.request("GET", "/v1/services/default/web/history")
        #expect((history.json?["items"] as? [[String: Any]])?.count == 1)
    }

    @Test(arguments: ["/v1/services", "/v1/manifests?format=yaml", "/v1/services?namespace=default", "/v1/manifests"])
    func listsAnswerConditionalRequests(_ target: String) throws {
        #expect(try client.request("POST", "/v1/services", json: #"{"name":"a","ports":[{"port":80}]}"#).status == 201)
        let first = try client.request("GET", target)
        let etag = try #require(first.header("ETag"))
        let notModified = try client.request("GET", target, headers: ["If-None-Match": etag])
        #expect(notModified.status == 304 && notModified.body.isEmpty && notModified.header("ETag") == etag)
        // The weak comparison of If-None-Match (GET /v1/services' tag is weak already).
        #expect(try client.request("GET", target, headers: ["If-None-Match": etag.hasPrefix("W/") ? etag : "W/\(etag)"]).status == 304)
        // Every kind of write changes it: create, update, delete.
        var seen: Set<String> = [etag]
        let writes: [(String, String, String?)] = [
            ("POST", "/v1/services", #"{"name":"b","ports":[{"port":80}]}"#),
            ("PATCH", "/v1/services/default/a", #"{"description":"d"}"#),
            ("DELETE", "/v1/services/default/b", nil),
        ]
        for (method, path, body) in writes {
            let answer = try client.request(
                method, path, body: body.map { Array($0.utf8) }, contentType: method == "PATCH" ? "application/merge-patch+json" : "application/json")
            #expect(answer.status < 300)
            let fresh = try client.request("GET", target, headers: ["If-None-Match": etag])
            #expect(fresh.status == 200)
            let tag = try #require(fresh.header("ETag"))
            #expect(!seen.contains(tag), "\(method) \(path) did not change the list's ETag")
            seen.insert(tag)
        }
        // A no-op write changes nothing, so the tag stays.
        let current = try #require(try client.request("GET", target).header("ETag"))
        #expect(
            try client.request(
                "PATCH", "/v1/services/default/a", body: Array(#"{"description":"d"}"#.utf8), contentType: "application/merge-patch+json"
            ).status == 200)
        #expect(try client.request("GET", target, headers: ["If-None-Match": current]).status == 304)
    }

    @Test func theMetricsRoleMayOnlyScrapeMetrics() throws {
        let tokens = try writeTokensFile([("prometheus", "metrics", #"["*"]"#, "metrics-token-0123456789")])
        let server = try TestServer { $0.tokensFile = tokens }
        let client = try server.client()
        let bearer = ["Authorization": "Bearer metrics-token-0123456789"]
        let metrics = try client.request("GET", "/metrics", headers: bearer)
        #expect(metrics.status == 200 && metrics.text.contains("endpoint_registry_services"))
        for target in ["/v1/services", "/v1/manifests", "/v1/clusters", "/v1/audit"] {
            let refused = try client.request("GET", target, headers: bearer)
            #expect(refused.status == 403, "\(target)")
        }
        #expect(try client.request("GET", "/metrics").status == 401)
    }
}
