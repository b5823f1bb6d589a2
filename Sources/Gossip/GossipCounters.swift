/// A snapshot of what a gossip node has done, for metrics and tests.
public struct GossipCounters: Hashable, Sendable {
    /// Broadcasts this node originated.
    public var broadcasts = 0
    /// Broadcasts delivered to the application (from other origins).
    public var delivered = 0
    /// Data messages received for a broadcast already delivered (or too old
    /// to tell): the redundancy the mode pays for.
    public var duplicates = 0
    /// Payload copies sent: data messages (eager push, push fanout, graft
    /// answers) and repairs.
    public var payloadsSent = 0
    /// Of ``payloadsSent``, repairs sent in answer to anti-entropy pulls.
    public var repairsSent = 0
    /// Control messages sent (membership, IHAVE, GRAFT, PRUNE, digests,
    /// pulls, heartbeats).
    public var controlMessagesSent = 0
    /// Plumtree: grafts sent (a missing message fetched off the tree).
    public var graftsSent = 0
    /// Plumtree: prunes sent (a redundant tree edge removed).
    public var prunesSent = 0
    /// Messages this node pulled through anti-entropy and delivered.
    public var deliveredByRepair = 0
    /// Announcements dropped because the missing-message table was full.
    public var announcementsDropped = 0
    /// Origins forgotten by the de-duplication state to make room.
    public var originsForgotten = 0
    /// Frames dropped by the driver because they did not decode (bad
    /// frame, bad checksum, not gossip, malformed body).
    public var malformedFramesDropped = 0
    /// Data messages and repairs dropped for a payload above
    /// ``GossipConfiguration/maximumPayloadSize`` (a frame may be a few
    /// bytes longer, for a repair's tag or a message's age): taken, one would be retained and pulled
    /// at every anti-entropy round, and every repair of it dropped as
    /// malformed.
    public var oversizedPayloadsDropped = 0
    /// Data messages and repairs dropped because their age was past
    /// ``GossipConfiguration/retentionPeriod`` (see ``GossipData/age``):
    /// neither delivered nor spread.
    public var expiredMessagesDropped = 0
    /// Active neighbours taken for failed after ``GossipConfiguration/peerTimeout``.
    public var neighborFailures = 0
    /// Requests to become a neighbour of a newcomer named by a forward join
    /// not sent because as many as the bound (twice the active view) were
    /// awaiting their answers: a flood of forward joins, forged or not. The
    /// node's own requests (join, view repair, probes) have no part in the
    /// bound.
    public var neighborRequestsRefused = 0

    /// Creates zeroed counters.
    public init() {}
}
