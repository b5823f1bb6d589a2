import EventCore
import WireCodec

/// One piece of news spread by piggybacking on pings, acks and gossip
/// packets: a membership change, or a user broadcast.
///
/// Incarnation rules (SWIM §4.2): only the member itself raises its
/// incarnation. `alive` overrides anything with a lower incarnation;
/// `suspect` overrides `alive` of the same or lower incarnation; `dead`
/// and `left` override `alive` and `suspect` of the same or lower one.
public enum SWIMUpdate: Hashable, Sendable, WireCodable {
    /// The member is alive at this incarnation, reached at its endpoint
    /// and publishing this metadata.
    case alive(Member)
    /// `by` suspects the member at this incarnation.
    case suspect(NodeID, incarnation: UInt64, by: NodeID)
    /// `by` declared the member dead at this incarnation.
    case dead(NodeID, incarnation: UInt64, by: NodeID)
    /// The member left gracefully at this incarnation.
    case left(NodeID, incarnation: UInt64)
    /// A user broadcast.
    case broadcast(SWIMBroadcast)

    enum Tag: UInt8 {
        case alive = 0, suspect, dead, left, broadcast
    }

    /// The most bytes an alive update takes beyond its metadata.
    public static let aliveOverhead = 1 + 8 + 10 + Endpoint.maximumEncodedSize + 3
    /// The most bytes a broadcast update takes beyond its payload.
    public static let broadcastOverhead = 1 + 8 + 10 + 3

    /// The incarnation a membership update claims (nil for a broadcast).
    var incarnation: UInt64? {
        switch self {
        case .alive(let member): member.incarnation
        case .suspect(_, let incarnation, _), .dead(_, let incarnation, _), .left(_, let incarnation): incarnation
        case .broadcast: nil
        }
    }

    /// The member this update is about (the origin, for a broadcast).
    public var subject: NodeID {
        switch self {
        case .alive(let member): member.id
        case .suspect(let id, _, _), .dead(let id, _, _), .left(let id, _): id
        case .broadcast(let broadcast): broadcast.origin
        }
    }

    /// The bytes ``encode(to:)`` writes.
    public var encodedSize: Int {
        switch self {
        case .alive(let member): 1 + member.fieldsEncodedSize
        case .suspect(_, let incarnation, _), .dead(_, let incarnation, _):
            1 + 8 + WireWriter.varintSize(incarnation) + 8
        case .left(_, let incarnation):
            1 + 8 + WireWriter.varintSize(incarnation)
        case .broadcast(let broadcast):
            1 + 8 + WireWriter.varintSize(broadcast.sequence)
                + WireWriter.varintSize(UInt64(broadcast.payload.count)) + broadcast.payload.count
        }
    }

    /// Appends the update: a tag byte and its fields.
    public func encode(to writer: inout WireWriter) {
        switch self {
        case .alive(let member):
            writer.writeUInt8(Tag.alive.rawValue)
            writer.write(member.id)
            writer.writeVarint(member.incarnation)
            writer.write(member.endpoint)
            writer.writeBytes(member.metadata)
        case .suspect(let id, let incarnation, let by):
            writer.writeUInt8(Tag.suspect.rawValue)
            writer.write(id)
            writer.writeVarint(incarnation)
            writer.write(by)
        case .dead(let id, let incarnation, let by):
            writer.writeUInt8(Tag.dead.rawValue)
            writer.write(id)
            writer.writeVarint(incarnation)
            writer.write(by)
        case .left(let id, let incarnation):
            writer.writeUInt8(Tag.left.rawValue)
            writer.write(id)
            writer.writeVarint(incarnation)
        case .broadcast(let broadcast):
            writer.writeUInt8(Tag.broadcast.rawValue)
            writer.write(broadcast.origin)
            writer.writeVarint(broadcast.sequence)
            writer.writeBytes(broadcast.payload)
        }
    }

    /// Reads what ``encode(to:)`` writes. Metadata and payloads are bounded
    /// by the reader's `maximumByteStringLength`.
    ///
    /// - Throws: `WireError`: `.unknownTag` (as `.invalidValue`) for an
    ///   unknown tag, `.truncated`, `.lengthExceedsLimit`, `.invalidVarint`.
    public init(from reader: inout WireReader) throws(WireError) {
        switch try reader.readEnum(Tag.self) {
        case .alive:
            let id = try reader.read(NodeID.self)
            let incarnation = try reader.readIncarnation()
            let endpoint = try reader.read(Endpoint.self)
            let metadata = try reader.readByteArray()
            self = .alive(Member(id: id, endpoint: endpoint, incarnation: incarnation, status: .alive, metadata: metadata))
        case .suspect:
            self = .suspect(try reader.read(NodeID.self), incarnation: try reader.readIncarnation(), by: try reader.read(NodeID.self))
        case .dead:
            self = .dead(try reader.read(NodeID.self), incarnation: try reader.readIncarnation(), by: try reader.read(NodeID.self))
        case .left:
            self = .left(try reader.read(NodeID.self), incarnation: try reader.readIncarnation())
        case .broadcast:
            let origin = try reader.read(NodeID.self)
            let sequence = try reader.readVarint()
            self = .broadcast(SWIMBroadcast(origin: origin, sequence: sequence, payload: try reader.readByteArray()))
        }
    }
}

extension WireReader {
    /// An incarnation: a varint of at most ``Member/maximumIncarnation``.
    ///
    /// - Throws: `WireError.invalidValue` above it, and what
    ///   `readVarint()` throws.
    mutating func readIncarnation() throws(WireError) -> UInt64 {
        try readVarint(atMost: Member.maximumIncarnation, what: "incarnation")
    }
}
