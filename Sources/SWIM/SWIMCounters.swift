/// A snapshot of what a SWIM member has done, for metrics and tests.
public struct SWIMCounters: Hashable, Sendable {
    /// Direct probes sent (protocol-period probes and confirmation probes).
    public var pingsSent = 0
    /// Acks sent (own and relayed).
    public var acksSent = 0
    /// Indirect probe requests sent.
    public var pingRequestsSent = 0
    /// Nacks sent as an intermediary whose target did not answer.
    public var nacksSent = 0
    /// Gossip packets sent.
    public var gossipSent = 0
    /// Push-pull state exchanges sent (requests and replies).
    public var pushPullsSent = 0
    /// Probes that got no ack, direct or indirect, within the period.
    public var failedProbes = 0
    /// Suspicions this member raised (its own failed probes).
    public var suspicionsRaised = 0
    /// Suspicions that timed out here, declaring the member dead.
    public var deathsDeclared = 0
    /// Times this member refuted a claim about itself: a suspicion, death
    /// or departure, or an alive record that is not what it is (an
    /// earlier run, or another process with its ID).
    public var refutations = 0
    /// Updates ignored because a newer incarnation is known (or they were
    /// about an unknown member, or about us and wrong).
    public var staleUpdates = 0
    /// Claims about this member ignored, not refuted, for an incarnation
    /// above ``Member/maximumClaimedIncarnation`` (forged, or from a faulty
    /// member).
    public var absurdIncarnations = 0
    /// Messages that claimed to come from this member's own ID.
    public var impostorMessages = 0
    /// Claims, each refuted, that this member's ID is alive at another
    /// endpoint: an earlier run of it restarted elsewhere (once), or a
    /// second live process with its ID (again and again; ``SWIMNode`` warns,
    /// naming the endpoint, at most once a minute).
    public var idConflicts = 0
    /// Pings addressed to another member ID (a restarted process on a
    /// reused endpoint, or forged).
    public var misdirectedPings = 0
    /// Updates about new members dropped at ``SWIMConfiguration/maximumMembers``.
    public var membersRefused = 0
    /// Membership updates dropped from a full queue before their last
    /// transmission (see ``SWIMConfiguration/membershipQueueCapacity``).
    public var membershipUpdatesDropped = 0
    /// Relayed broadcasts not queued to be sent on: the queue full, or
    /// (delivered all the same) longer than this member's packets carry.
    public var broadcastsDropped = 0
    /// Ping-req relays refused because too many were in flight.
    public var relaysRefused = 0
    /// Multicast announcements sent.
    public var announcementsSent = 0
    /// Multicast announcements ignored: another cluster's, from a member
    /// already known alive, or any while discovery is off.
    public var announcementsIgnored = 0
    /// Frames dropped by the driver because they did not decode.
    public var malformedFramesDropped = 0
    /// Lifeguard's local health score now (0: healthy).
    public var healthScore = 0

    /// Creates zeroed counters.
    public init() {}
}
