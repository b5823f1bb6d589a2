import EventCore
import WireCodec

/// One gossip datagram's body (the part after the frame header): a data
/// message carrying a broadcast, or one of the control messages of the
/// membership layer (HyParView), the tree (Plumtree) and anti-entropy.
///
/// Layout: the first byte says what follows. Below 0x80 it is a data
/// message and the byte is its hop count (0 ... 127): then the 8-byte
/// origin, the 4-byte sequence number (both little-endian) and the payload
/// to the end of the frame, which is how a data message costs only
/// ``GossipConfiguration/dataMessageOverhead`` (26) bytes with the 13-byte
/// frame header. From 0x80 it is 0x80 + a ``Kind`` and the fields below.
public enum GossipMessage: Hashable, Sendable {
    /// A broadcast on its way through the tree (Plumtree eager push) or the
    /// push fanout, or the answer to a graft.
    case data(GossipData)
    /// A broadcast sent in answer to a ``pull(_:)`` (anti-entropy): the
    /// receiver delivers and spreads it if new, but a duplicate is no sign
    /// of a redundant tree edge.
    case repair(GossipData)
    /// A newcomer asks a contact node to take it into the cluster.
    case join
    /// HyParView's random walk spreading a newcomer through the overlay.
    case forwardJoin(newcomer: Endpoint, timeToLive: UInt8)
    /// Asks the receiver to take the sender into its active view; high
    /// priority may not be refused (the sender has no neighbour left, is
    /// answering a forward join for a newcomer, or probes a former
    /// neighbour after a partition).
    case neighbor(highPriority: Bool)
    /// The answer to ``neighbor(highPriority:)`` or ``join``.
    case neighborReply(accepted: Bool)
    /// The sender dropped the receiver from its active view.
    case disconnect
    /// A sample of the origin's views on a random walk (HyParView shuffle).
    case shuffle(origin: Endpoint, timeToLive: UInt8, sample: [Endpoint])
    /// The walk's end node answers the origin with a sample of its own.
    case shuffleReply(sample: [Endpoint])
    /// Keeps an idle active-view link alive.
    case heartbeat
    /// Plumtree lazy push: the sender has these messages.
    case ihave([MessageID])
    /// Plumtree: send me these and put me back on your tree.
    case graft([MessageID])
    /// Plumtree: take me off your tree (I got a message twice).
    case prune
    /// Anti-entropy: the message IDs the sender retains, as runs of
    /// sequence numbers; a non-reply asks for the receiver's digest back.
    case digest([DigestRun], isReply: Bool)
    /// Anti-entropy: send me these (as ``repair(_:)``).
    case pull([MessageID])

    /// The control message tags (byte 0 is 0x80 + the raw value).
    enum Kind: UInt8 {
        case repair = 0, join, forwardJoin, neighbor, neighborReply, disconnect, shuffle, shuffleReply,
            heartbeat, ihave, graft, prune, digest, pull
        /// A data message, or a repair, with its age: `[tag][hops][age in
        /// milliseconds, varint][origin][sequence][payload]`. Only a
        /// message of age 0 goes in the forms without it (a fresh
        /// broadcast's eager push keeps its 26 bytes of overhead). A build
        /// before them refuses these tags, as unknown, and drops the frame.
        case agedData, agedRepair
    }

    /// The most hops a data message records; more saturate here.
    public static let maximumHops = 127
    /// The largest age a message carries, in milliseconds (2³⁵, over a
    /// year: above any ``GossipConfiguration/retentionPeriod``); more
    /// saturate here, and the decoder refuses more.
    public static let maximumAgeMilliseconds: UInt64 = 1 << 35
    /// The bytes an aged data message or repair adds to a data message's
    /// ``GossipConfiguration/dataMessageOverhead``: its tag and the age
    /// (a varint of up to 6 bytes).
    public static let agedOverhead = 7

    /// Appends this message's body to `writer` (frame with
    /// ``encodeFrame(into:)`` instead to send it).
    public func encode(to writer: inout WireWriter) {
        switch self {
        case .data(let data):
            Self.encode(data, plainTag: nil, agedTag: .agedData, to: &writer)
        case .repair(let data):
            Self.encode(data, plainTag: .repair, agedTag: .agedRepair, to: &writer)
        case .join:
            writer.writeUInt8(Self.tag(.join))
        case .forwardJoin(let newcomer, let timeToLive):
            writer.writeUInt8(Self.tag(.forwardJoin))
            writer.writeUInt8(timeToLive)
            newcomer.encode(to: &writer)
        case .neighbor(let highPriority):
            writer.writeUInt8(Self.tag(.neighbor))
            writer.writeBool(highPriority)
        case .neighborReply(let accepted):
            writer.writeUInt8(Self.tag(.neighborReply))
            writer.writeBool(accepted)
        case .disconnect:
            writer.writeUInt8(Self.tag(.disconnect))
        case .shuffle(let origin, let timeToLive, let sample):
            writer.writeUInt8(Self.tag(.shuffle))
            writer.writeUInt8(timeToLive)
            origin.encode(to: &writer)
            writer.writeArray(sample) { $1.encode(to: &$0) }
        case .shuffleReply(let sample):
            writer.writeUInt8(Self.tag(.shuffleReply))
            writer.writeArray(sample) { $1.encode(to: &$0) }
        case .heartbeat:
            writer.writeUInt8(Self.tag(.heartbeat))
        case .ihave(let ids):
            writer.writeUInt8(Self.tag(.ihave))
            writer.writeArray(ids) { $1.encode(to: &$0) }
        case .graft(let ids):
            writer.writeUInt8(Self.tag(.graft))
            writer.writeArray(ids) { $1.encode(to: &$0) }
        case .prune:
            writer.writeUInt8(Self.tag(.prune))
        case .digest(let runs, let isReply):
            writer.writeUInt8(Self.tag(.digest))
            writer.writeBool(isReply)
            writer.writeArray(runs) { $1.encode(to: &$0) }
        case .pull(let ids):
            writer.writeUInt8(Self.tag(.pull))
            writer.writeArray(ids) { $1.encode(to: &$0) }
        }
    }

    /// Appends this message as one gossip frame (header and body) to
    /// `writer`.
    public func encodeFrame(into writer: inout WireWriter) {
        do {
            try Frame.encode(protocol: .gossip, into: &writer) { encode(to: &$0) }
        } catch {
            // Frame.encode throws only for bodies above the frame limit
            // (4 MiB by default); every gossip message is bounded far below.
            preconditionFailure("a gossip message exceeded the frame limit: \(error)")
        }
    }

    /// Decodes a frame body.
    ///
    /// - Throws: `WireError`: `.truncated` if the body ends early,
    ///   `.invalidValue` for an unknown tag, a bad bool or address family,
    ///   `.lengthExceedsLimit` for an array longer than `limits` allow,
    ///   `.trailingBytes` if bytes follow a control message.
    public init(decoding body: UnsafeRawBufferPointer, limits: WireLimits = .default) throws(WireError) {
        var reader = WireReader(body, limits: limits)
        let first = try reader.readUInt8()
        guard first >= 0x80 else {
            self = .data(try GossipData(identityAndPayloadFrom: &reader, hops: Int(first)))
            return
        }
        guard let kind = Kind(rawValue: first &- 0x80) else {
            throw WireError(.invalidValue, offset: 0, detail: "unknown gossip message tag 0x\(String(first, radix: 16))")
        }
        switch kind {
        case .repair:
            let hops = min(Int(try reader.readUInt8()), Self.maximumHops)
            self = .repair(try GossipData(identityAndPayloadFrom: &reader, hops: hops))
            return
        case .join: self = .join
        case .forwardJoin:
            let timeToLive = try reader.readUInt8()
            self = .forwardJoin(newcomer: try Endpoint(from: &reader), timeToLive: timeToLive)
        case .neighbor: self = .neighbor(highPriority: try reader.readBool())
        case .neighborReply: self = .neighborReply(accepted: try reader.readBool())
        case .disconnect: self = .disconnect
        case .shuffle:
            let timeToLive = try reader.readUInt8()
            let origin = try Endpoint(from: &reader)
            self = .shuffle(origin: origin, timeToLive: timeToLive, sample: try reader.readArray { r throws(WireError) in try Endpoint(from: &r) })
        case .shuffleReply:
            self = .shuffleReply(sample: try reader.readArray { r throws(WireError) in try Endpoint(from: &r) })
        case .heartbeat: self = .heartbeat
        case .ihave: self = .ihave(try reader.readArray { r throws(WireError) in try MessageID(from: &r) })
        case .graft: self = .graft(try reader.readArray { r throws(WireError) in try MessageID(from: &r) })
        case .prune: self = .prune
        case .digest:
            let isReply = try reader.readBool()
            self = .digest(try reader.readArray { r throws(WireError) in try DigestRun(from: &r) }, isReply: isReply)
        case .pull: self = .pull(try reader.readArray { r throws(WireError) in try MessageID(from: &r) })
        case .agedData:
            self = .data(try Self.readAged(from: &reader))
            return
        case .agedRepair:
            self = .repair(try Self.readAged(from: &reader))
            return
        }
        try reader.finish()
    }

    private static func tag(_ kind: Kind) -> UInt8 { 0x80 | kind.rawValue }

    /// A data message or a repair: of age 0, its plain form (a data
    /// message has no tag: its first byte is the hop count), else its aged
    /// form, the age after the hop count.
    private static func encode(_ data: GossipData, plainTag: Kind?, agedTag: Kind, to writer: inout WireWriter) {
        let age = data.ageMilliseconds
        if let leading = age == 0 ? plainTag : agedTag { writer.writeUInt8(tag(leading)) }
        writer.writeUInt8(UInt8(min(data.hops, maximumHops)))
        if age > 0 { writer.writeVarint(age) }
        data.encodeIdentityAndPayload(to: &writer)
    }

    private static func readAged(from reader: inout WireReader) throws(WireError) -> GossipData {
        let hops = min(Int(try reader.readUInt8()), maximumHops)
        let milliseconds = try reader.readVarint(atMost: maximumAgeMilliseconds, what: "message age")
        var data = try GossipData(identityAndPayloadFrom: &reader, hops: hops)
        data.age = .milliseconds(Int64(milliseconds))
        return data
    }
}

/// A broadcast in transit: its identity, hop count, age and payload.
public struct GossipData: Hashable, Sendable {
    /// The broadcast's identity.
    public var id: MessageID
    /// Hops travelled so far (the origin sends with 1).
    public var hops: Int
    /// How long the broadcast has been kept by the nodes it went through
    /// (in milliseconds rounded up on the wire; time in transit is not
    /// counted): its sender's retention adds the time it held it, so a
    /// message pulled or grafted from retention carries the time since it
    /// was broadcast, and no node keeps it past
    /// ``GossipConfiguration/retentionPeriod`` of that age.
    public var age: Duration
    /// The broadcast bytes.
    public var payload: [UInt8]

    /// Creates a data message.
    public init(id: MessageID, hops: Int, age: Duration = .zero, payload: [UInt8]) {
        self.id = id
        self.hops = hops
        self.age = age
        self.payload = payload
    }

    /// The age on the wire: milliseconds, rounded up (so that an age never
    /// goes back from node to node), at most
    /// ``GossipMessage/maximumAgeMilliseconds``.
    var ageMilliseconds: UInt64 {
        let (seconds, attoseconds) = age.components
        guard seconds >= 0, seconds > 0 || attoseconds > 0 else { return 0 }
        let milliseconds = UInt64(seconds).multipliedReportingOverflow(by: 1_000)
        guard !milliseconds.overflow else { return GossipMessage.maximumAgeMilliseconds }
        let part = UInt64(attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return min(milliseconds.partialValue + part, GossipMessage.maximumAgeMilliseconds)
    }

    func encodeIdentityAndPayload(to writer: inout WireWriter) {
        id.encode(to: &writer)
        payload.withUnsafeBytes { writer.writeRawBytes($0) }
    }

    /// Reads the ID, then takes every remaining byte as the payload.
    init(identityAndPayloadFrom reader: inout WireReader, hops: Int) throws(WireError) {
        id = try MessageID(from: &reader)
        self.hops = hops
        age = .zero
        payload = Array(try reader.readRawBytes(count: reader.remainingCount))
    }
}

/// A run of consecutive sequence numbers of one origin, in an
/// anti-entropy digest.
public struct DigestRun: Hashable, Sendable, WireCodable {
    /// The origin of the messages.
    public var origin: NodeID
    /// The first sequence number of the run.
    public var first: UInt32
    /// How many consecutive sequence numbers (wrapping) the run holds.
    public var count: UInt32

    /// Creates a run.
    public init(origin: NodeID, first: UInt32, count: UInt32) {
        self.origin = origin
        self.first = first
        self.count = count
    }

    /// The IDs of the run, in order.
    var ids: some Sequence<MessageID> {
        (0..<count).lazy.map { [origin, first] in MessageID(origin: origin, sequence: first &+ $0) }
    }

    /// Writes the origin (8 bytes), the first sequence number (4) and the
    /// count (a varint).
    public func encode(to writer: inout WireWriter) {
        writer.writeUInt64(origin.rawValue)
        writer.writeUInt32(first)
        writer.writeVarint(UInt64(count))
    }

    /// Reads what ``encode(to:)`` writes.
    ///
    /// - Throws: `WireError` if the bytes end early or the count does not
    ///   fit 32 bits.
    public init(from reader: inout WireReader) throws(WireError) {
        origin = NodeID(try reader.readUInt64())
        first = try reader.readUInt32()
        count = try reader.readVarint(as: UInt32.self)
    }
}

extension MessageID: WireCodable {
    /// Writes the origin (8 bytes) and the sequence number (4 bytes).
    public func encode(to writer: inout WireWriter) {
        writer.writeUInt64(origin.rawValue)
        writer.writeUInt32(sequence)
    }

    /// Reads what ``encode(to:)`` writes.
    ///
    /// - Throws: `WireError.Code.truncated` if fewer than 12 bytes remain.
    public init(from reader: inout WireReader) throws(WireError) {
        origin = NodeID(try reader.readUInt64())
        sequence = try reader.readUInt32()
    }
}
