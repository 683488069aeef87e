import Logging
import RegistryCore

/// What a request's log line says: the message for people (`GET /v1/services 200`), typed
/// fields for machines (numbers stay numbers in the JSON format), in sorted key order.
struct RequestLogEntry {
    /// The method and the path as sent (`HTTPRequest.rawPath`).
    var method: String
    var path: String
    var status: Int
    var actor: String
    /// The response body's size.
    var bytes: Int
    var elapsedNanoseconds: Int64
    /// The route's operation id and template: plain words (`LogEscaping.isPlainWord`), checked
    /// when the route is made.
    var operation: String
    var route: String
    /// No `remoteAddress` field when empty.
    var remoteAddress: String
    var requestID: String
    var userAgent: String?

    /// The line, newline included, in `format`.
    func line(format: LogFormat) -> [UInt8] {
        direct(format: format) ?? fieldByField(format: format)
    }

    /// The line built field by field with `LogLine`: values escaped or quoted as they need, a
    /// long method or path cut short in the message (whole in its field).
    func fieldByField(format: LogFormat) -> [UInt8] {
        var pathRange = 0..<0
        var pathRest: [UInt8] = []
        var pathAsSent = false
        var line = LogLine(format: format, level: .info) { bytes in
            var methodRange = bytes.count..<bytes.count
            LogEscaping.appendPath(method, to: &bytes)
            methodRange = methodRange.lowerBound..<bytes.count
            // A method is a token of any length: a long one is whole in the `method` field only.
            _ = LogEscaping.cutForMessage(&bytes, path: &methodRange, limit: LogEscaping.maxMessageMethodBytes)
            bytes.append(UInt8(ascii: " "))
            let start = bytes.count
            // From the path as sent: the decoded one loses a NUL and bytes that are not UTF-8.
            pathAsSent = LogEscaping.appendDecodedPath(path, to: &bytes)
            pathRange = start..<bytes.count
            // A long path is written whole once, in the `path` field: the message shows its start.
            pathRest = LogEscaping.cutForMessage(&bytes, path: &pathRange)
            bytes.append(UInt8(ascii: " "))
            bytes.appendDecimal(status)
        }
        line.field(Keys.actor, string: actor)
        line.field(Keys.bytes, integer: bytes)
        line.field(Keys.durationMs, millisecondsFromNanoseconds: elapsedNanoseconds)
        line.field(Keys.method, string: method)
        line.field(Keys.operation, plainWord: operation)
        // As README says: percent-encoded (a decoded `%41` is written `%2541`, not `%41`).
        if pathAsSent && pathRest.isEmpty {
            line.field(Keys.path, plainPath: path, at: pathRange)
        } else {
            line.field(Keys.path, encodedPathAt: pathRange, continuedWith: pathRest)
        }
        if !remoteAddress.isEmpty { line.field(Keys.remoteAddress, string: remoteAddress) }
        line.field(Keys.requestId, string: requestID)
        line.field(Keys.route, plainWord: route)
        line.field(Keys.status, integer: status)
        if let userAgent { line.field(Keys.userAgent, string: userAgent) }
        return line.finish()
    }

    /// The usual line — nothing in it escaped, quoted or cut — written in one reservation;
    /// nil for any other, which `fieldByField(format:)` writes. The same bytes as
    /// `fieldByField(format:)` (`RequestLogLineTests` compares the two on both sides of every
    /// condition): on every request, the field-by-field line cost some 7,000 instructions, this
    /// one some 5,000 with its checks (callgrind, `GET /v1/services/{namespace}/{name}`).
    func direct(format: LogFormat) -> [UInt8]? {
        let json = format == .json
        let (method, path) = (self.method.utf8Span.span, self.path.utf8Span.span)
        // The message's method and path are written as sent when neither `appendPath` nor
        // `appendDecodedPath` changes them and neither is cut.
        guard (1...LogEscaping.maxMessageMethodBytes).contains(method.count), LogEscaping.isPlainPath(method),
            (1...LogEscaping.maxMessagePathBytes).contains(path.count), LogEscaping.isPlainPath(path)
        else { return nil }
        let (actor, requestID) = (self.actor.utf8Span.span, self.requestID.utf8Span.span)
        let hasUserAgent = self.userAgent != nil
        let (remoteAddress, userAgent) = (self.remoteAddress.utf8Span.span, (self.userAgent ?? "").utf8Span.span)
        // A string field's value, written as it is: a plain word (text) or nothing a JSON string escapes.
        func verbatim(_ value: Span<UInt8>) -> Bool {
            json ? !JSONWriter.needsEscape(value) : LogEscaping.isPlainWord(value)
        }
        guard verbatim(actor), verbatim(requestID), remoteAddress.isEmpty || verbatim(remoteAddress), !hasUserAgent || verbatim(userAgent)
        else { return nil }
        let (operation, route) = (self.operation.utf8Span.span, self.route.utf8Span.span)
        let quote = json ? 2 : 0
        let strings = actor.count + method.count + operation.count + path.count + requestID.count + route.count
        var room = RFC3339.maxBytes + 2 * OutputSpan<UInt8>.maxDecimalBytes + OutputSpan<UInt8>.maxMillisecondsBytes
        room += Self.fixedBytes + method.count + path.count + OutputSpan<UInt8>.maxDecimalBytes + strings + 6 * quote
        if !remoteAddress.isEmpty { room += Keys.remoteAddress.json.count + remoteAddress.count + quote }
        if hasUserAgent { room += Keys.userAgent.json.count + userAgent.count + quote }
        // The closure below reads these, not `self` (whose copy would count its strings again).
        let (status, bytes, elapsed) = (self.status, self.bytes, elapsedNanoseconds)
        var line: [UInt8] = []
        line.append(addingCapacity: room) { out in
            func key(_ key: LogLine.Key) { out.append(copying: json ? key.json.span : key.text.span) }
            func string(_ key: LogLine.Key, _ value: Span<UInt8>) {
                out.append(copying: json ? key.json.span : key.text.span)
                if json { out.append(UInt8(ascii: "\"")) }
                out.append(copying: value)
                if json { out.append(UInt8(ascii: "\"")) }
            }
            if json { out.append(copying: Self.jsonTimePrefix.span) }
            StderrLogHandler.appendTimestamp(to: &out)
            out.append(copying: json ? Self.jsonMessagePrefix.span : Self.textMessagePrefix.span)
            out.append(copying: method)
            out.append(UInt8(ascii: " "))
            out.append(copying: path)
            out.append(UInt8(ascii: " "))
            out.appendDecimal(status)
            if json { out.append(UInt8(ascii: "\"")) }
            string(Keys.actor, actor)
            key(Keys.bytes)
            out.appendDecimal(bytes)
            key(Keys.durationMs)
            out.appendMilliseconds(fromNanoseconds: elapsed)
            string(Keys.method, method)
            string(Keys.operation, operation)
            string(Keys.path, path)
            if !remoteAddress.isEmpty { string(Keys.remoteAddress, remoteAddress) }
            string(Keys.requestId, requestID)
            string(Keys.route, route)
            key(Keys.status)
            out.appendDecimal(status)
            if hasUserAgent { string(Keys.userAgent, userAgent) }
            if json { out.append(UInt8(ascii: "}")) }
            out.append(UInt8(ascii: "\n"))
        }
        return line
    }

    /// The fields' keys, made once (in the JSON form, the longer).
    enum Keys {
        static let actor = LogLine.Key("actor")
        static let bytes = LogLine.Key("bytes")
        static let durationMs = LogLine.Key("durationMs")
        static let method = LogLine.Key("method")
        static let operation = LogLine.Key("operation")
        static let path = LogLine.Key("path")
        static let remoteAddress = LogLine.Key("remoteAddress")
        static let requestId = LogLine.Key("requestId")
        static let route = LogLine.Key("route")
        static let status = LogLine.Key("status")
        static let userAgent = LogLine.Key("userAgent")
    }

    private static let jsonTimePrefix = Array(#"{"time":""#.utf8)
    private static let jsonMessagePrefix = Array(#"","level":"info","message":""#.utf8)
    private static let textMessagePrefix = Array(" info ".utf8)

    /// Room for everything but the values: the prefixes, the message's two spaces and quote, the
    /// keys of the fields always written (in their JSON form, the longer), the end.
    private static let fixedBytes: Int = {
        let keys: [LogLine.Key] = [
            Keys.actor, Keys.bytes, Keys.durationMs, Keys.method, Keys.operation, Keys.path, Keys.requestId, Keys.route, Keys.status,
        ]
        return jsonTimePrefix.count + jsonMessagePrefix.count + 3 + keys.reduce(0) { $0 + $1.json.count } + 2
    }()
}
