import EventCore

// Leader election (Raft §5.2, §5.4.1) with PreVote and CheckQuorum (Raft
// thesis §9.6, §6.2).
extension RaftReplica {
    /// Whether this replica leads, or heard from the leader of its term
    /// within the last election timeout.
    func leaseHolds(now: Instant) -> Bool {
        guard leader != nil else { return false }
        if role == .leader { return true }
        guard let contact = lastLeaderContact else { return false }
        return now < contact + configuration.electionTimeout
    }

    /// A message with a term above ours arrived. Returns whether to go on
    /// handling it.
    mutating func acceptHigherTerm(_ message: RaftMessage, now: Instant) -> Bool {
        switch message.body {
        case .voteRequest(_, _, let isPreVote, let isTransfer):
            // A replica that hears from a working leader does not help
            // depose it: always for PreVote (thesis §9.6), for real votes
            // with CheckQuorum (thesis §4.2.3); unless that leader hands
            // over to the candidate (§3.10).
            if leaseHolds(now: now) && (isPreVote || configuration.checkQuorum) && !isTransfer {
                counters.votesRefusedInLease += 1
                if isPreVote { send(.voteResponse(granted: false, isPreVote: true), to: message.from) }
                return false
            }
            if !isPreVote { becomeFollower(term: message.term, leader: nil, now: now) }
            return true
        case .voteResponse(true, true):
            // A granted PreVote carries the term we would campaign in.
            return true
        case .append, .heartbeat, .snapshotChunk:
            becomeFollower(term: message.term, leader: message.from, now: now)
            return true
        case .timeoutNow:
            // A leader orders only a follower of its own term, which holds
            // its whole log: from a later term, forged or confused.
            counters.messagesDropped += 1
            return false
        case .voteResponse, .appendResponse, .heartbeatResponse, .snapshotProgress, .snapshotRefused:
            becomeFollower(term: message.term, leader: nil, now: now)
            return true
        case .forwardedProposal, .forwardOutcome, .forwardedRead, .readOutcome, .forwardedChange:
            return false  // the driver's messages: `step` refuses them
        }
    }

    /// A message from an older term: tell its sender our term where that
    /// makes it step down (a deposed leader, a stale candidate).
    mutating func answerStale(_ message: RaftMessage) {
        switch message.body {
        case .append, .heartbeat, .snapshotChunk:
            send(.heartbeatResponse(readRound: 0), to: message.from)
        case .voteRequest(_, _, let isPreVote, _):
            send(.voteResponse(granted: false, isPreVote: isPreVote), to: message.from)
        case .voteResponse, .appendResponse, .heartbeatResponse, .snapshotProgress, .snapshotRefused,
            .forwardedProposal, .forwardOutcome, .forwardedRead, .readOutcome, .timeoutNow, .forwardedChange:
            break
        }
    }

    /// The largest term and last index a replica campaigns from: 2⁶¹, half
    /// ``RaftMessage/maximumTermOrIndex``. Only a forged or corrupt message
    /// takes a replica beyond it (a real group would need 2⁶¹ elections or
    /// entries); campaigning from there, it would send terms or indices
    /// above what any replica decodes: its vote requests carry its term
    /// plus one, and as leader it appends. Below it, its own elections and
    /// appends can never reach the decoder's bound.
    static let maximumCampaignTermOrIndex = RaftMessage.maximumTermOrIndex / 2

    /// The largest term any replica of a group can reach: a vote request
    /// from ``maximumCampaignTermOrIndex``, the last term a replica
    /// campaigns from, carries one more. ``step(_:now:)`` drops (and
    /// counts) a message with a higher term as out of range: only a forged
    /// or corrupt one has it. (A forged term at or just below this bound
    /// still leaves a group without a replica that campaigns; no bound on
    /// an unauthenticated term prevents that.)
    package static let maximumReachableTerm = maximumCampaignTermOrIndex + 1

    /// Starts a PreVote round (`preVote`) or an election in a new term;
    /// beyond ``maximumCampaignTermOrIndex``, stays a follower instead (and
    /// counts it).
    mutating func campaign(preVote: Bool, transfer isTransfer: Bool = false, now: Instant) {
        guard term <= Self.maximumCampaignTermOrIndex, log.lastIndex <= Self.maximumCampaignTermOrIndex else {
            counters.campaignsForgone += 1
            becomeFollower(term: term, leader: nil, now: now)
            return
        }
        // A snapshot half-received from the last leader will not be
        // finished (up to maximumSnapshotSize held for a whole leadership).
        incomingSnapshot = nil
        let requestTerm: UInt64
        if preVote {
            role = .preCandidate
            requestTerm = term + 1
            counters.preVotesStarted += 1
        } else {
            term += 1
            votedFor = id
            role = .candidate
            requestTerm = term
            counters.electionsStarted += 1
        }
        leader = nil
        progress = [:]
        votes = [id: true]
        resetElectionDeadline(now: now)
        if quorum == 1 {
            if preVote { campaign(preVote: false, now: now) } else { becomeLeader(now: now) }
            return
        }
        for peer in peers {
            send(.voteRequest(lastLogIndex: log.lastIndex, lastLogTerm: log.lastTerm, isPreVote: preVote,
                              isTransfer: isTransfer),
                 to: peer, term: requestTerm)
        }
    }

    mutating func handleVoteRequest(
        from candidate: NodeID, term requestTerm: UInt64, lastLogIndex: UInt64, lastLogTerm: UInt64,
        isPreVote: Bool, now: Instant
    ) {
        // At most one vote per term (§5.2); a PreVote for a later term binds
        // nothing.
        let mayVote = votedFor == candidate || (votedFor == nil && leader == nil)
            || (isPreVote && requestTerm > term)
        if mayVote && log.isUpToDate(lastIndex: lastLogIndex, lastTerm: lastLogTerm) {
            send(.voteResponse(granted: true, isPreVote: isPreVote), to: candidate, term: requestTerm)
            if !isPreVote {
                votedFor = candidate
                resetElectionDeadline(now: now)
            }
        } else {
            send(.voteResponse(granted: false, isPreVote: isPreVote), to: candidate)
        }
    }

    mutating func handleVoteResponse(from voter: NodeID, granted: Bool, isPreVote: Bool, now: Instant) {
        // A learner's answer counts for nothing.
        guard (role == .preCandidate && isPreVote) || (role == .candidate && !isPreVote), peers.contains(voter) else {
            return
        }
        votes[voter] = granted
        let grants = votes.values.reduce(0) { $0 + ($1 ? 1 : 0) }
        let refusals = votes.count - grants
        if grants >= quorum {
            if isPreVote { campaign(preVote: false, now: now) } else { becomeLeader(now: now) }
        } else if refusals > groupSize - quorum {
            becomeFollower(term: term, leader: nil, now: now)
        }
    }

    mutating func becomeLeader(now: Instant) {
        role = .leader
        leader = id
        votes = [:]
        counters.leadershipsWon += 1
        let window = InflightWindow(
            maximumMessages: configuration.maximumInflightMessages, maximumBytes: configuration.maximumInflightBytes)
        progress = [:]
        transfer = nil
        for peer in recipients { progress[peer] = FollowerProgress(next: log.lastIndex + 1, window: window) }
        heartbeatDeadline = nextHeartbeat(after: now)
        readRound = 0
        quorumCheckDeadline = now + configuration.electionTimeout
        uncommittedBytes = 0
        // Entries of earlier terms commit only with one of this term
        // (§5.4.2): append an empty one at once.
        appendAsLeader(RaftEntry(term: term, index: log.lastIndex + 1, kind: .leaderNoop))
    }

    /// Whether a majority (this leader included) was heard from since the
    /// last check; starts the next period.
    mutating func checkQuorum() -> Bool {
        var active = isMember ? 1 : 0
        // Learners' marks are cleared too: one promoted later counts only
        // if heard from since.
        for peer in recipients {
            if progress[peer]?.recentlyActive == true && peers.contains(peer) { active += 1 }
            progress[peer]?.recentlyActive = false
        }
        return active >= quorum
    }
}
