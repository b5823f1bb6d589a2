import EventCore

/// The settings of a ``SWIMInstance``. Defaults are tuned for a LAN (or
/// loopback) cluster of up to a few thousand members: a crashed member is
/// known dead everywhere in about 3 s at 64 members, while the steady state
/// costs under 3 packets per member per second. They follow SWIM (Das et
/// al., 2002), Lifeguard (Dadgar et al., 2018) and hashicorp/memberlist's
/// LAN profile where those agree. ``validate()`` checks every field; the
/// instance calls it.
public struct SWIMConfiguration: Hashable, Sendable {
    /// The protocol period: each member probes one other member per period
    /// (randomized round-robin). Lifeguard stretches it on an unhealthy
    /// member. Default 750 ms (memberlist: 1 s), which keeps the steady
    /// state at 2.7 packets per member per second (a ping and an ack).
    public var protocolPeriod: Duration = .milliseconds(750)
    /// How long a direct ping waits for its ack before indirect probes are
    /// sent (stretched by local health). Default 250 ms. A member relaying
    /// an indirect probe waits ``relayTimeout`` for the target, then nacks,
    /// so `probeTimeout + relayTimeout` (1.8 × probeTimeout) must be less
    /// than ``protocolPeriod``, by at least two round trips for the nacks
    /// to come in time (memberlist's 500 ms in 1 s leaves 100 ms).
    public var probeTimeout: Duration = .milliseconds(250)

    /// How long a member relaying an indirect probe (ping-req) waits for
    /// the target's ack before it nacks the requester: 80% of
    /// ``probeTimeout``, as Lifeguard proposes, and unstretched by the
    /// relay's health. The requester sent its ping-req one (stretched)
    /// probe timeout into its period, so a relay that waited a whole probe
    /// timeout would nack at the period's end, where a requester on
    /// memberlist's timing (``probeTimeout`` half of ``protocolPeriod``)
    /// counts the nack missing, against its own health.
    public var relayTimeout: Duration { probeTimeout * 4 / 5 }
    /// Members asked to probe a target indirectly (ping-req, SWIM's k;
    /// 0 ... 16). Default 3.
    public var indirectProbeCount = 3

    /// Lifeguard dynamic suspicion: the shortest suspicion timeout is
    /// `suspicionMultiplier × max(1, log₁₀ N) × protocolPeriod` (N the
    /// members alive or suspect); it starts at
    /// `maximumSuspicionMultiplier` times that and shrinks towards it as
    /// independent confirmations arrive (0.1 ... 100). Default 1, which
    /// gives 1.35 s at 64 members (memberlist: 4 × log₁₀ N × 1 s): ample
    /// for a live suspect to hear of it and refute on a LAN.
    public var suspicionMultiplier = 1.0
    /// How many times the shortest suspicion timeout a suspicion lasts with
    /// no confirmation (1 ... 100). Default 3 (memberlist: 6).
    public var maximumSuspicionMultiplier = 3.0
    /// Independent confirmations (other members suspecting the same
    /// incarnation) that bring a suspicion down to its shortest timeout
    /// (Lifeguard's K; 0 ... 32). Default 3.
    public var suspicionConfirmations = 3
    /// When a member hears another member's suspicion, it probes the
    /// suspect itself at once with probability `confirmationProbes / (N − 2)`
    /// (N the members it knows, itself included: the others but the
    /// suspect; capped at 1), so about this many independent confirmations or
    /// refutations arrive within a probe, rather than one per protocol
    /// period (0 ... 32). Default 4. An extension of Lifeguard: it costs
    /// packets only while a suspicion lasts.
    public var confirmationProbes = 4

    /// Lifeguard local health awareness: the highest health score (0 is
    /// healthy). A member with score s waits `(s + 1)` times longer for
    /// acks and between probes (0 ... 32). Default 8, as memberlist.
    public var maximumHealthScore = 8

    /// Times each membership update or broadcast is sent: `⌈λ × log₁₀(N +
    /// 1)⌉`, at least λ (λ: 1 ... 64). Default 6: 11 sends at 64 members,
    /// 19 at 1,000, which leaves a member unreached with odds of about
    /// e⁻¹¹ and e⁻¹⁹ (memberlist: 4 × ⌈log₁₀(N + 1)⌉, 8 and 16).
    public var retransmitMultiplier = 6
    /// While updates are queued, a member sends them to
    /// ``gossipFanout`` random members every ``gossipInterval``, besides
    /// piggybacking them on pings and acks. Nothing is sent when the queue
    /// is empty, so the steady state pays nothing for it. Default 100 ms.
    public var gossipInterval: Duration = .milliseconds(100)
    /// Members each gossip round goes to (0 ... 16). Default 3.
    public var gossipFanout = 3
    /// The largest SWIM datagram, frame header included (256 ...
    /// ``largestPacketSize``). Pings, acks and gossip carry as many queued
    /// updates as fit. Default 1,400 (memberlist's UDP buffer), below an
    /// Ethernet MTU. A member reads packets up to ``largestPacketSize``
    /// whatever its own setting, so members may differ in it.
    public var maximumPacketSize = 1_400
    /// The largest ``maximumPacketSize``: a UDP datagram's largest payload
    /// over IPv4.
    public static let largestPacketSize = 65_507

    /// The largest ``maximumStateSize``, ``maximumMetadataSize`` and
    /// ``maximumBroadcastSize``, and ``maximumMembers``, that ``validate()``
    /// allows: the bounds ``SWIMMessage/decodingLimits`` decodes with.
    static let largestStateSize = 4_194_304
    static let largestItemSize = 1_024
    static let largestMemberCount = 1_048_576

    /// How often a member exchanges its full state with a random member
    /// (push-pull anti-entropy); scaled up by `⌈log₂(N / 32)⌉ + 1` above 32
    /// members, as memberlist does, so the load stays flat. Default 30 s.
    public var pushPullInterval: Duration = .seconds(30)
    /// The largest push-pull message body, in bytes (4,096 ... 4,194,304:
    /// a frame's limit, and the UDP transport's default largest message,
    /// 4 MiB plus the frame header): a state with more members leaves the
    /// rest out (they still spread by gossip). Large ones travel
    /// fragmented. Default 1 MiB (about 30,000 members with short
    /// metadata).
    public var maximumStateSize = 1 << 20
    /// How long dead and departed members are remembered (and retried, see
    /// ``reconnectInterval``) before they are forgotten. Default 60 s.
    public var deadMemberRetention: Duration = .seconds(60)
    /// How often a member pushes its state to a dead member (or to a seed,
    /// if it knows no live member), so that both sides of a healed partition
    /// merge again: Smudge's retry of dead nodes. The interval doubles at
    /// each unanswered try up to 8 times it. Default 2 s.
    public var reconnectInterval: Duration = .seconds(2)
    /// How long a join waits for an answer from its seeds (all contacted at
    /// once) before it contacts them again; later retries follow
    /// ``reconnectInterval``, with its backoff. Default 1 s.
    public var joinTimeout: Duration = .seconds(1)

    /// Multicast discovery (opt-in, as Smudge's): the group (an IPv4
    /// address in 224.0.0.0/4 or an IPv6 one in ff00::/8, and a port) a
    /// member announces itself to when it starts, and again every
    /// ``multicastAnnounceInterval`` while it knows no live member. Members
    /// of the same ``clusterName`` that hear it answer with their state
    /// (about three of them, whatever the cluster size), so members find
    /// each other without seeds. The driver must also listen to the group
    /// (see ``SWIMNode``). Default nil: off.
    public var multicastGroup: Endpoint?
    /// How often a member that knows no live member announces itself again
    /// (at least 100 ms). Default 5 s.
    public var multicastAnnounceInterval: Duration = .seconds(5)
    /// The cluster a member belongs to: multicast announcements of other
    /// clusters are ignored (1 ... 64 bytes of UTF-8). Default "chorus".
    public var clusterName = "chorus"
    /// The longest ``clusterName``, in bytes of UTF-8.
    public static let maximumClusterNameLength = 64

    /// The longest member metadata, in bytes (0 ... 1,024). Default 128.
    public var maximumMetadataSize = 128
    /// The longest user broadcast payload, in bytes (0 ... 1,024). Default
    /// 256, as Smudge.
    public var maximumBroadcastSize = 256
    /// Broadcasts queued for sending at most (1 ... 65,536); when it is
    /// full, a local broadcast is refused (``SWIMError/Code/broadcastQueueFull``)
    /// and a relayed one dropped and counted. Default 1,024.
    public var broadcastQueueCapacity = 1_024
    /// The most membership updates a member keeps queued for sending
    /// (64 ... 1,048,576). Past it, the queued update sent the most times
    /// is dropped (the oldest among equals) and counted in
    /// ``SWIMCounters/membershipUpdatesDropped``, as Serf prunes
    /// memberlist's queue. Only a flood of news fills it: in a join storm
    /// of thousands of members, each member hears of every member at once
    /// and would queue an update per member, far more than it can send
    /// (about 2,000 updates per protocol period) before they are stale.
    /// What a dropped update carried still spreads: every member that
    /// heard it sends it on too, the news it bore is usually in every
    /// member's queue, and push-pull anti-entropy repairs the rest.
    /// Default 2,048.
    public var membershipQueueCapacity = 2_048
    /// When both membership updates and user broadcasts are queued, at
    /// least this share of each packet's update space goes to broadcasts
    /// (0 ... 1), so membership churn in a large cluster cannot starve
    /// them (and the reverse). Default 0.5.
    public var broadcastShare = 0.5
    /// Recently delivered broadcast IDs remembered to deliver each once
    /// (64 ... 1,048,576): a copy arriving after this many later broadcasts
    /// is delivered again. Size it above the broadcasts a member sees in
    /// the time one takes to die out (its transmit count times the gossip
    /// interval, longer under a load the queues cannot drain). Default
    /// 8,192.
    public var broadcastMemory = 8_192
    /// The most members the instance keeps (alive, suspect, dead or
    /// departed, 2 ... 1,048,576); updates about further members are
    /// dropped and counted, so forged updates cannot exhaust memory.
    /// Default 65,536.
    public var maximumMembers = 65_536

    /// Creates the default configuration.
    public init() {}

    /// The most bytes of user payload one broadcast may carry, the lesser
    /// of ``maximumBroadcastSize`` and what fits a gossip packet.
    public var effectiveBroadcastLimit: Int {
        min(maximumBroadcastSize, maximumPacketSize - SWIMMessage.maximumHeaderSize - SWIMUpdate.broadcastOverhead)
    }

    /// Checks every field against its documented range.
    ///
    /// - Throws: `ConfigurationError` naming the first field out of range.
    public func validate() throws(ConfigurationError) {
        func check(_ ok: Bool, _ field: String, _ value: Any, _ range: String) throws(ConfigurationError) {
            if !ok { throw ConfigurationError(field: field, value: "\(value)", allowedRange: range) }
        }
        try check(protocolPeriod >= .milliseconds(10) && protocolPeriod <= .seconds(60),
                  "protocolPeriod", protocolPeriod, "10 ms ... 60 s")
        try check(probeTimeout > .zero && probeTimeout + relayTimeout < protocolPeriod,
                  "probeTimeout", probeTimeout,
                  "more than 0, and with relayTimeout (80% of it) less than protocolPeriod, so relays' nacks can come in time")
        try check((0...16).contains(indirectProbeCount), "indirectProbeCount", indirectProbeCount, "0 ... 16")
        try check(suspicionMultiplier >= 0.1 && suspicionMultiplier <= 100,
                  "suspicionMultiplier", suspicionMultiplier, "0.1 ... 100")
        try check(maximumSuspicionMultiplier >= 1 && maximumSuspicionMultiplier <= 100,
                  "maximumSuspicionMultiplier", maximumSuspicionMultiplier, "1 ... 100")
        try check((0...32).contains(suspicionConfirmations), "suspicionConfirmations", suspicionConfirmations, "0 ... 32")
        try check((0...32).contains(confirmationProbes), "confirmationProbes", confirmationProbes, "0 ... 32")
        try check((0...32).contains(maximumHealthScore), "maximumHealthScore", maximumHealthScore, "0 ... 32")
        try check((1...64).contains(retransmitMultiplier), "retransmitMultiplier", retransmitMultiplier, "1 ... 64")
        try check(gossipInterval >= .milliseconds(1) && gossipInterval <= .seconds(60),
                  "gossipInterval", gossipInterval, "1 ms ... 60 s")
        try check((0...16).contains(gossipFanout), "gossipFanout", gossipFanout, "0 ... 16")
        try check((256...Self.largestPacketSize).contains(maximumPacketSize), "maximumPacketSize", maximumPacketSize, "256 ... 65,507")
        try check(pushPullInterval >= .milliseconds(100), "pushPullInterval", pushPullInterval, "at least 100 ms")
        try check((4_096...Self.largestStateSize).contains(maximumStateSize), "maximumStateSize", maximumStateSize,
                  "4,096 ... 4,194,304")
        try check(deadMemberRetention >= protocolPeriod, "deadMemberRetention", deadMemberRetention,
                  "at least protocolPeriod")
        try check(reconnectInterval >= .milliseconds(10), "reconnectInterval", reconnectInterval, "at least 10 ms")
        try check(joinTimeout >= .milliseconds(10), "joinTimeout", joinTimeout, "at least 10 ms")
        if let group = multicastGroup {
            let isMulticast = switch group.address {
            case .ipv4(let value): value >> 28 == 0xE
            case .ipv6(let high, _): high >> 56 == 0xFF
            }
            try check(isMulticast, "multicastGroup", group, "an IPv4 address in 224.0.0.0/4 or IPv6 in ff00::/8")
        }
        try check(multicastAnnounceInterval >= .milliseconds(100), "multicastAnnounceInterval",
                  multicastAnnounceInterval, "at least 100 ms")
        try check(
            (1...Self.maximumClusterNameLength).contains(clusterName.utf8.count), "clusterName", clusterName,
            "1 ... \(Self.maximumClusterNameLength) bytes")
        try check((0...Self.largestItemSize).contains(maximumMetadataSize), "maximumMetadataSize", maximumMetadataSize, "0 ... 1,024")
        try check((0...Self.largestItemSize).contains(maximumBroadcastSize), "maximumBroadcastSize", maximumBroadcastSize, "0 ... 1,024")
        try check(maximumPacketSize - SWIMMessage.maximumHeaderSize - SWIMUpdate.aliveOverhead >= maximumMetadataSize,
                  "maximumMetadataSize", maximumMetadataSize, "what fits one packet with an alive update")
        try check((1...65_536).contains(broadcastQueueCapacity), "broadcastQueueCapacity", broadcastQueueCapacity,
                  "1 ... 65,536")
        try check((64...1_048_576).contains(membershipQueueCapacity), "membershipQueueCapacity",
                  membershipQueueCapacity, "64 ... 1,048,576")
        try check(broadcastShare >= 0 && broadcastShare <= 1, "broadcastShare", broadcastShare, "0 ... 1")
        try check((64...1_048_576).contains(broadcastMemory), "broadcastMemory", broadcastMemory, "64 ... 1,048,576")
        try check((2...Self.largestMemberCount).contains(maximumMembers), "maximumMembers", maximumMembers, "2 ... 1,048,576")
    }
}
