import TestSupport
import Foundation
import Testing

@testable import PostgresStorage

@Suite struct SettingsTests {
    @Test func tellsAnSQLiteFileFromAPostgreSQLURLAndRefusesOtherURLs() throws {
        for url in ["postgres://db/registry", "postgresql://registry@db/registry", "POSTGRES://db/registry"] {
            #expect(try PostgresConnectionSettings.kind(of: url) == .postgreSQL, "\(url)")
        }
        for path in ["./data/registry.sqlite", "/var/lib/registry.sqlite", "registry.sqlite", "./postgres:/registry", "", "1db:x"] {
            #expect(try PostgresConnectionSettings.kind(of: path) == .sqliteFile, "\(path)")
        }
        // A mistyped URL is not an SQLite file named "postgres:/…": each replica would serve an
        // empty database of its own. The error names the scheme only, never the password.
        for (value, scheme) in [
            ("postgres:/registry", "postgres"), ("postgres:registry", "postgres"), ("postgress://registry:s3cret@db/registry", "postgress"),
            ("mysql://db/registry", "mysql"), ("file:registry.sqlite", "file"),
        ] {
            let error = try #require(throws: PostgresSettingsError.self) { try PostgresConnectionSettings.kind(of: value) }
            #expect(error == .notADatabaseURL(scheme: scheme))
            #expect(error.description.contains("\"\(scheme):…\" is neither a PostgreSQL URL"))
            #expect(!error.description.contains("s3cret"))
        }
    }

    @Test func parsesEveryPartOfAURL() throws {
        for scheme in ["postgres", "postgresql"] {
            let settings = try PostgresConnectionSettings(
                url: "\(scheme)://registry:s%40cret@db.example:5433/endpoints?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=7",
                environment: [:])
            #expect(settings.user == "registry")
            #expect(settings.password == .url("s@cret"))
            #expect(settings.host == "db.example")
            #expect(settings.port == 5433)
            #expect(settings.database == "endpoints")
            #expect(settings.sslMode == .verifyFull)
            #expect(settings.parameters == ["sslrootcert": "/etc/ca.pem"])
            #expect(settings.connectTimeout == .seconds(7))
        }
    }

    @Test func leavesOutWhatTheURLDoesNotSay() throws {
        let settings = try PostgresConnectionSettings(url: "postgresql://", environment: [:])
        #expect(settings.host == nil && settings.port == nil && settings.database == nil && settings.user == nil)
        #expect(settings.password == PostgresConnectionSettings.PasswordSource.none)
        #expect(settings.sslMode == nil)
        #expect(settings.connectTimeout == .seconds(5))
    }

    @Test func readsUnixSocketAndIPv6Hosts() throws {
        let encoded = try PostgresConnectionSettings(url: "postgresql://%2Fvar%2Frun%2Fpostgresql:5432/registry", environment: [:])
        #expect(encoded.host == "/var/run/postgresql")
        #expect(encoded.database == "registry")
        let parameter = try PostgresConnectionSettings(url: "postgresql:///registry?host=/tmp/sockets&port=6000", environment: [:])
        #expect(parameter.host == "/tmp/sockets")
        #expect(parameter.port == 6000)
        let ipv6 = try PostgresConnectionSettings(url: "postgres://[::1]:5432/registry", environment: [:])
        #expect(ipv6.host == "::1")
        #expect(ipv6.port == 5432)
        #expect(ipv6.description == "postgresql://[::1]:5432/registry")
    }

    /// Several servers, tried in order by libpq; with target_session_attrs=read-write it skips standbys.
    @Test func readsSeveralHosts() throws {
        let settings = try PostgresConnectionSettings(
            url: "postgresql://registry@db1:5432,[fd00::2],db3:6432/registry?target_session_attrs=read-write", environment: [:])
        #expect(settings.host == "db1" && settings.port == 5432)
        #expect(settings.fallbackHosts == [.init(host: "fd00::2"), .init(host: "db3", port: 6432)])
        #expect(settings.description == "postgresql://registry@db1:5432,[fd00::2],db3:6432/registry?target_session_attrs=read-write")
        let parameters = Dictionary(try settings.connectionParameters(), uniquingKeysWith: { first, _ in first })
        #expect(parameters["host"] == "db1,fd00::2,db3")
        #expect(parameters["port"] == "5432,,6432")
        #expect(parameters["target_session_attrs"] == "read-write")
        let inQuery = try PostgresConnectionSettings(url: "postgresql:///registry?host=/run/a,/run/b&port=5432,5433", environment: [:])
        #expect(inQuery.host == "/run/a" && inQuery.port == 5432)
        #expect(inQuery.fallbackHosts == [.init(host: "/run/b", port: 5433)])
    }

    /// A password file that cannot be read says why in words, as `cat` would, not as a
    /// Foundation error code.
    @Test func namesWhyThePasswordFileCannotBeRead() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "pgpass-\(UUID().uuidString)").path()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let binary = directory + "/binary"
        try Data([0x70, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: binary))
        for (path, reason) in [(directory, "is a directory"), (directory + "/missing", "does not exist"), (binary, "is not UTF-8 text")] {
            let settings = try PostgresConnectionSettings(url: "postgres://u@h/d", passwordFile: path, environment: [:])
            let error = try #require(throws: PostgresError.self) { try settings.resolvedPassword() }
            #expect(error.message == "cannot read the password file \(path): it \(reason)", "\(error.message)")
        }
    }

    @Test func takesThePasswordFromTheURLThenTheFileThenPGPASSWORD() throws {
        let environment = ["PGPASSWORD": "from-environment"]
        let inURL = try PostgresConnectionSettings(url: "postgres://u:from-url@h/d", passwordFile: "/run/secret", environment: environment)
        #expect(inURL.password == .url("from-url"))
        let inFile = try PostgresConnectionSettings(url: "postgres://u@h/d", passwordFile: "/run/secret", environment: environment)
        #expect(inFile.password == .file("/run/secret"))
        let inEnvironment = try PostgresConnectionSettings(url: "postgres://u@h/d", environment: environment)
        #expect(inEnvironment.password == .environment("from-environment"))
        #expect(try inEnvironment.resolvedPassword() == "from-environment")
    }

    @Test func readsThePasswordFileAgainForEveryConnection() throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "pg-password-\(UUID().uuidString)").path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let settings = try PostgresConnectionSettings(url: "postgres://u@h/d", passwordFile: path, environment: [:])
        try "first\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try settings.resolvedPassword() == "first")
        try "rotated".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try settings.resolvedPassword() == "rotated")
        try FileManager.default.removeItem(atPath: path)
        #expect(throws: PostgresError.self) { try settings.resolvedPassword() }
    }

    /// The password never appears in `description` (which logs and error messages use).
    @Test func descriptionNeverShowsThePassword() throws {
        let secret = "hunter2-secret"
        let cases: [(PostgresConnectionSettings, String)] = [
            (
                try PostgresConnectionSettings(url: "postgres://registry:\(secret)@db:5432/registry?sslmode=require", environment: [:]),
                "postgresql://registry:***@db:5432/registry?sslmode=require"
            ),
            (
                try PostgresConnectionSettings(url: "postgres://db/registry?password=\(secret)&user=registry", environment: [:]),
                "postgresql://registry:***@db/registry"
            ),
            (
                try PostgresConnectionSettings(url: "postgres://registry@db/registry", passwordFile: "/run/secrets/pg", environment: [:]),
                "postgresql://registry@db/registry (password from file /run/secrets/pg)"
            ),
            (
                try PostgresConnectionSettings(url: "postgres://registry@db/registry", environment: ["PGPASSWORD": secret]),
                "postgresql://registry@db/registry (password from PGPASSWORD)"
            ),
        ]
        for (settings, expected) in cases {
            #expect(settings.description == expected)
            #expect(!settings.description.contains(secret))
            #expect(!"\(settings)".contains(secret))
        }
    }

    @Test func refusesWhatItCannotUse() {
        let refusals: [(String, PostgresSettingsError)] = [
            ("mysql://u:p@h/d", .scheme),
            ("postgres://h:0/d", .badPort("0")),
            ("postgres://h:99999/d", .badPort("99999")),
            ("postgres://h:abc/d", .badPort("abc")),
            ("postgres://h1,h2:x/d", .badPort("x")),
            ("postgres://h/d?target_session_attrs=leader", .badParameter(name: "target_session_attrs", value: "leader", reason: "")),
            ("postgres://h/d?sslmode=sometimes", .badParameter(name: "sslmode", value: "sometimes", reason: "")),
            ("postgres://h/d?sslmod=require", .unknownParameter("sslmod")),
            ("postgres://h/d?connect_timeout=soon", .badParameter(name: "connect_timeout", value: "soon", reason: "")),
            ("postgres://h/d/e", .malformed("")),
        ]
        for (url, expected) in refusals {
            do {
                _ = try PostgresConnectionSettings(url: url, environment: [:])
                Issue.record("\(url) was accepted")
            } catch {
                switch (error, expected) {
                case (.badParameter(let name, let value, _), .badParameter(let expectedName, let expectedValue, _)):
                    #expect(name == expectedName && value == expectedValue, "\(url)")
                case (.malformed, .malformed): break
                default: #expect(error == expected, "\(url)")
                }
            }
        }
    }

    @Test func aRefusedURLDoesNotEchoThePassword() {
        do {
            _ = try PostgresConnectionSettings(url: "postgres://u:hunter2-secret@h:badport/d", environment: [:])
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test func givesLibpqTimeoutsAndTheSessionSettings() throws {
        var settings = try PostgresConnectionSettings(url: "postgres://u@h/d", environment: [:])
        settings.statementTimeout = .milliseconds(1500)
        let parameters = Dictionary(try settings.connectionParameters(), uniquingKeysWith: { first, _ in first })
        #expect(parameters["connect_timeout"] == "5")
        #expect(parameters["options"]?.contains("-c statement_timeout=1500") == true)
        #expect(parameters["tcp_user_timeout"] == "15000")
        #expect(parameters["application_name"] == "endpoint-registry")
        #expect(parameters["password"] == nil)
    }
}
