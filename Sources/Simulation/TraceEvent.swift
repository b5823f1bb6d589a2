import EventCore

/// One thing that happened in a ``SimulatedNetwork``, with the virtual time
/// it happened at. Recorded while ``SimulatedNetwork/traceCapacity`` is above
/// zero; two runs from the same seed record equal traces.
public struct TraceEvent: Hashable, Sendable, CustomStringConvertible {
    /// Why a message copy was not delivered.
    public enum DropReason: Hashable, Sendable {
        /// The link's loss probability.
        case loss
        /// The link was blocked by a partition.
        case partition
        /// The destination was crashed when the copy arrived.
        case crash
        /// No node has the destination endpoint, or it has no receive
        /// handler.
        case noReceiver
    }

    /// What happened.
    public enum Kind: Hashable, Sendable {
        /// A node sent message number `messageID` of `size` bytes.
        case send(messageID: UInt64, from: Endpoint, to: Endpoint, size: Int)
        /// The network made a second copy of message `messageID`.
        case duplicate(messageID: UInt64, from: Endpoint, to: Endpoint)
        /// A copy of message `messageID` was handed to the destination's
        /// receive handler.
        case deliver(messageID: UInt64, from: Endpoint, to: Endpoint, size: Int)
        /// A copy of message `messageID` was dropped.
        case drop(messageID: UInt64, from: Endpoint, to: Endpoint, reason: DropReason)
        /// A timer of the node at `node` fired.
        case timerFired(node: Endpoint)
        /// The node at `node` crashed.
        case crash(node: Endpoint)
        /// The node at `node` restarted.
        case restart(node: Endpoint)
    }

    /// When it happened, in the network's virtual time.
    public var time: Instant
    /// What happened.
    public var kind: Kind

    /// Creates a trace event.
    public init(time: Instant, kind: Kind) {
        self.time = time
        self.kind = kind
    }

    /// The event in one line: time, kind, message number, endpoints.
    public var description: String {
        switch kind {
        case .send(let id, let from, let to, let size):
            return "\(time) send #\(id) \(from) -> \(to) (\(size) bytes)"
        case .duplicate(let id, let from, let to):
            return "\(time) duplicate #\(id) \(from) -> \(to)"
        case .deliver(let id, let from, let to, let size):
            return "\(time) deliver #\(id) \(from) -> \(to) (\(size) bytes)"
        case .drop(let id, let from, let to, let reason):
            return "\(time) drop #\(id) \(from) -> \(to) (\(reason))"
        case .timerFired(let node):
            return "\(time) timer \(node)"
        case .crash(let node):
            return "\(time) crash \(node)"
        case .restart(let node):
            return "\(time) restart \(node)"
        }
    }
}
