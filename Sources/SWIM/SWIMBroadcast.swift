import EventCore

/// A user broadcast delivered by SWIM's dissemination (at most once per
/// instance).
public struct SWIMBroadcast: Hashable, Sendable {
    /// The member that broadcast it.
    public var origin: NodeID
    /// The origin's sequence number for it.
    public var sequence: UInt64
    /// The bytes.
    public var payload: [UInt8]

    /// Creates a broadcast.
    public init(origin: NodeID, sequence: UInt64, payload: [UInt8]) {
        self.origin = origin
        self.sequence = sequence
        self.payload = payload
    }
}
