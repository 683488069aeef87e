import Logging
import RegistryCore
import RegistryStorage
import Testing

@testable import RegistryAPI

/// How a storage fault becomes a problem document (`ErrorMapping`, the one place).
@Suite struct StorageFaultMappingTests {
    private let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A failed fsync of the WAL (`WALSync`): 503 with the reason, and no claim that nothing
    /// was written (the commit may be visible) nor that a retry alone can help.
    @Test func aWriteThatCouldNotBeMadeDurableIsA503NamingTheReason() {
        let problem = ErrorMapping.problem(
            for: StorageFault(reason: .notDurable, message: "fdatasync of /data/registry.sqlite-wal failed: Input/output error"), logger: logger)
        #expect(problem.status == 503 && problem.slug == "storage-unavailable")
        #expect(problem.extensions.first { $0.0 == "reason" }?.1 == .string("notDurable"))
        #expect(problem.detail.contains("not acknowledged") && problem.detail.contains("restarted"))
        #expect(!problem.detail.contains("nothing was written"))
    }

    @Test func aReadOnlyDatabaseSaysNothingWasWritten() {
        let problem = ErrorMapping.problem(for: StorageFault(reason: .readOnly, message: "attempt to write a readonly database"), logger: logger)
        #expect(problem.status == 503 && problem.extensions.first { $0.0 == "reason" }?.1 == .string("readOnly"))
        #expect(problem.detail.contains("nothing was written"))
    }
}
