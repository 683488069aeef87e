import CAres

/// The `Resolver` of the running server (issue 13): c-ares (`libc-ares`), which gives each
/// answer's TTL (`getaddrinfo` does not). Reads `/etc/resolv.conf` (servers, search list,
/// `ndots`, and `lookup` order with `/etc/hosts`) anew for every lookup, so that a changed file
/// applies at the next refresh. Asks for A and AAAA records at once. Blocks the calling thread
/// for at most `deadline`; safe to call from several threads (one channel per lookup).
public struct CAresResolver: Resolver {
    /// How long one query to one server is awaited.
    public var queryTimeout: Duration
    /// How many times each server is tried.
    public var tries: Int
    /// The whole lookup is abandoned after this long (a `failed` result).
    public var deadline: Duration
    /// Most addresses kept from one answer.
    public var maxAddresses: Int

    public init(queryTimeout: Duration = .seconds(2), tries: Int = 2, deadline: Duration = .seconds(5), maxAddresses: Int = 256) {
        self.queryTimeout = queryTimeout
        self.tries = tries
        self.deadline = deadline
        self.maxAddresses = maxAddresses
    }

    private static func milliseconds(_ duration: Duration) -> Int32 {
        let value = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(1, value))
    }

    public func resolve(_ host: String) -> Result<ResolvedAddresses, ResolveFailure> {
        let stride = Int(CARES_ADDRESS_LENGTH)
        let capacity = max(1, maxAddresses)
        var buffer = [CChar](repeating: 0, count: capacity * stride)
        var count: Int32 = 0
        var ttl: Int32 = -1
        let status = buffer.withUnsafeMutableBufferPointer { pointer in
            CAres_resolve(
                host, Self.milliseconds(queryTimeout), Int32(clamping: max(1, tries)), Self.milliseconds(deadline), pointer.baseAddress,
                Int32(capacity), &count, &ttl)
        }
        switch status {
        case ARES_SUCCESS:
            var addresses: [String] = []
            for index in 0..<Int(max(0, count)) {
                let slot = buffer[(index * stride)..<((index + 1) * stride)]
                let bytes = slot.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
                addresses.append(String(decoding: bytes, as: UTF8.self))
            }
            if addresses.isEmpty { return .failure(.notFound) }
            return .success(ResolvedAddresses(addresses: addresses, ttlSeconds: ttl >= 0 ? Int(ttl) : nil))
        case ARES_ENOTFOUND, ARES_ENODATA:
            return .failure(.notFound)
        case ARES_ETIMEOUT:
            return .failure(.failed("no answer within the timeout"))
        default:
            return .failure(.failed(String(cString: ares_strerror(status))))
        }
    }
}
