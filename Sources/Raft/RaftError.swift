import EventCore

/// Why a Raft proposal (a read, a membership change) was refused or did
/// not take effect.
public enum RaftError: Error, Hashable, Sendable, CustomStringConvertible {
    /// This replica is not the leader. `leaderHint` is the leader it last
    /// heard from in its current term, if any: send the proposal there. A
    /// leader handing leadership over refuses proposals and membership
    /// changes this way too, naming the replica it hands over to.
    /// For a read (``RaftNode/read(completion:)``): no leader confirmed it
    /// (none known, the leader lost its place first, a forwarded read
    /// went unanswered, or this node lost its leader before committing the
    /// index the read was confirmed at); the read did nothing. A leader refuses with no
    /// hint the forwards of a replica that is neither a voter nor a
    /// learner of the group (a replica removed from it hears from no
    /// leader, so it never learns of its removal).
    case notLeader(leaderHint: NodeID?)
    /// The command is longer than ``RaftConfiguration/maximumCommandSize``.
    case commandTooLarge(size: Int, limit: Int)
    /// Accepting the command would take the leader's appended but not yet
    /// committed bytes above ``RaftConfiguration/maximumUncommittedBytes``:
    /// retry once earlier proposals commit.
    case uncommittedLimitExceeded(uncommittedBytes: Int, limit: Int)
    /// The proposal's entry was replaced by another leader's entry at the
    /// same index: it was not committed and will not be. It may be retried.
    case proposalDropped
    /// The node cannot tell whether the proposal took effect: it installed
    /// a leader's snapshot covering the proposal's index, or the leader it
    /// forwarded the proposal to did not answer in time (or answered after
    /// the entry was applied here), or it lost its leader (or stopped
    /// leading) and found none in time, before the entry committed here,
    /// or a membership change removed it while the entry was uncommitted
    /// (the new leader may commit it). Retry only what is safe
    /// to apply twice.
    case outcomeUnknown
    /// The node was stopped (or its storage failed) before the proposal's
    /// outcome was known.
    case stopped
    /// The task awaiting the proposal was cancelled (the `async`
    /// `LoopBound<RaftNode>.propose(_:)`) after the node took the
    /// proposal: the wait ended, but the proposal was not withdrawn (a
    /// Raft entry cannot be) and may still commit. Retry only what is safe
    /// to apply twice.
    case cancelled
    /// The task awaiting the proposal was cancelled before the node took
    /// the proposal (the `async` `LoopBound<RaftNode>.propose(_:)`, its
    /// task cancelled already when it called, or before the node's loop
    /// got to it): nothing was proposed, and nothing will commit.
    /// Definite, as CASPaxos's `withdrawn`.
    case withdrawn
    /// A membership change was refused because an earlier one is not yet
    /// committed, or this leader has not yet committed an entry of its
    /// own term (its first, the empty entry it appends on winning): one
    /// change at a time (Raft dissertation §4.1, with the fix of its
    /// single-server bug). Retry shortly.
    case membershipChangePending
    /// A membership change that does not apply to the group's membership:
    /// adding a member, removing a non-member, removing the last member,
    /// or adding beyond ``RaftMembership/maximumMembers``.
    case invalidMembershipChange(String)
    /// A leadership transfer to a replica that is not another voter of
    /// the group (``RaftReplica/transferLeadership(to:now:)``).
    case invalidTransfer(String)

    /// The case and its values, on one line.
    public var description: String {
        switch self {
        case .notLeader(let hint?): "not the leader (the leader it knows: \(hint))"
        case .notLeader(nil):
            "not the leader, and no leader known (an election under way, a majority out of reach, "
                + "or a replica no longer a member of the group)"
        case .commandTooLarge(let size, let limit): "command of \(size) bytes exceeds the limit \(limit)"
        case .uncommittedLimitExceeded(let bytes, let limit):
            "\(bytes) uncommitted bytes at the leader; the limit is \(limit)"
        case .proposalDropped: "the proposal's entry was overwritten by another leader"
        case .outcomeUnknown: "whether the proposal committed is unknown (a snapshot replaced its entry, its forward went unanswered, or the leader was lost)"
        case .stopped: "the Raft node was stopped"
        case .cancelled: "the task awaiting the proposal was cancelled (it may still commit)"
        case .withdrawn: "the task was cancelled before the proposal was made (nothing was proposed)"
        case .membershipChangePending:
            "an earlier membership change is not committed yet, or this leader has not committed an entry of its term"
        case .invalidMembershipChange(let detail): "invalid membership change: \(detail)"
        case .invalidTransfer(let detail): "invalid leadership transfer: \(detail)"
        }
    }
}
