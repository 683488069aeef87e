import Foundation
import RegistryCore

/// Serializations of API documents for the terminal.
enum Output {
    /// The server-managed fields of a registration (read-only; `revision` and `uid` act as
    /// preconditions when sent back).
    static let serverFields: Set<String> = ["uid", "revision", "createdAt", "updatedAt"]

    /// YAML documents (`---` before each), strings quoted where a YAML reader could misread them.
    static func yaml(_ documents: [JSONValue]) -> String {
        String(decoding: ManifestFormat.yaml.serialize(documents), as: UTF8.self)
    }

    /// Indented JSON (two spaces), members in the server's order, with a final newline.
    static func json(_ value: JSONValue) -> String {
        var text = ""
        write(value, indent: "", into: &text)
        return text + "\n"
    }

    private static func write(_ value: JSONValue, indent: String, into text: inout String) {
        let inner = indent + "  "
        switch value {
        case .array(let items) where !items.isEmpty:
            text += "[\n"
            for (index, item) in items.enumerated() {
                text += inner
                write(item, indent: inner, into: &text)
                text += index < items.count - 1 ? ",\n" : "\n"
            }
            text += indent + "]"
        case .object(let object) where !object.isEmpty:
            text += "{\n"
            for (index, member) in object.members.enumerated() {
                text += inner + String(decoding: JSONWriter.bytes(.string(member.key)), as: UTF8.self) + ": "
                write(member.value, indent: inner, into: &text)
                text += index < object.members.count - 1 ? ",\n" : "\n"
            }
            text += indent + "}"
        default:
            text += String(decoding: JSONWriter.bytes(value), as: UTF8.self)
        }
    }

    /// Columns padded like kubectl's tables (three spaces between columns).
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var text = ""
            for (index, cell) in cells.enumerated() {
                if index == cells.count - 1 {
                    text += cell
                } else {
                    text += cell + String(repeating: " ", count: widths[index] - cell.count + 3)
                }
            }
            return text + "\n"
        }
        return line(header) + rows.map(line).joined()
    }

    /// A duration in kubectl's short form (`45s`, `3m20s`, `5h`, `2d3h`, `400d`, `3y`), from
    /// apimachinery's `duration.HumanDuration`.
    static func age(since created: String, now: Date = Date()) -> String {
        guard let date = try? Date(created, strategy: .iso8601) else { return "<unknown>" }
        let seconds = max(0, Int(now.timeIntervalSince(date)))
        if seconds < 120 { return "\(seconds)s" }
        let minutes = seconds / 60
        if minutes < 10 { return seconds % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(seconds % 60)s" }
        if minutes < 180 { return "\(minutes)m" }
        let hours = minutes / 60
        if hours < 8 { return minutes % 60 == 0 ? "\(hours)h" : "\(hours)h\(minutes % 60)m" }
        if hours < 48 { return "\(hours)h" }
        if hours < 192 { return hours % 24 == 0 ? "\(hours / 24)d" : "\(hours / 24)d\(hours % 24)h" }
        if hours < 24 * 365 * 2 { return "\(hours / 24)d" }
        let years = hours / 24 / 365
        if years < 8 { return (hours / 24) % 365 == 0 ? "\(years)y" : "\(years)y\((hours / 24) % 365)d" }
        return "\(years)y"
    }
}
