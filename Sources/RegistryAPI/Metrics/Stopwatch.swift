import Foundation

/// A request's elapsed time: `CLOCK_MONOTONIC` read at the start and at the end, in
/// nanoseconds (as `SuspendingClock` counts: a pause of the whole host is not counted).
///
/// Not `ContinuousClock`: on the request path it cost some 700 instructions a request
/// (callgrind, `GET /v1/services/{namespace}/{name}`) — its `Instant` is a resilient type of the
/// Concurrency library, copied and destroyed through value witnesses, and `Duration.components`
/// divides 128-bit numbers.
struct Stopwatch: Sendable {
    private let start: Int64

    /// Starts now.
    init() {
        start = Self.now()
    }

    /// Nanoseconds since `init()`.
    var elapsedNanoseconds: Int64 { Self.now() - start }

    private static func now() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
