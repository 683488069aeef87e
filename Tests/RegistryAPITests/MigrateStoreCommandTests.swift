import Foundation
import TestSupport
import Testing

/// `endpoint-registry migrate-store` with the real binary: the SQLite database a running server
/// wrote is copied into PostgreSQL while that server still holds it, and a server started on
/// the PostgreSQL URL answers as the first did.
@Suite(.serialized) struct MigrateStoreCommandTests {
    /// The answers that must survive the move: every service (body and ETag), the history of
    /// each and the audit log.
    private static func answers(_ port: UInt16, names: [String]) throws -> [String: String] {
        let client = try RawHTTPClient(port: port)
        var answers: [String: String] = [:]
        for name in names {
            let service = try client.request("GET", "/v1/services/default/\(name)")
            // (A problem document names the request: only its status is compared.)
            answers["service \(name)"] =
                service.status == 200
                ? "\(service.header("ETag") ?? "-") \(String(decoding: service.body, as: UTF8.self))" : "\(service.status)"
            let history = try client.request("GET", "/v1/services/default/\(name)/history?limit=1000")
            #expect(history.status == 200)
            answers["history \(name)"] = String(decoding: history.body, as: UTF8.self)
        }
        let list = try client.request("GET", "/v1/services?limit=1000")
        answers["list"] = String(decoding: list.body, as: UTF8.self)
        let audit = try client.request("GET", "/v1/audit?limit=1000")
        #expect(audit.status == 200)
        answers["audit"] = String(decoding: audit.body, as: UTF8.self)
        return answers
    }

    @Test func migratesTheDatabaseOfARunningServerToPostgreSQLAndServesItThere() throws {
        let server = try ServerProcess(["--durability", "normal"])
        let database = server.directory.appending(path: "db.sqlite").path()
        let client = try RawHTTPClient(port: server.port)
        #expect(
            try client.request(
                "POST", "/v1/services", json: #"{"name":"rgw","labels":{"app":"rgw"},"ports":[{"port":443}],"addresses":[{"ip":"10.0.0.1"}]}"#
            )
            .status == 201)
        // Addresses one by one: the history keeps patches.
        for index in 2...15 {
            #expect(try client.request("POST", "/v1/services/default/rgw/addresses", json: #"{"ip":"10.0.0.\#(index)"}"#).status == 201)
        }
        for name in ["etcd", "gone"] {
            #expect(try client.request("POST", "/v1/services", json: #"{"name":"\#(name)","ports":[{"port":2379}]}"#).status == 201)
        }
        #expect(try client.request("DELETE", "/v1/services/default/gone").status == 204)
        // A large service: its document is kept apart, a whole part and patches (issue 14).
        let many = (0..<2_500).map { #"{"ip":"10.1.\#($0 / 250).\#($0 % 250 + 1)"}"# }.joined(separator: ",")
        #expect(try client.request("POST", "/v1/services", json: #"{"name":"big","ports":[{"port":80}],"addresses":[\#(many)]}"#).status == 201)
        for index in 1...3 {
            #expect(try client.request("POST", "/v1/services/default/big/addresses", json: #"{"ip":"10.9.0.\#(index)"}"#).status == 201)
        }
        let names = ["rgw", "etcd", "gone", "big"]
        let before = try Self.answers(server.port, names: names)

        // Over TCP with the password from a file: the password is never printed.
        let postgres = try TestPostgres.shared()
        let socketURL = try postgres.createDatabaseURL()
        let databaseName = try #require(socketURL.split(separator: "/").last)
        let url = "postgresql://postgres@127.0.0.1:\(postgres.port)/\(databaseName)?sslmode=disable"
        let passwordFile = server.directory.appending(path: "pg-password").path()
        try (TestPostgres.password + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)

        // The server still runs and holds its database: the copy reads a snapshot beside it.
        let result = try runCLI(["migrate-store", "--from", database, "--to", url, "--database-password-file", passwordFile])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("copied \(database) (schema version ") == true, "\(result.stdout)")
        #expect(lines.first?.contains("to \(url) (password from file \(passwordFile)) (schema version ") == true, "\(result.stdout)")
        for table in [
            "services", "service_document_parts", "service_revisions", "watch_state", "watch_events", "audit_log", "audit_log_targets",
            "audit_state", "push_state", "reconcile_state", "health_state",
        ] {
            #expect(lines.contains { $0.hasPrefix("\(table): ") && $0.contains(" copied (sha256 ") }, "\(table): \(result.stdout)")
        }
        #expect(lines.contains { $0.hasPrefix("services: 3 rows copied") }, "\(result.stdout)")
        #expect(lines.contains { $0.hasPrefix("service_document_parts: 4 rows copied") }, "\(result.stdout)")
        #expect(lines.last?.hasPrefix("verified: 11 tables, ") == true, "\(result.stdout)")
        #expect(!(result.stdout + result.stderr).contains(TestPostgres.password))

        // Once more into the same database: refused, nothing changed.
        let again = try runCLI(
            ["migrate-store", "--from", database, "--to", url], environment: ["ENDPOINT_REGISTRY_DATABASE_PASSWORD_FILE": passwordFile])
        #expect(again.status == 1)
        #expect(
            again.stderr.hasPrefix("error: the destination \(url) (password from file \(passwordFile)) is not empty (services: 3 rows"),
            "\(again.stderr)")
        #expect(again.stdout.isEmpty)

        // The replicas start on the URL and serve what the SQLite server served.
        server.signal(SIGTERM)
        server.process.waitUntilExit()
        let replica = try ServerProcess(["--database-password-file", passwordFile], database: url)
        let after = try Self.answers(replica.port, names: names)
        for (key, answer) in before { #expect(after[key] == answer, "\(key)") }
        // And writes go on there (ids and revisions follow the copied ones).
        let replicaClient = try RawHTTPClient(port: replica.port)
        let added = try replicaClient.request("POST", "/v1/services/default/rgw/addresses", json: #"{"ip":"10.0.0.99"}"#)
        #expect(added.status == 201)
        let history = try replicaClient.request("GET", "/v1/services/default/rgw/history?limit=1000")
        #expect(((history.json?["items"] as? [[String: Any]]) ?? []).count == 16)
        #expect(try replicaClient.request("POST", "/v1/services", json: #"{"name":"new","ports":[{"port":80}]}"#).status == 201)
    }

    @Test func refusesWrongUsageAndAMissingSourceWithoutEchoingThePassword() throws {
        let bad = try runCLI(["migrate-store", "--from", "/tmp/x.sqlite", "--to", "postgres://registry:s3cret@db.example.com:99999/registry"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--to: PostgreSQL URL: port must be a number"), "\(bad.stderr)")
        #expect(!bad.stderr.contains("s3cret"))

        let mistyped = try runCLI(["migrate-store", "--from", "/tmp/x.sqlite", "--to", "postgres:/registry:s3cret@db.example.com/registry"])
        #expect(mistyped.status == 64)
        #expect(mistyped.stderr.contains("--to: \"postgres:…\" is neither a PostgreSQL URL"), "\(mistyped.stderr)")
        #expect(!mistyped.stderr.contains("s3cret"))
        #expect(!FileManager.default.fileExists(atPath: "postgres:"), "no SQLite file was created for the mistyped URL")

        let same = try runCLI(["migrate-store", "--from", "/tmp/a.sqlite", "--to", "/tmp/a.sqlite"])
        #expect(same.status == 64)
        #expect(same.stderr.contains("--from and --to name the same database"))

        let directory = FileManager.default.temporaryDirectory.appending(path: "migrate-missing-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let missing = directory.appending(path: "missing.sqlite").path()
        let target = directory.appending(path: "target.sqlite").path()
        let result = try runCLI(["migrate-store", "--from", missing, "--to", target])
        #expect(result.status == 1)
        #expect(result.stderr == "error: no database file at \(missing)\n")
        #expect(!FileManager.default.fileExists(atPath: target))
    }

    /// PostgreSQL back into a new SQLite file, which a server then serves.
    @Test func migratesPostgreSQLBackIntoANewSQLiteFile() throws {
        let url = try TestPostgres.shared().createDatabaseURL()
        let first = try ServerProcess([], database: url)
        let client = try RawHTTPClient(port: first.port)
        #expect(
            try client.request("POST", "/v1/services", json: #"{"name":"db","ports":[{"port":5432}],"addresses":[{"ip":"10.1.1.1"}]}"#).status == 201)
        #expect(try client.request("POST", "/v1/services/default/db/addresses", json: #"{"ip":"10.1.1.2"}"#).status == 201)
        let before = try Self.answers(first.port, names: ["db"])
        first.signal(SIGTERM)
        first.process.waitUntilExit()

        let file = first.directory.appending(path: "back.sqlite").path()
        let result = try runCLI(["migrate-store", "--from", url, "--to", file])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\nservices: 1 row copied"), "\(result.stdout)")
        let server = try ServerProcess([], database: file)
        #expect(try Self.answers(server.port, names: ["db"]) == before)
    }
}
