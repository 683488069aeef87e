/// RFC 3339 timestamps in UTC, as the Kubernetes API writes them (`2026-12-01T18:00:00Z`), or
/// with milliseconds (`2026-12-01T18:00:00.123Z`): written digit by digit from a Unix time, the
/// same text as Foundation's `.iso8601` format style (from 1583; earlier dates stay in the
/// Gregorian calendar, as RFC 3339 §5.6 has it, where Foundation counts Julian days), without its
/// cost on every write and every log line.
public enum RFC3339 {
    /// Appends the time `seconds` after 1970-01-01T00:00:00Z (negative: before), with
    /// `milliseconds` (0–999) when given. Returns false, writing nothing, for a year outside
    /// 0–9999 (which the format cannot hold in four digits).
    @discardableResult
    public static func append(seconds: Int, milliseconds: Int? = nil, to out: inout [UInt8]) -> Bool {
        var written = false
        // Room reserved once (a log line writes one of these per request).
        out.append(addingCapacity: maxBytes) { written = append(seconds: seconds, milliseconds: milliseconds, to: &$0) }
        return written
    }

    /// The most bytes `append` writes: `2026-12-01T18:00:00.123Z`.
    public static var maxBytes: Int { 24 }

    /// `append(seconds:milliseconds:to:)` into an output span with room for `maxBytes`.
    @discardableResult
    public static func append(seconds: Int, milliseconds: Int? = nil, to out: inout OutputSpan<UInt8>) -> Bool {
        let (quotient, remainder) = seconds.quotientAndRemainder(dividingBy: 86_400)
        let (day, secondOfDay) = remainder < 0 ? (quotient - 1, remainder + 86_400) : (quotient, remainder)
        // Days since 1970-01-01 to a civil date: Howard Hinnant's `civil_from_days`
        // (https://howardhinnant.github.io/date_algorithms.html#civil_from_days).
        let shifted = day + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let dayOfMonth = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        guard (0...9999).contains(year) else { return false }
        // Digit by digit, unrolled.
        let zero = UInt8(ascii: "0")
        out.append(zero + UInt8(year / 1000))
        out.append(zero + UInt8(year / 100 % 10))
        out.append(zero + UInt8(year / 10 % 10))
        out.append(zero + UInt8(year % 10))
        twoDigits(month, separatedBy: UInt8(ascii: "-"), to: &out)
        twoDigits(dayOfMonth, separatedBy: UInt8(ascii: "-"), to: &out)
        twoDigits(secondOfDay / 3600, separatedBy: UInt8(ascii: "T"), to: &out)
        twoDigits(secondOfDay / 60 % 60, separatedBy: UInt8(ascii: ":"), to: &out)
        twoDigits(secondOfDay % 60, separatedBy: UInt8(ascii: ":"), to: &out)
        if let milliseconds {
            out.append(UInt8(ascii: "."))
            out.append(zero + UInt8(milliseconds / 100 % 10))
            out.append(zero + UInt8(milliseconds / 10 % 10))
            out.append(zero + UInt8(milliseconds % 10))
        }
        out.append(UInt8(ascii: "Z"))
        return true
    }

    /// `separator`, then `value` (0–99) in two digits.
    @inline(__always)
    private static func twoDigits(_ value: Int, separatedBy separator: UInt8, to out: inout OutputSpan<UInt8>) {
        out.append(separator)
        out.append(UInt8(ascii: "0") + UInt8(value / 10))
        out.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    /// `append(seconds:)` as a string; nil for a year outside 0–9999.
    public static func string(seconds: Int) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20)
        return append(seconds: seconds, to: &bytes) ? String(decoding: bytes, as: UTF8.self) : nil
    }
}
