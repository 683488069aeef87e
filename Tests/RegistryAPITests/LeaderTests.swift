import Coordination
import Foundation
import HTTPServer
import Reconciler
import RegistryAPI
import RegistryStorage
import Synchronization
import TestSupport
import Testing

/// A lease shared with another (imaginary) replica: the test says whether this process may
/// have it; while it may not, "other-replica" holds it.
final class SwitchableLease: LeaderLease {
    let holder: String
    let ttl: Duration = .milliseconds(600)
    private struct State {
        var granted = false
        var generation = 6
        var held: String? = "other-replica"
        var acquiredAt = Date()
    }
    private let state = Mutex(State())

    init(holder: String) { self.holder = holder }

    /// Lets this process acquire the lease (true), or gives it to the other replica (false).
    func grant(_ granted: Bool) {
        state.withLock { state in
            state.granted = granted
            if !granted {
                state.generation += 1
                state.held = "other-replica"
                state.acquiredAt = Date()
            }
        }
    }

    func acquire() -> LeaderTerm? {
        state.withLock { state in
            guard state.granted else { return nil }
            if state.held != holder {
                state.generation += 1
                state.held = holder
                state.acquiredAt = Date()
            }
            return LeaderTerm(name: "background", holder: holder, generation: state.generation, validUntil: .now + ttl)
        }
    }

    func renew(_ term: LeaderTerm) -> LeaderTerm? {
        state.withLock { state in
            guard state.held == holder, state.generation == term.generation else { return nil }
            var renewed = term
            renewed.validUntil = .now + ttl
            return renewed
        }
    }

    func release(_ term: LeaderTerm) {
        state.withLock { state in
            if state.held == holder, state.generation == term.generation { state.held = nil }
        }
    }

    func status() -> LeaderLeaseStatus? {
        state.withLock { state in
            LeaderLeaseStatus(
                holder: state.held ?? holder, generation: state.generation, isHeld: state.held != nil, expiresInMilliseconds: 600,
                acquiredAt: state.acquiredAt)
        }
    }
}

private let bound =
    #"{"namespace":"storage","name":"rgw","ports":[{"port":80}],"addresses":[{"ip":"192.168.7.50","port":8080}],"endpointsMode":"endpointslices","clusters":["token"]}"#

/// `GET /v1/leader` and the gating of the background work on leadership, through the real server.
@Suite struct LeaderTests {
    /// With SQLite the process leads at once, in generation 1, and says so. (Alone on its
    /// PostgreSQL database, a replica also leads at once, in generation 1, with a lease that
    /// counts down from the TTL.)
    @Test func sqliteLeadsAtOnce() throws {
        let server = try TestServer { $0.leaderIdentity = "replica-a-test" }
        let local = TestStore.current == .sqlite
        let client = try server.client()
        let response = try client.request("GET", "/v1/leader")
        #expect(response.status == 200)
        let body = try #require(response.json)
        #expect(body["holder"] as? String == "replica-a-test")
        #expect(body["generation"] as? Int == 1)
        #expect(body["held"] as? Bool == true)
        #expect(body["self"] as? Bool == true)
        let expires = try #require(body["expiresInMilliseconds"] as? Int)
        #expect(local ? expires == 15_000 : (10_000...15_000).contains(expires))
        let since = try #require(body["since"] as? String)
        #expect(ISO8601DateFormatter.withFractions.date(from: since) != nil || ISO8601DateFormatter().date(from: since) != nil)
        #expect(Set(body.keys) == ["holder", "generation", "held", "expiresInMilliseconds", "self", "since"])
        #expect(server.service.application.reconciler.isLeading)
        let metrics = try client.request("GET", "/metrics").text
        #expect(metrics.contains("\nendpoint_registry_leader 1"))
        #expect(metrics.contains("# HELP endpoint_registry_leader "))
        #expect(metrics.contains("\nendpoint_registry_leader_transitions_total 1"))
        #expect(try client.request("HEAD", "/v1/leader").status == 200)
        #expect(try client.request("GET", "/v1/leader?x=1").status == 400)
    }

    /// The default identity is the host name and a random suffix, new for every process.
    @Test func defaultIdentityIsTheHostNameAndASuffix() throws {
        let first = try ServerSettings.resolve(arguments: [], environment: ["HOSTNAME": "registry-7d9f-abcde"])
        let second = try ServerSettings.resolve(arguments: [], environment: ["HOSTNAME": "registry-7d9f-abcde"])
        #expect(first.leaderIdentity.hasPrefix("registry-7d9f-abcde-"))
        #expect(first.leaderIdentity.count == "registry-7d9f-abcde-".count + 8)
        #expect(first.leaderIdentity != second.leaderIdentity)
        #expect(first.leaderLeaseSeconds == 15)
        let set = try ServerSettings.resolve(
            arguments: ["--leader-identity", "pod-a", "--leader-lease-seconds", "30"], environment: [:])
        #expect(set.leaderIdentity == "pod-a" && set.leaderLeaseSeconds == 30)
        #expect(try ServerSettings.resolve(arguments: [], environment: ["ENDPOINT_REGISTRY_LEADER_LEASE_SECONDS": "2"]).leaderLeaseSeconds == 2)
        for bad in ["1", "301", "ten"] {
            let error = try #require(throws: ConfigurationError.self) {
                try ServerSettings.resolve(arguments: ["--leader-lease-seconds", bad], environment: [:])
            }
            #expect(error.setting == "--leader-lease-seconds / ENDPOINT_REGISTRY_LEADER_LEASE_SECONDS")
            #expect(error.message.contains(bad))
        }
        #expect(throws: ConfigurationError.self) { try ServerSettings.resolve(arguments: ["--leader-identity=a b"], environment: [:]) }
    }

    /// A follower serves the API but reconciles nothing by itself; once it leads, the bound
    /// service is applied and `/v1/leader` names it; when the lease goes to another replica, it
    /// stops again (and a later change is not applied), and the route names the other replica.
    @Test func backgroundWorkRunsOnlyWhileLeading() throws {
        let cluster = try FakeCluster()
        let lease = SwitchableLease(holder: "replica-b-test")
        let server = try TestServer(cluster: cluster) { configuration in
            configuration.leaderIdentity = "replica-b-test"
            configuration.leaderLease = { _, _ in lease }
            configuration.resyncIntervalSeconds = 1
            configuration.shutdownGraceSeconds = 2
        }
        let client = try server.client()
        let reconciler = server.service.application.reconciler
        #expect(!reconciler.isLeading)
        var leader = try #require(try client.request("GET", "/v1/leader").json)
        #expect(leader["holder"] as? String == "other-replica" && leader["self"] as? Bool == false && leader["generation"] as? Int == 6)

        // Writes are served; nothing reaches the cluster (the other replica's job).
        #expect(try client.request("POST", "/v1/services", json: bound).status == 201)
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try cluster.object("Service", "rgw") == nil)
        #expect(try client.request("GET", "/metrics").text.contains("\nendpoint_registry_leader 0"))

        // Leading: the start-up pass applies what is bound.
        lease.grant(true)
        #expect(eventually { reconciler.isLeading })
        #expect(try eventually { try cluster.object("Service", "rgw") != nil })
        leader = try #require(try client.request("GET", "/v1/leader").json)
        #expect(leader["holder"] as? String == "replica-b-test" && leader["self"] as? Bool == true && leader["generation"] as? Int == 7)

        // Lost: the background work stops; a new binding is not applied here.
        lease.grant(false)
        #expect(eventually { !reconciler.isLeading })
        #expect(eventually { !server.service.elector.isLeading })
        leader = try #require(try client.request("GET", "/v1/leader").json)
        #expect(leader["holder"] as? String == "other-replica" && leader["self"] as? Bool == false)
        let second = bound.replacingOccurrences(of: #""name":"rgw""#, with: #""name":"rgw2""#)
        #expect(try client.request("POST", "/v1/services", json: second).status == 201)
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try cluster.object("Service", "rgw2") == nil)

        // Leading again (a restart of every part): the missed change is applied.
        lease.grant(true)
        #expect(try eventually { try cluster.object("Service", "rgw2") != nil })
    }
}

extension ISO8601DateFormatter {
    fileprivate static var withFractions: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
