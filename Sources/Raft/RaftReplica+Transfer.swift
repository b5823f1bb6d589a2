import EventCore

// Leadership transfer (Raft dissertation §3.10, etcd raft's
// TransferLeader): the leader brings the target up to date, then tells it
// to campaign at once (`timeoutNow`); the target's vote requests say so,
// and voters grant them though they heard from the leader lately.
extension RaftReplica {
    /// Hands leadership to voter `target`: the leader stops taking
    /// proposals and membership changes (it refuses them with
    /// ``RaftError/notLeader(leaderHint:)`` naming `target`), sends
    /// `target` what it lacks, and once it holds the whole log tells it to
    /// campaign now; `target` then wins the next term in one round trip,
    /// without waiting for an election timeout. If `target` has not taken
    /// over within an election timeout (it is down or cut off), the
    /// transfer is given up and this leader takes proposals again
    /// (``RaftCounters/leadershipTransfersAborted``). A transfer asked
    /// while another runs replaces it. Reads go on as before.
    ///
    /// - Throws: ``RaftError/notLeader(leaderHint:)`` unless this replica
    ///   leads (and is a voter); ``RaftError/invalidTransfer(_:)`` for a
    ///   target that is this replica, a learner or not a member.
    public mutating func transferLeadership(to target: NodeID, now: Instant) throws(RaftError) {
        // A leader that removed itself is no member: it hands nothing over.
        guard role == .leader, isMember else { throw .notLeader(leaderHint: refusalHint) }
        guard target != id else { throw .invalidTransfer("\(target) leads already") }
        guard peers.contains(target) else { throw .invalidTransfer("\(target) is not another voter of the group") }
        transfer = LeadershipTransfer(target: target, deadline: now + configuration.electionTimeout)
        counters.leadershipTransfersStarted += 1
        if !orderTransfereeIfCaughtUp() { sendAppend(to: target, sendIfEmpty: true) }
    }

    /// The replica this leader hands leadership to, if it is doing so.
    public var transferTarget: NodeID? { transfer?.target }

    /// Sends the transfer's target `timeoutNow` if it holds the whole log
    /// and has not been sent it; returns whether it was sent.
    @discardableResult
    mutating func orderTransfereeIfCaughtUp() -> Bool {
        guard let current = transfer, !current.ordered, progress[current.target]?.match == log.lastIndex else {
            return false
        }
        transfer?.ordered = true
        send(.timeoutNow, to: current.target)
        return true
    }

    /// At a leader's tick: gives up a transfer whose target has not taken
    /// over within an election timeout.
    mutating func expireTransfer(now: Instant) {
        guard let current = transfer, now >= current.deadline else { return }
        transfer = nil
        counters.leadershipTransfersAborted += 1
    }

    /// A `timeoutNow` from the leader of this term: campaign now, if this
    /// replica is a voter.
    mutating func handleTimeoutNow(from sender: NodeID, now: Instant) {
        guard role == .follower, leader == sender, isMember else {
            counters.messagesDropped += 1
            return
        }
        counters.campaignsOnTimeoutNow += 1
        campaign(preVote: false, transfer: true, now: now)
    }
}

/// A leader's transfer in progress: to whom, until when, and whether the
/// target was told to campaign.
struct LeadershipTransfer {
    let target: NodeID
    let deadline: Instant
    var ordered = false
}
