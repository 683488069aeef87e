import Testing

@testable import RegistryCore

/// `EndpointAddressList` behaves as an array of addresses whatever its chunks, and keeps them
/// within their bounds; copies share what they did not change.
struct EndpointAddressListTests {
    static func address(_ number: Int) -> EndpointAddress {
        EndpointAddress(ip: "10.\(number / 65536 % 256).\(number / 256 % 256).\(number % 256)")
    }

    /// No empty chunk, none over twice the capacity, none under a quarter of it unless alone,
    /// one measure (or none yet) per chunk.
    static func checkShape(_ list: EndpointAddressList, _ note: Comment) {
        #expect(list.chunks.allSatisfy { !$0.isEmpty && $0.count <= 2 * EndpointAddressList.chunkCapacity }, note)
        #expect(list.chunks.count == 1 || list.chunks.allSatisfy { $0.count >= EndpointAddressList.chunkCapacity / 4 }, note)
        #expect(list.chunks.reduce(0) { $0 + $1.count } == list.count, note)
        #expect(list.measures.count == list.chunks.count, note)
    }

    @Test func randomEditsMatchAnArray() {
        var random = SeededGenerator(state: 3)
        var model: [EndpointAddress] = (0..<1_000).map(Self.address)
        var list = EndpointAddressList(model)
        var next = 1_000
        for step in 0..<3_000 {
            let before = list
            let snapshot = model
            switch Int.random(in: 0..<8, using: &random) {
            case 0, 1:
                let index = Int.random(in: 0...model.count, using: &random)
                model.insert(Self.address(next), at: index)
                list.insert(Self.address(next), at: index)
                next += 1
            case 2 where !model.isEmpty, 3 where !model.isEmpty:
                let index = Int.random(in: 0..<model.count, using: &random)
                #expect(model.remove(at: index) == list.remove(at: index))
            case 4:
                let lower = Int.random(in: 0...model.count, using: &random)
                let upper = Int.random(in: lower...Swift.min(model.count, lower + 300), using: &random)
                let new = (0..<Int.random(in: 0..<300, using: &random)).map { Self.address(next + $0) }
                next += new.count
                model.replaceSubrange(lower..<upper, with: new)
                list.replaceSubrange(lower..<upper, with: new)
            case 5 where !model.isEmpty:
                let index = Int.random(in: 0..<model.count, using: &random)
                model[index].ready.toggle()
                list[index].ready.toggle()
            case 6:
                let cut = Int.random(in: 0..<256, using: &random)
                model.removeAll { $0.ip.hasSuffix(".\(cut)") }
                list.removeAll { $0.ip.hasSuffix(".\(cut)") }
            default:
                model.append(Self.address(next))
                list.append(Self.address(next))
                next += 1
            }
            #expect(Array(list) == model && list.map { $0 } == model, "step \(step)")
            #expect(list.count == model.count && list.indices == model.indices)
            if let index = model.indices.randomElement(using: &random) { #expect(list[index] == model[index]) }
            // The copy taken before the edit still holds what it held.
            #expect(Array(before) == snapshot, "step \(step)")
            #expect((before == list) == (snapshot == model))
            Self.checkShape(list, "step \(step)")
            if model.count > 20_000 {
                model.removeSubrange(10_000...)
                list.removeSubrange(10_000...)
            }
        }
    }

    /// Lists chunked differently compare by their addresses; one edit changes one chunk.
    @Test func equalityAndSharing() {
        let addresses = (0..<10_000).map(Self.address)
        let whole = EndpointAddressList(addresses)
        var grown = EndpointAddressList(addresses.prefix(5_000))
        grown.append(contentsOf: addresses[5_000...])
        #expect(whole == grown)
        #expect(whole.chunks.count > 100)
        var edited = whole
        edited.insert(Self.address(99_999), at: 4_321)
        #expect(edited != whole)
        let changed = zip(whole.chunks, edited.chunks).filter { $0 != $1 }
        #expect(edited.chunks.count - whole.chunks.count <= 1)
        #expect(changed.count <= 2)
        edited.remove(at: 4_321)
        #expect(edited == whole)
        #expect(EndpointAddressList() == [])
        #expect(EndpointAddressList([Self.address(1)]) != [])
    }

    /// An edit forgets the measure of the chunk it changed, and only that one; chunks measured
    /// without hosts are skipped when looking for them.
    @Test func anEditForgetsTheSizeOfItsChunk() {
        var list = EndpointAddressList((0..<1_000).map(Self.address))
        list.measures = list.measures.indices.map { _ in EndpointAddressList.ChunkMeasure(encodedBytes: 1, hasHost: false) }
        #expect(!list.hasHostAddress && Array(list.chunksWithHosts).isEmpty)
        list[500].host = "db.example.com"
        let changed = list.measures.indices.filter { list.measures[$0] == nil }
        #expect(changed.count == 1)
        #expect(list.hasHostAddress && Array(list.chunksWithHosts).count == 1)
        list.updateEach { $0.ready = true }
        #expect(list.measures.allSatisfy { $0 == nil })
    }

    /// The rarely set fields live in a shared box (`EndpointAddress.RareFields`): an address
    /// still behaves as a value (a copy's change leaves the original as it was), equality
    /// compares the fields whatever the boxes, and clearing every field drops the box.
    @Test func rareFieldsAreValues() {
        let original = EndpointAddress(ip: "10.0.0.1", ports: ["http": 8080], hostname: "gw-1", zone: "a", servedPorts: ["http"])
        var copy = original
        copy.ports?["http"] = 9090
        copy.zone = nil
        #expect(original.ports == ["http": 8080] && original.zone == "a" && original.hostname == "gw-1")
        #expect(copy.ports == ["http": 9090] && copy.zone == nil && copy.hostname == "gw-1" && copy.servedPorts == ["http"])
        #expect(copy != original)
        copy.ports = ["http": 8080]
        copy.zone = "a"
        #expect(copy == original)  // equal fields in two boxes
        copy.ports = nil
        copy.hostname = nil
        copy.zone = nil
        copy.servedPorts = nil
        #expect(copy == EndpointAddress(ip: "10.0.0.1"))
        var host = EndpointAddress(host: "db.example.com", port: 5432)
        #expect(host.host == "db.example.com" && host.isUnresolvedHost && host.ip.isEmpty)
        host.ip = "192.0.2.7"
        #expect(!host.isUnresolvedHost && host.host == "db.example.com")
        let list = EndpointAddressList([original, copy, host])
        #expect(EndpointAddress.same(list.chunks[0], 0, original) && !EndpointAddress.same(list.chunks[0], 1, original))
        #expect(EndpointAddress.same(list.chunks[0], 2, list.chunks[0], 2) && !EndpointAddress.same(list.chunks[0], 0, list.chunks[0], 2))
    }
}
