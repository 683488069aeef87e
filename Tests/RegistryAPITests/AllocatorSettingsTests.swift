import CMalloc
import Testing

/// The allocator settings `endpoint-registry` applies first thing (`CMalloc_keepBlocksInHeap`,
/// see `main.swift`): on glibc every one of them is taken. (The shim once tested `__GLIBC__`
/// before including any C header, so it never saw glibc and silently set nothing.)
@Suite struct AllocatorSettingsTests {
    @Test func glibcTakesEverySetting() {
        #if os(Linux)
            #expect(CMalloc_keepBlocksInHeap(32 << 20, 32 << 20, 4) == 0)
        #endif
    }
}
