import Foundation
import RegistryCore
import Testing

@testable import RegistryStorage

@Suite struct HealthCheckImportTests {
    /// Manifests carry no health check: importing them again keeps the service's own.
    @Test func importKeepsAnExistingHealthCheck() throws {
        let store = try freshStore()
        var checked = sample("rgw")
        checked.healthCheck = HealthCheck(type: .tcp)
        _ = try store.create(checked)
        let outcomes = try store.importServices([sample("rgw")], onConflict: .replace, dryRun: false)
        #expect(outcomes.map(\.action) == [.unchanged])
        #expect(try store.record(namespace: "default", name: "rgw")?.service.healthCheck == HealthCheck(type: .tcp))
    }
}
