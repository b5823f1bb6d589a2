import EventCore

/// Identifies one broadcast: the node that originated it and that node's
/// sequence number for it. Every node delivers a given ID at most once.
///
/// Sequence numbers start at 0 for each ``GossipInstance`` and wrap after
/// 2³² broadcasts (compared with serial-number arithmetic, RFC 1982), so an
/// origin's node ID must be unique per incarnation: ``GossipNode`` draws a
/// random one at each start unless told otherwise.
public struct MessageID: Hashable, Sendable, CustomStringConvertible {
    /// The node that broadcast the message.
    public var origin: NodeID
    /// The origin's sequence number for the message.
    public var sequence: UInt32

    /// Creates an ID.
    public init(origin: NodeID, sequence: UInt32) {
        self.origin = origin
        self.sequence = sequence
    }

    /// `origin#sequence`.
    public var description: String { "\(origin)#\(sequence)" }
}

/// A broadcast as the application receives it.
public struct GossipDelivery: Sendable {
    /// The message's identity.
    public var id: MessageID
    /// The bytes the origin broadcast.
    public var payload: [UInt8]
    /// How many hops the copy that arrived first travelled (1 when it came
    /// straight from the origin; saturates at 127).
    public var hops: Int
    /// When it was delivered, on the driver's clock.
    public var deliveredAt: Instant

    /// Creates a delivery.
    public init(id: MessageID, payload: [UInt8], hops: Int, deliveredAt: Instant) {
        self.id = id
        self.payload = payload
        self.hops = hops
        self.deliveredAt = deliveredAt
    }
}
