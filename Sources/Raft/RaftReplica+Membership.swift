import EventCore

// Membership changes, one member at a time (Raft dissertation §4.1): a
// change is an entry of the log, which every replica uses as soon as it is
// appended. Any two majorities of memberships one member apart overlap, so
// no two leaders can be elected in one term across a change. A change waits
// for the one before it to commit, and a new leader changes nothing until
// an entry of its own term has committed (the fix, by Ongaro, of the
// single-server algorithm's bug: a change by a leader that has not yet
// committed in its term could overlap with an uncommitted change of an
// earlier leader).
extension RaftReplica {
    /// Proposes adding or removing one member. On the leader (a member:
    /// one that removed itself makes no further change) the change is
    /// appended at once and takes effect there (and on each replica as it
    /// appends it): majorities are counted in the new membership from then
    /// on. A new member is sent the log (or the snapshot) from the start of
    /// what it lacks. A removed leader keeps leading, counting only the
    /// members, until the change commits, then steps down at its next
    /// heartbeat (``RaftCounters/stepDownsOnRemoval``).
    ///
    /// - Returns: where the change was appended: it took effect if the
    ///   entry committed at that index has that term.
    /// - Throws: ``RaftError/notLeader(leaderHint:)``,
    ///   ``RaftError/membershipChangePending``,
    ///   ``RaftError/invalidMembershipChange(_:)``,
    ///   ``RaftError/commandTooLarge(size:limit:)`` (a membership entry
    ///   above ``RaftConfiguration/maximumCommandSize``).
    @discardableResult
    public mutating func proposeMembershipChange(_ change: RaftMembershipChange) throws(RaftError) -> RaftEntryID {
        guard role == .leader, isMember, transfer == nil else {
            counters.proposalsRefused += 1
            throw .notLeader(leaderHint: refusalHint)
        }
        guard memberships.latestIndex <= log.committed, log.term(at: log.committed) == term else {
            counters.proposalsRefused += 1
            throw .membershipChangePending
        }
        guard let next = membership.applying(change) else {
            counters.proposalsRefused += 1
            throw .invalidMembershipChange(Self.whyInvalid(change, in: membership))
        }
        let entry = next.entry(term: term, index: log.lastIndex + 1)
        guard entry.command.count <= configuration.maximumCommandSize else {
            counters.proposalsRefused += 1
            throw .commandTooLarge(size: entry.command.count, limit: configuration.maximumCommandSize)
        }
        appendAsLeader(entry)
        counters.membershipChangesProposed += 1
        return RaftEntryID(term: entry.term, index: entry.index)
    }

    private static func whyInvalid(_ change: RaftMembershipChange, in membership: RaftMembership) -> String {
        switch change {
        case .add(let id, _) where membership.contains(id), .addLearner(let id, _) where membership.contains(id):
            "\(id) is a member already"
        case .add(let id, _) where membership.hasLearner(id), .addLearner(let id, _) where membership.hasLearner(id):
            "\(id) is a learner already"
        case .add, .addLearner: "the group has \(RaftMembership.maximumMembers) members, the most it may"
        case .promote(let id): "\(id) is not a learner"
        case .remove(let id) where !membership.includes(id): "\(id) is not a member"
        case .remove(let id): "\(id) is the last voter"
        }
    }

    /// The group's membership as of `index` (a snapshot through it carries
    /// it): nil while no change is at or below it.
    public func membership(asOf index: UInt64) -> RaftMembership? { memberships.membership(asOf: index) }

    /// Tells the replica that a snapshot through `index` was saved, so that
    /// the log before it may be compacted: the membership changes at or
    /// below it are kept as the snapshot's (``membership(asOf:)``), no
    /// longer as entries.
    public mutating func snapshotSaved(through index: UInt64) { memberships.snapshotted(through: index) }

    /// A leader whose removal has committed: it takes no proposal or read
    /// more, and steps down at its next tick.
    var isRemovedLeader: Bool { role == .leader && !isMember && log.committed >= memberships.latestIndex }

    /// The replica a refused proposal, read, change or transfer should go
    /// to: the target of this leader's transfer, else the leader this
    /// replica follows, a learner or a joining replica included (it hears
    /// from the leader as a voter does, so its driver can forward to it);
    /// never this replica itself (a leader that removed itself refuses
    /// with no hint).
    var refusalHint: NodeID? { transfer?.target ?? (leader == id ? nil : leader) }

    /// The membership changed (appended, cut from the log, or restored
    /// from a snapshot): the peers, whether this replica is a member, and
    /// a leader's followers follow it.
    mutating func membershipChanged() {
        let current = memberships.current
        peers = current.ids.filter { $0 != id }
        learners = current.learnerIDs.filter { $0 != id }
        recipients = (peers + learners).sorted()
        isMember = current.contains(id)
        membershipVersion += 1
        guard role == .leader else { return }
        let window = InflightWindow(
            maximumMessages: configuration.maximumInflightMessages, maximumBytes: configuration.maximumInflightBytes)
        for peer in recipients where progress[peer] == nil {
            progress[peer] = FollowerProgress(next: log.lastIndex + 1, window: window)
        }
        for peer in progress.keys where !recipients.contains(peer) { progress.removeValue(forKey: peer) }
    }
}
