import Foundation
import Testing

/// Whether this process may create a private network and mount namespace (`unshare -n -m`, root).
enum MountNamespace {
    static let available: Bool = NetworkNamespace.available && unshareWorks(["-n", "-m"])
}

/// End-to-end addresses given by DNS name (issue 13) with the real server, the real resolver
/// (c-ares), a DNS server answering from a zone file and the fake API server, all inside a
/// private network and mount namespace (scripts/e2e/dns-netns.sh): no query leaves the machine.
/// Skipped, saying so, where `unshare -n -m` is not permitted.
@Suite struct DNSNetnsTests {
    @Test(.enabled(if: MountNamespace.available, "needs `unshare -n -m` (root): private network and mount namespaces not permitted here"))
    func hostAddressesFollowTheirZoneIntoTheRenderingAndTheCluster() throws {
        let (status, text) = try runUnshared(
            ["-n", "-m"], script: "scripts/e2e/dns-netns.sh", arguments: [Paths.root.path()], workPrefix: "dns", timeoutSeconds: 240)
        #expect(status == 0, "\(text)")
        #expect(text.contains("ok: the rendering follows a changed zone"))
        #expect(text.contains("ok: after the grace period the host renders none"))
        #expect(text.hasSuffix("PASS\n"), "\(text)")
    }
}
