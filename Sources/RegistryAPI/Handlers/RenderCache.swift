import RegistryCore
import RegistryStorage
import Synchronization

/// Rendered output of one service revision in one endpoints mode and one format.
struct RenderedService: Sendable {
    /// The YAML stream (warnings as leading comments), or the objects as comma-separated JSON
    /// to be wrapped in a `List`.
    var bytes: [UInt8]
    var warnings: [String]
}

/// Remembers renderings by (uid, revision, mode, format): a stored revision never changes, so entries
/// never go stale, and rendering (mostly YAML emission) is paid once per revision. Bounded by
/// total bytes; the oldest entries go first.
final class RenderCache: Sendable {
    struct Key: Hashable, Sendable {
        var version: ServiceVersion
        /// nil: the service's own endpointsMode (part of the revision's content).
        var mode: EndpointsMode?
        var format: ManifestFormat
        /// `HealthChecker.epoch` of the service: the effective readiness rendered.
        var healthEpoch = 0
        /// `DNSRefresher.epoch` of the service: the addresses its `host` addresses resolved to.
        var dnsEpoch = 0
    }

    private struct State {
        var entries: [Key: RenderedService] = [:]
        var order: [Key] = []
        var bytes = 0
    }

    private let state = Mutex(State())
    private let maxBytes: Int

    init(maxBytes: Int = 64 << 20) {
        self.maxBytes = maxBytes
    }

    func cached(_ key: Key) -> RenderedService? {
        state.withLock { $0.entries[key] }
    }

    func rendered(_ key: Key, render: () throws -> RenderedService) rethrows -> RenderedService {
        if let hit = cached(key) { return hit }
        let value = try render()
        let size = value.bytes.count
        guard size <= maxBytes / 4 else { return value }
        state.withLock { state in
            guard state.entries[key] == nil else { return }
            state.entries[key] = value
            state.order.append(key)
            state.bytes += size
            while state.bytes > maxBytes, !state.order.isEmpty {
                let oldest = state.order.removeFirst()
                if let evicted = state.entries.removeValue(forKey: oldest) {
                    state.bytes -= evicted.bytes.count
                }
            }
        }
        return value
    }

    static func render(_ service: ExternalService, mode: EndpointsMode?, format: ManifestFormat) -> RenderedService {
        let rendering = ManifestRenderer.render(service, mode: mode)
        switch format {
        case .yaml:
            return RenderedService(
                bytes: ManifestFormat.yaml.serialize(rendering.objects, warnings: rendering.warnings), warnings: rendering.warnings)
        case .json:
            var items: [UInt8] = []
            for (index, object) in rendering.objects.enumerated() {
                if index > 0 { items.append(UInt8(ascii: ",")) }
                JSONWriter.write(object, into: &items)
            }
            return RenderedService(bytes: items, warnings: rendering.warnings)
        }
    }
}
