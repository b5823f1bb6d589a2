import WireCodec

/// One entry of the replicated log: a user command, the empty entry a
/// new leader appends to commit the entries of earlier terms (Raft §5.4.2,
/// §8), or a new membership of the group.
public struct RaftEntry: Hashable, Sendable {
    /// What the entry carries.
    public enum Kind: UInt8, Hashable, Sendable {
        /// A user command, applied to the state machine when committed.
        case command = 0
        /// A new leader's empty entry; committed like any other, never
        /// applied to the state machine.
        case leaderNoop = 1
        /// A change of the group's members: the command is the encoded
        /// ``RaftMembership`` the group has from this entry on (a replica
        /// uses it once appended, committed or not). Never applied to the
        /// state machine.
        case membership = 2
    }

    /// The term of the leader that created the entry (at least 1).
    public var term: UInt64
    /// The entry's position in the log (1 for the first entry).
    public var index: UInt64
    /// What the entry carries.
    public var kind: Kind
    /// The command's bytes (empty for a ``Kind/leaderNoop``; the encoded
    /// ``RaftMembership`` for a ``Kind/membership`` entry).
    public var command: [UInt8]

    /// Creates an entry.
    public init(term: UInt64, index: UInt64, kind: Kind = .command, command: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.command = command
    }

    /// The bytes this entry counts for in flow control and the leader's
    /// uncommitted-bytes limit: the command's length.
    public var payloadSize: Int { command.count }
}

extension RaftEntry: WireCodable {
    /// Writes the term and index (varints), the kind byte and the
    /// length-prefixed command.
    public func encode(to writer: inout WireWriter) {
        writer.writeVarint(term)
        writer.writeVarint(index)
        writer.writeUInt8(kind.rawValue)
        writer.writeBytes(command)
    }

    /// Reads what ``encode(to:)`` writes. The command's length is checked
    /// against the reader's `maximumByteStringLength` before it is copied.
    ///
    /// - Throws: `WireError` `.truncated`, `.invalidValue` (unknown kind),
    ///   `.lengthExceedsLimit`, `.varintTooLong`, `.varintOverflow`.
    public init(from reader: inout WireReader) throws(WireError) {
        term = try reader.readVarint()
        index = try reader.readVarint()
        kind = try reader.readEnum(Kind.self)
        command = try reader.readByteArray()
    }
}
