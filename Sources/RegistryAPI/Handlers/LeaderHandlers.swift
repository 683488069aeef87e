import Coordination
import HTTPServer
import RegistryCore
import RegistryStorage

/// `GET /v1/leader` (issue 16): who holds the leader lease, as the store says now, and whether
/// it is this process. Shape: `holder` (string; empty when the lease was never acquired),
/// `generation` (the term's number, 0 when never acquired), `held` (false once the term
/// expired or was released), `expiresInMilliseconds` (until the term expires by the store's
/// clock, negative once it has; with SQLite the lease never expires and this is the TTL),
/// `self` (whether this process leads in that term) and, while held, `since` (RFC 3339, when
/// the term began).
struct LeaderHandlers: Sendable {
    let elector: LeaderElector

    func getLeader(_ context: RequestContext) throws -> HTTPResponse {
        let status = try elector.leaseStatus()
        var body = JSONObject()
        body["holder"] = .string(status?.holder ?? "")
        body["generation"] = .integer(status?.generation ?? 0)
        body["held"] = .bool(status?.isHeld ?? false)
        body["expiresInMilliseconds"] = .integer(status?.expiresInMilliseconds ?? 0)
        let term = elector.currentTerm
        body["self"] = .bool(status.map { $0.isHeld && $0.holder == elector.identity && term?.generation == $0.generation } ?? false)
        if let status, status.isHeld, let since = status.acquiredAt {
            body["since"] = .string(ServiceStore.rfc3339(since))
        }
        return Responses.json(200, .object(body))
    }
}
