public import Foundation

/// The verdict on one address.
public enum HealthState: String, Sendable, Equatable {
    /// No verdict yet (a new address, or a changed check).
    case unknown
    case healthy
    case unhealthy
}

/// The state machine of one address (IP and probed port): `healthyThreshold` consecutive
/// successes make it healthy, `unhealthyThreshold` consecutive failures unhealthy (the
/// semantics of Kubernetes probes' `successThreshold`/`failureThreshold`, and of AWS/GCP load
/// balancer health checks). A probe result that agrees with the current state only refreshes it.
public struct AddressHealth: Sendable, Equatable {
    public private(set) var state: HealthState = .unknown
    /// When `state` was entered.
    public private(set) var since: Date
    /// When the last probe finished; nil before the first.
    public private(set) var lastCheck: Date?
    /// Why the last probe failed; nil after a success.
    public private(set) var lastError: String?
    /// Consecutive results equal to the last one (successes after a success, failures after a failure).
    public private(set) var consecutive = 0
    /// Whether the last probe succeeded (false before the first).
    public private(set) var lastSucceeded = false

    public init(since: Date) {
        self.since = since
    }

    /// The state as stored (`HealthChecker.snapshot(of:)`), to continue from it (issue 16).
    public init(state: HealthState, since: Date, lastCheck: Date?, lastError: String?, consecutive: Int, lastSucceeded: Bool) {
        self.state = state
        self.since = since
        self.lastCheck = lastCheck
        self.lastError = lastError
        self.consecutive = max(0, consecutive)
        self.lastSucceeded = lastSucceeded
    }

    /// Records one probe result; returns the previous state when the state changed.
    public mutating func record(success: Bool, error: String?, at time: Date, healthyThreshold: Int, unhealthyThreshold: Int) -> HealthState? {
        consecutive = (lastCheck != nil && success == lastSucceeded) ? consecutive + 1 : 1
        lastSucceeded = success
        lastCheck = time
        lastError = success ? nil : error
        let next: HealthState
        if success, consecutive >= healthyThreshold {
            next = .healthy
        } else if !success, consecutive >= unhealthyThreshold {
            next = .unhealthy
        } else {
            next = state
        }
        guard next != state else { return nil }
        let previous = state
        state = next
        since = time
        return previous
    }

    /// Whether this address may be rendered ready (before fail-open and the drain switch).
    public func allowsReady(startUnhealthy: Bool) -> Bool {
        switch state {
        case .healthy: true
        case .unhealthy: false
        case .unknown: !startUnhealthy
        }
    }
}
