import EventCore
import WireCodec

/// How a ``GossipInstance`` spreads a broadcast.
public enum DisseminationMode: Hashable, Sendable, CustomStringConvertible {
    /// Push gossip (Pittacus's behaviour): on first receipt a node forwards
    /// the payload to ``GossipConfiguration/fanout`` peers drawn at random
    /// from its partial view. Robust, but each node receives about `fanout`
    /// copies of every message.
    case push
    /// Epidemic broadcast trees (Plumtree, Leitão et al. 2007): payloads go
    /// eagerly along a spanning tree of the active view, other neighbours
    /// get batched announcements (IHAVE) and graft a missing message onto
    /// the tree if the tree failed to bring it. About one payload per node
    /// per broadcast in steady state.
    case plumtree

    /// `push` or `plumtree`.
    public var description: String {
        switch self {
        case .push: "push"
        case .plumtree: "plumtree"
        }
    }
}

/// The settings of a ``GossipInstance``. Defaults follow Pittacus (512-byte
/// messages), HyParView (view sizes, random-walk lengths) and Plumtree.
/// ``validate()`` checks every field; the instance calls it.
public struct GossipConfiguration: Hashable, Sendable {
    /// How broadcasts spread. Default ``DisseminationMode/plumtree``.
    public var mode: DisseminationMode = .plumtree

    /// The largest gossip datagram, frame header included, in bytes
    /// (64 ... 65,507). Default 512, as Pittacus. A data message costs
    /// ``dataMessageOverhead`` bytes on top of its payload, so the default
    /// payload limit is 486 bytes (``maximumPayloadSize``). The one
    /// exception: anti-entropy's repair of a message, one tag byte longer,
    /// so nodes take frames of one byte more.
    public var maximumMessageSize = 512

    /// Push mode: peers each message is forwarded to on first receipt
    /// (1 ... 64). Default 4.
    public var fanout = 4

    /// Size of the active view: the symmetric neighbour set that carries
    /// Plumtree's tree and is watched by heartbeats (1 ... 64). HyParView
    /// suggests log₁₀(N) + 1; default 5 suits clusters up to ~10,000 nodes.
    public var activeViewSize = 5
    /// Size of the passive view: standby peers that replace failed
    /// neighbours (1 ... 1,024). Default 30.
    public var passiveViewSize = 30
    /// Hops a join travels before the node at its end takes the newcomer
    /// into its active view (HyParView's ARWL, 1 ... 16). Default 6.
    public var activeRandomWalkLength = 6
    /// The hop count at which a forwarded join also puts the newcomer into
    /// the passive view (HyParView's PRWL, 0 ... activeRandomWalkLength).
    /// Default 3.
    public var passiveRandomWalkLength = 3

    /// How often a node exchanges a sample of its views with a peer found
    /// by a random walk, refreshing the passive view. Default 2 s.
    public var shuffleInterval: Duration = .seconds(2)
    /// Active-view entries in a shuffle sample (0 ... 16). Default 3.
    /// With ``shufflePassiveCount``, the sample must fit one message
    /// (``shuffleMessageSize`` at most ``maximumMessageSize``).
    public var shuffleActiveCount = 3
    /// Passive-view entries in a shuffle sample (0 ... 32). Default 4.
    public var shufflePassiveCount = 4

    /// The largest shuffle the counts make, frame header included: the
    /// sender and its sample, every endpoint an IPv6 one (19 bytes), with
    /// the tag, time to live, sender and count.
    public var shuffleMessageSize: Int {
        FrameHeader.size + 1 + 1 + Endpoint.maximumEncodedSize + 1
            + (1 + shuffleActiveCount + shufflePassiveCount) * Endpoint.maximumEncodedSize
    }

    /// How often a node sends a heartbeat to each active neighbour it has
    /// sent nothing else to in the interval. Default 250 ms.
    public var heartbeatInterval: Duration = .milliseconds(250)
    /// Silence after which an active neighbour is taken for failed and
    /// replaced from the passive view (more than twice
    /// ``heartbeatInterval``: links are checked once an interval, so one
    /// that carried something just under an interval before a check gets
    /// its heartbeat at the next, nearly two intervals after). Default 1 s.
    public var peerTimeout: Duration = .seconds(1)
    /// How long a request to become a neighbour (or to join) waits for its
    /// answer before another peer is tried. Default 500 ms.
    public var requestTimeout: Duration = .milliseconds(500)
    /// How often a node re-probes peers it took for failed, so that two
    /// sides of a healed partition find each other again. Default 3 s.
    public var reconnectInterval: Duration = .seconds(3)
    /// How many failed peers are remembered for re-probing (0 ... 256).
    /// Default 16.
    public var failedPeersCapacity = 16

    /// Plumtree: how long announcements (IHAVE) are batched before they
    /// are sent. Default 10 ms.
    public var lazyPushInterval: Duration = .milliseconds(10)
    /// Plumtree: how long after the first announcement of a missing
    /// message a node waits, at most, for the tree to bring it before it
    /// grafts the announcer (more than ``lazyPushInterval``). Each IHAVE
    /// waits a random time between half of it (but more than
    /// ``lazyPushInterval``) and all of it, so that the nodes a broken tree
    /// cut off do not all graft at once. Default 100 ms.
    public var graftTimeout: Duration = .milliseconds(100)
    /// Plumtree: the most announced-but-missing messages tracked at once
    /// (16 ... 1,048,576); further announcements are dropped and counted,
    /// so a peer flooding announcements cannot grow memory. Default 4,096.
    public var maximumMissingMessages = 4_096

    /// How often a node runs anti-entropy with a random peer: both sides
    /// send a digest of the messages they retain and pull what they lack.
    /// Default 1 s.
    public var antiEntropyInterval: Duration = .seconds(1)
    /// The most messages retained for anti-entropy and grafts (1 ...
    /// 1,048,576); the oldest go first. Default 1,024.
    public var retentionCapacity = 1_024
    /// How long a message is retained at most, counted from its broadcast
    /// (its ``GossipData/age``, carried from node to node), so also how
    /// long it lives in the cluster: older copies are neither served,
    /// taken nor delivered. Default 60 s.
    public var retentionPeriod: Duration = .seconds(60)
    /// The most messages one pull asks for or answers (1 ... 1,024).
    /// Default 64.
    public var maximumPullCount = 64

    /// Origins whose delivered sequence numbers are remembered for
    /// de-duplication (16 ... 1,048,576), each in a window of the last
    /// ``SeenWindows/windowSize`` sequence numbers. Beyond it an origin
    /// not heard from lately is forgotten (counted; CLOCK, an
    /// approximation of least recently used). Default 4,096 (512 KiB).
    /// Delivery is exactly once while every origin that broadcast within
    /// ``retentionPeriod`` is tracked: a forgotten origin's messages still
    /// retained elsewhere are pulled and delivered again. With more than
    /// 4,096 nodes broadcasting, raise it to their number.
    public var maximumTrackedOrigins = 4_096

    /// Creates the default configuration.
    public init() {}

    /// Creates the default configuration for `mode`.
    public init(mode: DisseminationMode) {
        self.mode = mode
    }

    /// Bytes a data message adds to its payload: the 13-byte frame header,
    /// a kind-and-hops byte, the 8-byte origin and the 4-byte sequence
    /// number. 26, as Pittacus.
    public static let dataMessageOverhead = 26

    /// The largest payload ``GossipInstance/broadcast(_:now:into:)`` accepts:
    /// ``maximumMessageSize`` − ``dataMessageOverhead``.
    public var maximumPayloadSize: Int { maximumMessageSize - Self.dataMessageOverhead }

    /// Checks every field.
    ///
    /// - Throws: `ConfigurationError` naming the first field out of range.
    public func validate() throws(ConfigurationError) {
        try check("maximumMessageSize", maximumMessageSize, 64...65_507)
        try check("fanout", fanout, 1...64)
        try check("activeViewSize", activeViewSize, 1...64)
        try check("passiveViewSize", passiveViewSize, 1...1_024)
        try check("activeRandomWalkLength", activeRandomWalkLength, 1...16)
        try check("passiveRandomWalkLength", passiveRandomWalkLength, 0...activeRandomWalkLength)
        try check("shuffleActiveCount", shuffleActiveCount, 0...16)
        try check("shufflePassiveCount", shufflePassiveCount, 0...32)
        try check("shuffleMessageSize", shuffleMessageSize, 0...maximumMessageSize)
        try check("failedPeersCapacity", failedPeersCapacity, 0...256)
        try check("maximumMissingMessages", maximumMissingMessages, 16...1_048_576)
        try check("retentionCapacity", retentionCapacity, 1...1_048_576)
        try check("maximumPullCount", maximumPullCount, 1...1_024)
        try check("maximumTrackedOrigins", maximumTrackedOrigins, 16...1_048_576)
        let millisecond = Duration.milliseconds(1)
        let hour = Duration.seconds(3_600)
        try check("shuffleInterval", shuffleInterval, millisecond...hour)
        try check("heartbeatInterval", heartbeatInterval, millisecond...hour)
        try check("peerTimeout", peerTimeout, (heartbeatInterval * 2 + millisecond)...hour)
        try check("requestTimeout", requestTimeout, millisecond...hour)
        try check("reconnectInterval", reconnectInterval, millisecond...hour)
        try check("lazyPushInterval", lazyPushInterval, millisecond...hour)
        try check("graftTimeout", graftTimeout, (lazyPushInterval + millisecond)...hour)
        try check("antiEntropyInterval", antiEntropyInterval, millisecond...hour)
        try check("retentionPeriod", retentionPeriod, millisecond...Duration.seconds(86_400))
    }

    private func check<Value: Comparable>(
        _ field: String, _ value: Value, _ range: ClosedRange<Value>
    ) throws(ConfigurationError) {
        guard range.contains(value) else {
            throw ConfigurationError(
                field: field, value: "\(value)", allowedRange: "\(range.lowerBound) ... \(range.upperBound)")
        }
    }
}
