import Foundation
import RegistryCore
import Testing

/// `RFC3339` writes what Foundation's `.iso8601` format style writes, digit by digit (from 1583
/// on: before the Gregorian reform Foundation counts Julian days, where RFC 3339 keeps the
/// Gregorian calendar).
@Suite struct RFC3339Tests {
    @Test func writesWhatTheFormatStyleWrites() {
        var generator = SystemRandomNumberGenerator()
        // Leap days, ends of years and centuries, before 1970, and random times up to 9999.
        let edges = [0, -1, 59, 86_399, 86_400, 951_782_400, 951_868_799, 4_107_542_400, -2_208_988_800, -12_212_553_600, 253_402_300_799]
        let random = (0..<5_000).map { _ in Int.random(in: -12_212_553_600...253_402_300_799, using: &generator) }
        for seconds in edges + random {
            let expected = Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601)
            #expect(RFC3339.string(seconds: seconds) == expected, "\(seconds)")
        }
    }

    @Test func writesMillisecondsAndRefusesFiveDigitYears() {
        var bytes: [UInt8] = []
        #expect(RFC3339.append(seconds: 1_796_148_000, milliseconds: 7, to: &bytes))
        #expect(String(decoding: bytes, as: UTF8.self) == "2026-12-01T18:00:00.007Z")
        #expect(RFC3339.string(seconds: -62_167_219_200) == "0000-01-01T00:00:00Z")  // proleptic Gregorian
        #expect(RFC3339.string(seconds: 253_402_300_800) == nil)
        #expect(RFC3339.string(seconds: -62_167_219_201) == nil)
    }
}
