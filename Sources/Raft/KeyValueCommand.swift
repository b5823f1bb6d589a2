import WireCodec

/// A command of ``KeyValueStateMachine``: what a client proposes, encoded
/// with ``encoded`` (a tag byte, the key as a length-prefixed UTF-8
/// string, and for a put the length-prefixed value).
public enum KeyValueCommand: Hashable, Sendable {
    /// Sets `key` to `value`. Result: the previous value.
    case put(key: String, value: [UInt8])
    /// Removes `key`. Result: the previous value.
    case delete(key: String)
    /// Reads `key` through the log, so the read is linearizable. Result:
    /// the current value.
    case get(key: String)

    private enum Tag: UInt8 {
        case put = 1, delete, get
    }

    /// The key the command is about.
    public var key: String {
        switch self {
        case .put(let key, _), .delete(let key), .get(let key): key
        }
    }

    /// The command's bytes, to propose.
    public var encoded: [UInt8] {
        var writer = WireWriter()
        encode(to: &writer)
        return writer.bytes
    }
}

extension KeyValueCommand: WireCodable {
    /// Writes the tag, the key and (for a put) the value.
    public func encode(to writer: inout WireWriter) {
        switch self {
        case .put(let key, let value):
            writer.writeUInt8(Tag.put.rawValue)
            writer.writeString(key)
            writer.writeBytes(value)
        case .delete(let key):
            writer.writeUInt8(Tag.delete.rawValue)
            writer.writeString(key)
        case .get(let key):
            writer.writeUInt8(Tag.get.rawValue)
            writer.writeString(key)
        }
    }

    /// Reads what ``encode(to:)`` writes.
    ///
    /// - Throws: `WireError` `.truncated`, `.invalidValue` (unknown tag,
    ///   invalid UTF-8), `.lengthExceedsLimit`.
    public init(from reader: inout WireReader) throws(WireError) {
        switch try reader.readEnum(Tag.self) {
        case .put: self = .put(key: try reader.readString(), value: try reader.readByteArray())
        case .delete: self = .delete(key: try reader.readString())
        case .get: self = .get(key: try reader.readString())
        }
    }
}
