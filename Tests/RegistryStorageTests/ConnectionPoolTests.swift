import Foundation
import Testing

@testable import RegistryStorage

/// The readers' pool with a bound (PostgreSQL's `--database-max-connections`): readers beyond it
/// wait for a connection to come back, for a bounded time, and a read inside a read never waits.
@Suite struct ConnectionPoolTests {
    /// A pool of SQLite connections to a fresh file (the pool does not care which database).
    func pool(maximum: Int, timeout: Duration) throws -> ConnectionPool {
        let path = try temporaryDatabase()
        return ConnectionPool(maximum: maximum, acquireTimeout: timeout) { try SQLiteConnection(path: path) }
    }

    @Test func aReaderBeyondTheBoundWaitsForAConnectionToComeBack() throws {
        let pool = try pool(maximum: 2, timeout: .seconds(30))
        let release = DispatchSemaphore(value: 0)
        let holding = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        for _ in 0..<2 {
            DispatchQueue.global().async(group: group) {
                _ = try? pool.with { _ in
                    holding.signal()
                    release.wait()
                }
            }
        }
        holding.wait()
        holding.wait()
        let third = DispatchSemaphore(value: 0)
        DispatchQueue.global().async(group: group) {
            _ = try? pool.with { _ in third.signal() }
        }
        #expect(third.wait(timeout: .now() + 0.3) == .timedOut, "the third reader waits while both connections are in use")
        release.signal()
        release.signal()
        #expect(third.wait(timeout: .now() + 10) == .success)
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(pool.openConnections == 2)
    }

    @Test func aReaderThatWaitsTooLongGets503() throws {
        let pool = try pool(maximum: 1, timeout: .milliseconds(200))
        let release = DispatchSemaphore(value: 0)
        let holding = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? pool.with { _ in
                holding.signal()
                release.wait()
            }
        }
        holding.wait()
        defer { release.signal() }
        #expect {
            try pool.with { _ in }
        } throws: { error in
            guard case StoreError.fault(let fault) = error else { return false }
            return fault.reason == .unavailable && fault.message.contains("--database-max-connections")
        }
    }

    @Test func aReadInsideAReadNeverWaitsOnItself() throws {
        let pool = try pool(maximum: 1, timeout: .seconds(30))
        let nested = try pool.with { _ in try pool.with { _ in true } }
        #expect(nested)
        #expect(pool.openConnections == 2)
        // Both came back: the next readers reuse them.
        try pool.with { _ in }
        #expect(pool.openConnections == 2)
    }
}
