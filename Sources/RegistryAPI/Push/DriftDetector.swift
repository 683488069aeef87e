import KubernetesClient
import RegistryCore

/// Reads a service's live objects from a cluster and compares them with the rendering through
/// `LiveComparison`, the comparison the reconciler uses too.
enum DriftDetector {
    static func drift(_ service: ExternalService, api: KubernetesAPI) throws(KubernetesError) -> [JSONValue] {
        let rendering = ManifestRenderer.render(service)
        var live: [JSONValue] = []
        if let object = try api.get(.service, namespace: service.namespace, name: service.name)?.object { live.append(object) }
        if let object = try api.get(.endpoints, namespace: service.namespace, name: service.name)?.object { live.append(object) }
        live += try api.list(.endpointSlice, namespace: service.namespace, labelSelector: "kubernetes.io/service-name=\(service.name)")
        return LiveComparison.compare(rendering: rendering.objects, live: live).map(\.json)
    }
}
