/// A snapshot of what a Raft replica has done, for metrics and tests.
public struct RaftCounters: Hashable, Sendable {
    /// Elections started (terms this replica campaigned in).
    public var electionsStarted = 0
    /// PreVote rounds started.
    public var preVotesStarted = 0
    /// Terms in which this replica became leader.
    public var leadershipsWon = 0
    /// Elections this replica did not start because its term or its last
    /// index was above 2⁶¹, half ``RaftMessage/maximumTermOrIndex``:
    /// campaigning from there could have it send terms or indices above
    /// that bound, which no replica decodes. It stays a follower. Only a
    /// forged or corrupt message takes a log there; a term gets there only
    /// as 2⁶¹ + 1, the last a replica can reach (see ``messagesDropped``).
    public var campaignsForgone = 0
    /// Times a leader stepped down because it had not heard from a
    /// majority within an election timeout (CheckQuorum).
    public var quorumLosses = 0
    /// Membership changes this replica appended as leader.
    public var membershipChangesProposed = 0
    /// Times this replica, as leader, stepped down because a committed
    /// membership change removed it.
    public var stepDownsOnRemoval = 0
    /// Leadership transfers this replica started as leader, and those it
    /// gave up (the target did not win within an election timeout).
    public var leadershipTransfersStarted = 0
    public var leadershipTransfersAborted = 0
    /// Elections this replica started on its leader's order (a transfer).
    public var campaignsOnTimeoutNow = 0
    /// Messages dropped: for another group or replica, from an unknown
    /// sender, or with out-of-range fields. A term above 2⁶¹ + 1 is one:
    /// replicas campaign only up to term 2⁶¹ (see ``campaignsForgone``),
    /// so only a forged or corrupt message carries a higher term.
    public var messagesDropped = 0
    /// Messages from an older term (answered, where that helps the sender
    /// catch up, or ignored).
    public var staleTermMessages = 0
    /// Vote requests ignored or refused because a leader was heard from
    /// within the election timeout.
    public var votesRefusedInLease = 0
    /// AppendEntries this replica rejected (consistency check failed).
    public var appendsRejected = 0
    /// Proposals refused (not leader, too large, over the uncommitted
    /// limit).
    public var proposalsRefused = 0
    /// Snapshot transfers this replica started as leader (a follower
    /// needed entries that were compacted away).
    public var snapshotsSent = 0
    /// Times this replica, as leader, did not send its snapshot to a
    /// follower that needed it, because the snapshot is larger than
    /// ``RaftConfiguration/maximumSnapshotSize``, its own or the smaller one
    /// a follower gave when it refused the snapshot (see
    /// ``snapshotsRefusedByFollowers``): that follower cannot catch up
    /// until the limit is raised.
    public var snapshotsWithheld = 0
    /// Snapshot transfers this replica, as leader, stopped because the
    /// follower refused the snapshot as larger than its own
    /// ``RaftConfiguration/maximumSnapshotSize``: the follower's limit is
    /// below this replica's. Snapshots above the follower's limit are
    /// withheld from it for 100 heartbeats, then tried again; ``RaftNode``
    /// logs an error at each refusal.
    public var snapshotsRefusedByFollowers = 0
    /// Snapshots received from a leader that replaced this replica's log.
    public var snapshotsInstalled = 0
    /// Snapshot chunks refused because the snapshot is larger than
    /// ``RaftConfiguration/maximumSnapshotSize``; each is answered with a
    /// ``RaftMessage/Body/snapshotRefused(snapshotIndex:maximumSize:)``,
    /// so that the leader stops sending it.
    public var snapshotsRefused = 0
    /// Proposals this node forwarded to the leader.
    public var proposalsForwarded = 0
    /// Forwarded proposals this node handled: proposed as leader, or
    /// refused (not the leader, too large, over the uncommitted limit).
    public var forwardedProposalsReceived = 0
    /// Forwarded proposals dropped because this node had handled the same
    /// one (forwarder and request ID) already: a datagram delivered twice,
    /// whose command would otherwise be applied twice.
    public var duplicateForwardsDropped = 0
    /// Forwarded proposals, changes and reads refused (`.notLeader`, no
    /// hint) because their forwarder is neither a voter nor a learner of
    /// the group: a replica removed from it, which hears from no leader,
    /// and until it forgets the last one (an election timeout without
    /// word) forwards there and waits for entries it is no longer sent.
    /// Not among
    /// ``proposalsRefused`` (the replica never saw them).
    public var outsiderForwardsRefused = 0
    /// Forwarded proposals dropped unanswered because they were sent at a
    /// term no later than the one this node started at (a forward sent at
    /// a later term than this node's is out of range: counted in
    /// ``messagesDropped``): an incarnation
    /// before the last restart may have proposed them, and remembered
    /// that only in memory. A copy delayed past a restart would otherwise
    /// be proposed again (applied twice), or refused while the first copy
    /// may commit. Their forwarders fail them as
    /// ``RaftError/outcomeUnknown``.
    public var staleForwardsDropped = 0
    /// Forwarded proposals failed as ``RaftError/outcomeUnknown`` because
    /// the leader did not answer within
    /// ``RaftConfiguration/forwardTimeout``, or stopped being the leader
    /// this node knows.
    public var forwardsTimedOut = 0
    /// Proposals (failed ``RaftError/outcomeUnknown``) and forwarded reads
    /// (failed ``RaftError/notLeader(leaderHint:)``) whose entry or index
    /// lay past the commit index when the node, having lost its leader,
    /// found none in time (see ``RaftConfiguration/forwardTimeout``).
    public var waitsAbandoned = 0
    /// Frames the driver dropped because they did not decode.
    public var malformedFramesDropped = 0

    /// Creates zeroed counters.
    public init() {}
}
