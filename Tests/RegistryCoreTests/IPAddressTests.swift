import Testing

@testable import RegistryCore

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("192.168.7.50", "192.168.7.50"),
        ("10.0.0.1", "10.0.0.1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("fd00::", "fd00::"),
        ("::a00:1", "::a00:1"),
        ("::10.0.0.1", "::a00:1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
    ])
    func canonicalizes(input: String, canonical: String) throws {
        #expect(try IPAddress(parsing: input).description == canonical)
    }

    @Test(arguments: [
        ("1.2.3", IPAddress.ParseError.syntax), ("256.1.1.1", .syntax), ("1.2.3.4.5", .syntax), ("a.b.c.d", .syntax),
        ("01.2.3.4", .leadingZeros), ("1.2.3.010", .leadingZeros), ("::ffff:1.2.3.4", .ipv4Mapped),
        ("fe80::1%eth0", .zone), ("1::2::3", .syntax), (":1::2", .syntax), ("1:2:3:4:5:6:7:8:9", .syntax),
        ("12345::1", .syntax), ("1:2:3:4:5:6:7", .syntax), ("", .syntax), (" 1.2.3.4", .syntax), ("1::2:", .syntax),
        ("g::1", .syntax),
    ])
    func rejects(input: String, error: IPAddress.ParseError) {
        #expect(throws: error) { _ = try IPAddress(parsing: input) }
    }

    @Test(arguments: [
        ("0.0.0.0", true), ("::", true), ("127.0.0.1", true), ("127.255.0.9", true), ("::1", true),
        ("169.254.1.1", true), ("fe80::1", true), ("febf::1", true), ("224.0.0.5", true), ("ff02::1", true),
        ("224.0.1.1", false), ("239.1.1.1", false), ("ff05::1", false), ("fec0::1", false), ("10.0.0.1", false),
        ("192.168.7.50", false), ("2001:db8::1", false),
    ])
    func flagsSpecialUseAddressesAsTheAPIServerDoes(input: String, special: Bool) throws {
        #expect((try IPAddress(parsing: input).specialUseReason != nil) == special)
    }

    @Test func ordersNumericallyWithIPv4First() throws {
        let sorted = try ["10.0.0.10", "2001:db8::1", "10.0.0.9", "9.0.0.1"].map { try IPAddress(parsing: $0) }.sorted()
        #expect(sorted.map(\.description) == ["9.0.0.1", "10.0.0.9", "10.0.0.10", "2001:db8::1"])
    }
}
