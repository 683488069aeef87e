import CYaml

/// Writes `JSONValue` documents as a YAML stream through libyaml's event API (the emitter that
/// Yams wraps, from Yams' `CYaml` module), without building a Yams node tree: one event per
/// scalar, sequence and mapping. libyaml stays responsible for scalar styles, quoting, escaping
/// and indentation.
///
/// The settings are those of `Yams.serialize(nodes:width: -1, explicitStart: true)`, so the bytes
/// are the same as that call's on the node tree `ManifestFormat` built before (checked by
/// `YAMLEmitterEquivalenceTests`): UTF-8, indentation 2 (libyaml's default for Yams' `indent: 0`),
/// unlimited width, non-ASCII escaped (`allowUnicode: false`), `\n` breaks, explicit `---` and
/// implicit document ends, block styles, implicit tags (so no tag is ever written).
///
/// This file is the only place in RegistryCore that sees C types and pointers: a thin adapter
/// over libyaml, kept here because emission is pure (memory in, memory out).
enum YAMLEventEmitter {
    /// Appends the stream of `documents` (one document each) to `out`. Empty `documents` gives an
    /// empty stream (no bytes), as Yams did.
    static func emit(_ documents: [JSONValue], into out: inout [UInt8]) {
        guard !documents.isEmpty else { return }
        let sink = Sink(out)
        out = []
        let emitter = UnsafeMutablePointer<yaml_emitter_t>.allocate(capacity: 1)
        defer {
            yaml_emitter_delete(emitter)
            emitter.deallocate()
        }
        yaml_emitter_initialize(emitter)
        yaml_emitter_set_output(
            emitter,
            { data, buffer, size in
                guard let data, let buffer else { return 0 }
                Unmanaged<Sink>.fromOpaque(data).takeUnretainedValue().bytes.append(contentsOf: UnsafeBufferPointer(start: buffer, count: size))
                return 1
            }, Unmanaged.passUnretained(sink).toOpaque())
        yaml_emitter_set_canonical(emitter, 0)
        yaml_emitter_set_indent(emitter, 0)
        yaml_emitter_set_width(emitter, -1)
        yaml_emitter_set_unicode(emitter, 0)
        yaml_emitter_set_break(emitter, YAML_LN_BREAK)
        yaml_emitter_set_encoding(emitter, YAML_UTF8_ENCODING)

        let writer = Writer(emitter: emitter)
        var event = yaml_event_t()
        yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING)
        writer.emit(&event)
        for document in documents {
            yaml_document_start_event_initialize(&event, nil, nil, nil, 0)
            writer.emit(&event)
            writer.node(document)
            yaml_document_end_event_initialize(&event, 1)
            writer.emit(&event)
        }
        yaml_stream_end_event_initialize(&event)
        writer.emit(&event)
        withExtendedLifetime(sink) { out = $0.bytes }
    }

    /// Where libyaml's write handler appends (passed to it as an unretained pointer; lives for
    /// the whole of `emit`).
    private final class Sink {
        var bytes: [UInt8]
        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            self.bytes.reserveCapacity(bytes.count + 1 << 16)
        }
    }

    private struct Writer {
        let emitter: UnsafeMutablePointer<yaml_emitter_t>

        /// libyaml fails only on events out of order or an out-of-memory condition; `node` builds
        /// events structurally from the tree, so a failure is a programming error.
        func emit(_ event: inout yaml_event_t) {
            guard yaml_emitter_emit(emitter, &event) == 1 else {
                let problem = emitter.pointee.problem.map { String(cString: $0) } ?? "unknown"
                preconditionFailure("libyaml refused an event: \(problem)")
            }
        }

        func node(_ value: JSONValue) {
            switch value {
            case .null: scalar("null", quoted: false)
            case .bool(let flag): scalar(flag ? "true" : "false", quoted: false)
            case .number(let text): scalar(text, quoted: false)
            case .string(let text): scalar(text, quoted: ManifestFormat.needsQuotes(text))
            case .array(let items):
                var event = yaml_event_t()
                yaml_sequence_start_event_initialize(&event, nil, nil, 1, YAML_ANY_SEQUENCE_STYLE)
                emit(&event)
                for item in items { node(item) }
                yaml_sequence_end_event_initialize(&event)
                emit(&event)
            case .object(let object):
                var event = yaml_event_t()
                yaml_mapping_start_event_initialize(&event, nil, nil, 1, YAML_ANY_MAPPING_STYLE)
                emit(&event)
                for member in object.members {
                    scalar(member.key, quoted: ManifestFormat.needsQuotes(member.key))
                    node(member.value)
                }
                yaml_mapping_end_event_initialize(&event)
                emit(&event)
            }
        }

        /// A scalar with implicit tags: double-quoted where `needsQuotes` says so, else libyaml's
        /// choice (plain when it can, quoted where the text requires it).
        func scalar(_ text: String, quoted: Bool) {
            var text = text
            let style = quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE
            text.withUTF8 { utf8 in
                var event = yaml_event_t()
                // libyaml requires a non-null value pointer even for the empty string.
                withUnsafePointer(to: UInt8(0)) { empty in
                    _ = yaml_scalar_event_initialize(&event, nil, nil, utf8.baseAddress ?? empty, Int32(utf8.count), 1, 1, style)
                }
                emit(&event)
            }
        }
    }
}
