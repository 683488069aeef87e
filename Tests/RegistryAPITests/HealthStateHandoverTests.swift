import Coordination
import Foundation
import Liveness
import RegistryAPI
import Synchronization
import TestSupport
import Testing

/// Issue 16: health verdicts live in the store, so that the next leader (here: a new server on
/// the same database) starts from the last verdicts instead of from `unknown`.
@Suite struct HealthStateHandoverTests {
    static let body = #"""
        {"name":"rgw","ports":[{"port":80,"targetPort":8080}],
         "addresses":[{"ip":"192.0.2.10"},{"ip":"192.0.2.11"}],
         "healthCheck":{"type":"tcp","intervalSeconds":2,"timeoutSeconds":1,"healthyThreshold":10,"unhealthyThreshold":1}}
        """#

    /// The state of each address in `GET …/health`, by IP.
    static func states(_ client: RawHTTPClient, of name: String = "rgw") throws -> [String: String] {
        let health = try client.request("GET", "/v1/services/default/\(name)/health")
        var states: [String: String] = [:]
        for address in (health.json?["addresses"] as? [[String: Any]]) ?? [] {
            if let ip = address["ip"] as? String, let state = (address["health"] as? [String: Any])?["state"] as? String { states[ip] = state }
        }
        return states
    }

    @Test func aNewServerStartsFromTheStoredVerdicts() throws {
        let prober = TableProber()
        prober.failing.withLock { $0 = [ProbeTarget(ip: "192.0.2.10", port: 8080)] }
        var first: TestServer? = try TestServer(prober: prober)
        let databasePath = try #require(first).databasePath
        let client = try #require(first).client()
        let created = try client.request("POST", "/v1/services", json: Self.body)
        #expect(created.status == 201, "\(created.text)")
        // One failure makes 192.0.2.10 unhealthy; 192.0.2.11 needs 10 successes to be healthy.
        #expect(try eventually { try Self.states(client)["192.0.2.10"] == "unhealthy" })
        // Shut down (its deinit): the lease is handed over after the last verdicts are stored.
        first = nil

        // The next server's probes all succeed: without the stored verdict 192.0.2.10 would go
        // from unknown towards healthy (10 successes, ≥ 18 s) and never be unhealthy.
        let next = try TestServer(prober: TableProber()) { $0.databasePath = databasePath }
        let nextClient = try next.client()
        #expect(try eventually { try Self.states(nextClient)["192.0.2.10"] == "unhealthy" })
        let health = try nextClient.request("GET", "/v1/services/default/rgw/health")
        let addresses = (health.json?["addresses"] as? [[String: Any]]) ?? []
        let dead = addresses.first { $0["ip"] as? String == "192.0.2.10" }
        #expect(dead?["effectiveReady"] as? Bool == false, "\(health.text)")
        #expect((dead?["health"] as? [String: Any])?["lastError"] as? String == "connection refused: table", "\(health.text)")
        // The first server's event came along.
        let events = (health.json?["events"] as? [[String: Any]]) ?? []
        #expect(events.contains { $0["ip"] as? String == "192.0.2.10" && $0["to"] as? String == "unhealthy" }, "\(health.text)")
    }

    /// A replica that does not lead probes nothing, yet shows the leader's verdicts (read from
    /// the store): its own prober would find every address healthy.
    @Test func aFollowerShowsTheLeadersVerdicts() throws {
        let url = try TestPostgres.shared().createDatabaseURL()
        let failing = TableProber()
        failing.failing.withLock { $0 = [ProbeTarget(ip: "192.0.2.10", port: 8080)] }
        let leader = try TestServer(prober: failing) { $0.postgresURL = url }
        let follower = try TestServer(prober: TableProber()) { $0.postgresURL = url }
        #expect(leader.service.elector.isLeading)
        #expect(!follower.service.elector.isLeading)
        let client = try follower.client()
        let body = Self.body.replacingOccurrences(of: #""healthyThreshold":10"#, with: #""healthyThreshold":1"#)
        #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        #expect(try eventually { try Self.states(client) == ["192.0.2.10": "unhealthy", "192.0.2.11": "healthy"] })
        let health = try client.request("GET", "/v1/services/default/rgw/health")
        let dead = ((health.json?["addresses"] as? [[String: Any]]) ?? []).first { $0["ip"] as? String == "192.0.2.10" }
        #expect(dead?["effectiveReady"] as? Bool == false, "\(health.text)")
        // What the follower renders leaves the dead address out of the ready ones.
        let manifests = try client.request("GET", "/v1/services/default/rgw/manifests", headers: ["Accept": "application/json"])
        #expect(manifests.status == 200)
        #expect(manifests.text.contains(#""ready":false"#) || manifests.text.contains("notReadyAddresses"), "\(manifests.text)")
        // The leader's next verdict reaches the follower too.
        failing.failing.withLock { $0 = [] }
        #expect(try eventually { try Self.states(client) == ["192.0.2.10": "healthy", "192.0.2.11": "healthy"] })
    }

    /// A follower resolves no name either: it shows the leader's answers (and the verdicts on
    /// the addresses they resolve to), even when its own resolver would fail.
    @Test func aFollowerShowsTheLeadersDNSAnswers() throws {
        let url = try TestPostgres.shared().createDatabaseURL()
        let resolver = TableResolver()
        resolver.answers.withLock { $0["db.example.com"] = .success(["192.0.2.20"]) }
        let failing = TableProber()
        failing.failing.withLock { $0 = [ProbeTarget(ip: "192.0.2.20", port: 5432)] }
        let leader = try TestServer(resolver: resolver, prober: failing) { $0.postgresURL = url }
        let broken = TableResolver()
        broken.answers.withLock { $0["db.example.com"] = .failure(.failed("no resolver on this replica")) }
        let follower = try TestServer(resolver: broken, prober: TableProber()) { $0.postgresURL = url }
        #expect(leader.service.elector.isLeading && !follower.service.elector.isLeading)
        let client = try follower.client()
        let body = #"""
            {"name":"db","ports":[{"port":5432}],"addresses":[{"host":"db.example.com"}],
             "healthCheck":{"type":"tcp","intervalSeconds":2,"timeoutSeconds":1,"healthyThreshold":1,"unhealthyThreshold":1}}
            """#
        #expect(try client.request("POST", "/v1/services", json: body).status == 201)
        #expect(
            try eventually {
                try client.request("GET", "/v1/services/default/db/manifests", headers: ["Accept": "application/json"]).text.contains("192.0.2.20")
            })
        let unhealthy = try eventually { try Self.states(client, of: "db") == ["192.0.2.20": "unhealthy"] }
        #expect(unhealthy, "\((try? client.request("GET", "/v1/services/default/db/health").text) ?? "")")
    }
}
