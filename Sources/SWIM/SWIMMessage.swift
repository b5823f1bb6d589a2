import EventCore
import WireCodec

/// One SWIM datagram's body (the part after the frame header).
///
/// Layout: a kind byte, the sender's ``NodeID`` (8 bytes), the kind's
/// fields, then a count and that many piggybacked ``SWIMUpdate``s (pings,
/// acks and gossip carry them; the other kinds carry none).
public struct SWIMMessage: Hashable, Sendable {
    /// What the message asks or answers.
    public enum Body: Hashable, Sendable {
        /// A probe: the receiver, if it is `target`, answers
        /// ``ack(sequence:)`` with the same sequence number.
        case ping(sequence: UInt32, target: NodeID)
        /// The answer to a ping (direct, or relayed by an intermediary).
        case ack(sequence: UInt32)
        /// An indirect probe request (SWIM's ping-req): ping `target` at
        /// `endpoint` on the sender's behalf and relay the ack, or answer
        /// ``nack(sequence:)`` if none comes (Lifeguard).
        case pingRequest(sequence: UInt32, target: NodeID, endpoint: Endpoint)
        /// The intermediary of a ping-req got no ack from the target in time.
        case nack(sequence: UInt32)
        /// Piggybacked updates only (sent while updates are queued).
        case gossip
        /// Full-state exchange (anti-entropy, joins and reconnects): every
        /// member the sender knows, itself included. A non-reply asks for
        /// the receiver's state back.
        case pushPull(members: [Member], isReply: Bool)
        /// Multicast discovery: a member of `cluster`, reached at `endpoint`,
        /// is looking for its cluster. Receivers answer the datagram's
        /// source, not `endpoint`, which they do not trust.
        case announce(cluster: String, endpoint: Endpoint)
    }

    enum Kind: UInt8 {
        case ping = 0, ack, pingRequest, nack, gossip, pushPull, announce
    }

    /// The most bytes the frame header and a message's fixed fields take
    /// before its updates (a ping-req to an IPv6 endpoint, with the update
    /// count).
    public static let maximumHeaderSize = FrameHeader.size + 1 + 8 + 5 + 8 + Endpoint.maximumEncodedSize + 3
    /// The most piggybacked updates a message may carry: one per byte of
    /// the largest packet (an update takes more), so that no packet a
    /// member sends is refused for its count.
    public static let maximumUpdateCount = 65_507

    /// The sending member.
    public var sender: NodeID
    /// What the message is.
    public var body: Body
    /// Piggybacked updates.
    public var updates: [SWIMUpdate]

    /// Creates a message.
    public init(sender: NodeID, body: Body, updates: [SWIMUpdate] = []) {
        self.sender = sender
        self.body = body
        self.updates = updates
    }

    /// Appends the body bytes (use ``encodeFrame(into:)`` to send).
    public func encode(to writer: inout WireWriter) {
        switch body {
        case .ping(let sequence, let target):
            writer.writeUInt8(Kind.ping.rawValue)
            writer.write(sender)
            writer.writeVarint(UInt64(sequence))
            writer.write(target)
        case .ack(let sequence):
            writer.writeUInt8(Kind.ack.rawValue)
            writer.write(sender)
            writer.writeVarint(UInt64(sequence))
        case .pingRequest(let sequence, let target, let endpoint):
            writer.writeUInt8(Kind.pingRequest.rawValue)
            writer.write(sender)
            writer.writeVarint(UInt64(sequence))
            writer.write(target)
            writer.write(endpoint)
        case .nack(let sequence):
            writer.writeUInt8(Kind.nack.rawValue)
            writer.write(sender)
            writer.writeVarint(UInt64(sequence))
        case .gossip:
            writer.writeUInt8(Kind.gossip.rawValue)
            writer.write(sender)
        case .pushPull(let members, let isReply):
            writer.writeUInt8(Kind.pushPull.rawValue)
            writer.write(sender)
            writer.writeBool(isReply)
            writer.writeVarint(UInt64(members.count))
            for member in members {
                writer.write(member.id)
                writer.write(member.endpoint)
                writer.writeVarint(member.incarnation)
                writer.writeUInt8(member.status.rawValue)
                writer.writeBytes(member.metadata)
            }
        case .announce(let cluster, let endpoint):
            writer.writeUInt8(Kind.announce.rawValue)
            writer.write(sender)
            writer.writeString(cluster)
            writer.write(endpoint)
        }
        writer.writeVarint(UInt64(updates.count))
        for update in updates { update.encode(to: &writer) }
    }

    /// Appends the whole frame (header and body).
    public func encodeFrame(into writer: inout WireWriter) {
        do {
            try Frame.encode(protocol: .swim, into: &writer) { encode(to: &$0) }
        } catch {
            // Frame.encode throws only above the default frame limit (4 MiB
            // of body): every message but a push-pull fits a packet, and the
            // instance fills a push-pull to at most maximumStateSize bytes,
            // which validate() keeps within 4 MiB (see pushPullMembers).
            preconditionFailure("a SWIM message exceeded the frame limit: \(error)")
        }
    }

    /// The limits a member decodes with: the protocol's, what a member with
    /// any valid ``SWIMConfiguration`` may send, not its own settings.
    /// Members may differ in ``SWIMConfiguration/maximumMetadataSize``,
    /// ``SWIMConfiguration/maximumBroadcastSize``,
    /// ``SWIMConfiguration/maximumMembers`` and
    /// ``SWIMConfiguration/maximumStateSize`` (a rolling change of them);
    /// what exceeds this member's own is dropped update by update when it
    /// is applied, where decoding with them refused the whole frame (a
    /// joiner then never took in a seed's push-pull that carried one long
    /// metadata). Strings: the largest metadata or broadcast payload
    /// (1,024 bytes; a cluster name is at most 64). Collections: a
    /// push-pull's sender and the most members any member keeps. Frames: a
    /// push-pull of the largest state, or the largest packet.
    public static let decodingLimits = WireLimits(
        maximumByteStringLength: SWIMConfiguration.largestItemSize,
        maximumCollectionCount: SWIMConfiguration.largestMemberCount + 1,
        maximumFrameLength: max(SWIMConfiguration.largestStateSize + 1_024, SWIMConfiguration.largestPacketSize))

    /// Decodes a frame body. Member lists are bounded by the limits'
    /// `maximumCollectionCount`, update counts by ``maximumUpdateCount``
    /// (and both by the bytes present), metadata and payloads by
    /// `maximumByteStringLength`.
    ///
    /// - Throws: `WireError`: `.truncated`, `.invalidValue` (unknown kind,
    ///   tag or status), `.lengthExceedsLimit`, `.invalidVarint`,
    ///   `.trailingBytes`.
    public init(decoding body: UnsafeRawBufferPointer, limits: WireLimits) throws(WireError) {
        var reader = WireReader(body, limits: limits)
        let kind = try reader.readEnum(Kind.self)
        sender = try reader.read(NodeID.self)
        switch kind {
        case .ping:
            self.body = .ping(sequence: try reader.readVarint(as: UInt32.self), target: try reader.read(NodeID.self))
        case .ack:
            self.body = .ack(sequence: try reader.readVarint(as: UInt32.self))
        case .pingRequest:
            self.body = .pingRequest(
                sequence: try reader.readVarint(as: UInt32.self), target: try reader.read(NodeID.self),
                endpoint: try reader.read(Endpoint.self))
        case .nack:
            self.body = .nack(sequence: try reader.readVarint(as: UInt32.self))
        case .gossip:
            self.body = .gossip
        case .pushPull:
            let isReply = try reader.readBool()
            let members = try reader.readArray { r throws(WireError) in
                let id = try r.read(NodeID.self)
                let endpoint = try r.read(Endpoint.self)
                let incarnation = try r.readIncarnation()
                let status = try r.readEnum(MemberStatus.self)
                return Member(id: id, endpoint: endpoint, incarnation: incarnation, status: status,
                              metadata: try r.readByteArray())
            }
            self.body = .pushPull(members: members, isReply: isReply)
        case .announce:
            self.body = .announce(cluster: try reader.readString(), endpoint: try reader.read(Endpoint.self))
        }
        // Bounded by the packet, not by maximumMembers (the limits' count,
        // which bounds a push-pull's member list): a packet may carry more
        // broadcasts than a small cluster has members.
        updates = try reader.readArray(maximumCount: Self.maximumUpdateCount) { r throws(WireError) in
            try r.read(SWIMUpdate.self)
        }
        try reader.finish()
    }
}
