public import Foundation
public import Logging
public import RegistryCore

/// How log lines are written to stderr.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-11-28T12:00:00Z info GET /v1/services 200 method=GET …`
    case text
    /// One JSON object per line: `{"time":…,"level":…,"message":…, metadata…}`.
    case json
}

/// A log handler writing one line per event to stderr, as text or JSON.
public struct StderrLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let format: LogFormat

    public init(label: String, format: LogFormat) {
        self.label = label
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let time = Date().formatted(.iso8601)
        var line: String
        switch format {
        case .text:
            line = "\(time) \(event.level) \(event.message)"
            for key in all.keys.sorted() { line += " \(key)=\(all[key]!)" }
        case .json:
            var object = JSONObject([("time", .string(time)), ("level", .string("\(event.level)")), ("message", .string("\(event.message)"))])
            for key in all.keys.sorted() { object[key] = .string("\(all[key]!)") }
            line = JSONWriter.string(.object(object))
        }
        line += "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

}
