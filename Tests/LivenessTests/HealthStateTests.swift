import Foundation
import Testing

@testable import Liveness

@Suite struct HealthStateTests {
    let start = Date(timeIntervalSince1970: 1_000)

    @Test func thresholdsDecideTransitions() {
        var health = AddressHealth(since: start)
        #expect(health.state == .unknown)
        #expect(health.allowsReady(startUnhealthy: false))
        #expect(!health.allowsReady(startUnhealthy: true))
        // 1 success: still unknown (healthyThreshold 2).
        #expect(health.record(success: true, error: nil, at: start + 1, healthyThreshold: 2, unhealthyThreshold: 3) == nil)
        #expect(health.state == .unknown && health.consecutive == 1)
        #expect(health.record(success: true, error: nil, at: start + 2, healthyThreshold: 2, unhealthyThreshold: 3) == .unknown)
        #expect(health.state == .healthy && health.since == start + 2)
        // Two failures do not flip it; a success in between resets the count.
        _ = health.record(success: false, error: "refused", at: start + 3, healthyThreshold: 2, unhealthyThreshold: 3)
        _ = health.record(success: false, error: "refused", at: start + 4, healthyThreshold: 2, unhealthyThreshold: 3)
        #expect(health.state == .healthy && health.consecutive == 2 && health.lastError == "refused")
        _ = health.record(success: true, error: nil, at: start + 5, healthyThreshold: 2, unhealthyThreshold: 3)
        #expect(health.consecutive == 1 && health.lastError == nil)
        for second in 6...8 {
            _ = health.record(success: false, error: "timed out", at: start + Double(second), healthyThreshold: 2, unhealthyThreshold: 3)
        }
        #expect(health.state == .unhealthy && health.since == start + 8 && health.consecutive == 3)
        #expect(!health.allowsReady(startUnhealthy: false))
        #expect(health.lastCheck == start + 8)
    }

    @Test func thresholdOfOneFlipsAtOnce() {
        var health = AddressHealth(since: start)
        #expect(health.record(success: false, error: "x", at: start, healthyThreshold: 1, unhealthyThreshold: 1) == .unknown)
        #expect(health.state == .unhealthy)
        #expect(health.record(success: true, error: nil, at: start, healthyThreshold: 1, unhealthyThreshold: 1) == .unhealthy)
        #expect(health.state == .healthy)
    }

    @Test func heapOrders() {
        var heap = MinHeap<Int>()
        for value in [5, 3, 9, 1, 7, 1] { heap.push(value) }
        var out: [Int] = []
        while let value = heap.pop() { out.append(value) }
        #expect(out == [1, 1, 3, 5, 7, 9])
    }
}
