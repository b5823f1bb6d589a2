import WireCodec

/// A replicated map from string keys to byte values: a ready-made
/// ``RaftStateMachine`` whose commands are ``KeyValueCommand``s.
///
/// Each command's result is the value it saw (the previous value for a put
/// or delete, the current one for a get) encoded as a presence byte and a
/// length-prefixed value; read it with ``decodeResult(_:)``. A command that
/// does not decode changes nothing, is counted in ``malformedCommands``
/// and has an empty result.
///
/// ```swift
/// let store = KeyValueStateMachine()
/// // ... a RaftNode with stateMachine: store
/// node.propose(KeyValueCommand.put(key: "x", value: [1]).encoded) { result in
///     if case .success(let bytes) = result, let previous = try? KeyValueStateMachine.decodeResult(bytes) {
///         print("previous:", previous)   // only when the key had a value
///     }
/// }
/// ```
public final class KeyValueStateMachine: RaftStateMachine {
    /// The map as applied so far on this node. Reading it directly is a
    /// local, possibly stale read; a ``KeyValueCommand/get(key:)`` through
    /// the log is linearizable.
    public private(set) var values: [String: [UInt8]] = [:]
    /// Commands that did not decode.
    public private(set) var malformedCommands = 0

    /// Creates an empty map.
    public init() {}

    /// Applies one encoded ``KeyValueCommand``; see the type's description
    /// for the result.
    public func apply(_ command: [UInt8], at index: UInt64) -> [UInt8] {
        let parsed = Self.read(command) { reader throws(WireError) in try KeyValueCommand(from: &reader) }
        guard case .success(let decoded) = parsed else {
            malformedCommands += 1
            return []
        }
        let seen: [UInt8]?
        switch decoded {
        case .put(let key, let value): seen = values.updateValue(value, forKey: key)
        case .delete(let key): seen = values.removeValue(forKey: key)
        case .get(let key): seen = values[key]
        }
        var writer = WireWriter()
        writer.writeOptional(seen) { writer, value in writer.writeBytes(value) }
        return writer.bytes
    }

    /// The whole map: a count, then each key and value (length-prefixed),
    /// keys in ascending order so that equal maps give equal bytes.
    public func snapshot() -> [UInt8] {
        var writer = WireWriter()
        writer.writeVarint(UInt64(values.count))
        for (key, value) in values.sorted(by: { $0.key < $1.key }) {
            writer.writeString(key)
            writer.writeBytes(value)
        }
        return writer.bytes
    }

    /// Replaces the map with the one `snapshot` holds.
    ///
    /// - Throws: `WireError` if `snapshot` is not what ``snapshot()``
    ///   writes; the map is then unchanged.
    public func restore(from snapshot: [UInt8]) throws {
        values = try Self.read(snapshot) { reader throws(WireError) in
            let count = try reader.readVarint()
            var restored: [String: [UInt8]] = [:]
            for _ in 0..<count {
                let key = try reader.readString()
                restored[key] = try reader.readByteArray()
            }
            return restored
        }.get()
    }

    /// Decodes a command's result: the value it saw, or nil if the key was
    /// absent.
    ///
    /// - Throws: `WireError` if `result` is not a result of this state
    ///   machine (an empty result comes from a malformed command).
    public static func decodeResult(_ result: [UInt8]) throws(WireError) -> [UInt8]? {
        try read(result) { reader throws(WireError) in
            try reader.readOptional { reader throws(WireError) in try reader.readByteArray() }
        }.get()
    }

    /// Reads a value that fills `bytes` exactly.
    private static func read<Value>(
        _ bytes: [UInt8], _ body: (inout WireReader) throws(WireError) -> Value
    ) -> Result<Value, WireError> {
        bytes.withUnsafeBytes { raw in
            var reader = WireReader(raw)
            do throws(WireError) {
                let value = try body(&reader)
                try reader.finish()
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
    }
}
