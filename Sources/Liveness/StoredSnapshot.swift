import Foundation
import Logging
import RegistryStorage

/// The JSON form of what the health checker and the DNS refresher store per service (issue 16):
/// keys sorted, times as Foundation's `Date` as is (seconds since 2001-01-01T00:00:00Z, a JSON
/// number), so that they come back exactly.
enum StoredSnapshot {
    /// `value` as JSON; nil (logged at error level, naming `what`) if it cannot be encoded.
    static func encode(_ value: some Encodable, of key: ServiceKey, what: String, logger: Logger) -> [UInt8]? {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .deferredToDate
        encoder.outputFormatting = [.sortedKeys]
        do {
            return Array(try encoder.encode(value))
        } catch {
            logger.error("\(what) not encoded", metadata: ["service": "\(key.namespace)/\(key.name)", "error": "\(error)"])
            return nil
        }
    }

    /// The snapshots that decode as `type`; the others are logged (naming `what`) and left out.
    static func decode<T: Decodable>(_ type: T.Type, _ snapshots: [ServiceKey: [UInt8]], what: String, logger: Logger) -> [ServiceKey: T] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .deferredToDate
        var decoded: [ServiceKey: T] = [:]
        for (key, bytes) in snapshots {
            do {
                decoded[key] = try decoder.decode(type, from: Data(bytes))
            } catch {
                logger.warning("stored \(what) ignored: not readable", metadata: ["service": "\(key.namespace)/\(key.name)", "error": "\(error)"])
            }
        }
        return decoded
    }
}
