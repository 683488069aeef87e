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
    static func states(_ client: RawHTTPClient) throws -> [String: String] {
        let health = try client.request("GET", "/v1/services/default/rgw/health")
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
}
