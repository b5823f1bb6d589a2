import EventCore
import Raft
import SWIM

/// A ``RaftMembershipPolicy`` at work for one Raft group on one machine:
/// each ``reconcile(now:)`` notes which of the group's members SWIM no
/// longer sees running the group (on every machine, so that a new leader
/// knows how long a member has been gone), and on the leader makes the one
/// change the policy calls for, if any, when no change it made is still in
/// flight. Each change it makes, and its outcome, is logged (`notice`,
/// source `chorus`), so that an operator can tell why a member came or
/// went.
final class RaftMembershipReconciler {
    let policy: RaftMembershipPolicy
    private let group: UInt64
    private let replica: RaftNode
    private let member: SWIMNode
    private let logger: any LogSink
    /// Since when each member has been seen gone: its machine dead, left
    /// or forgotten in SWIM's view, or no longer advertising the group.
    private var goneSince: [NodeID: Instant] = [:]
    /// Since when each learner has been seen caught up, its machine alive
    /// (on the leader: only it knows the learners' progress).
    private var healthySince: [NodeID: Instant] = [:]
    /// When this machine saw each member leave the membership (on every
    /// machine, so a new leader knows too): it is not added back before
    /// ``RaftMembershipPolicy/failedMemberGrace`` has passed, so a
    /// flapping machine costs a log transfer per grace at the most.
    private var removedAt: [NodeID: Instant] = [:]
    /// The members (voters and learners) at the last pass.
    private var lastMembers: Set<NodeID> = []
    /// Whether a change made here awaits its outcome.
    private var changing = false

    init(group: UInt64, policy: RaftMembershipPolicy, replica: RaftNode, member: SWIMNode, logger: any LogSink) {
        self.group = group
        self.policy = policy
        self.replica = replica
        self.member = member
        self.logger = logger
    }

    /// Whether the replica has stopped (no pass does anything more).
    var replicaStopped: Bool { replica.stopped }

    /// Notes SWIM's view, then, on the leader, makes the change the policy
    /// calls for.
    func reconcile(now: Instant) {
        observe(now: now)
        guard !changing, replica.role == .leader, replica.transferTarget == nil else { return }
        if member.stopped {
            handOver(now: now)
            return
        }
        guard let (change, reason) = nextChange(now: now) else { return }
        changing = true
        let what = "Raft group \(group): \(change) (\(reason))"
        logger.log(.notice, source: "chorus", "membership policy: \(what)")
        replica.changeMembership(change) { [weak self] outcome in
            // Refused (a change pending, leadership lost) or made: either
            // way the next pass looks again.
            guard let self else { return }
            changing = false
            if case .failure(let error) = outcome {
                logger.log(.notice, source: "chorus", "membership policy: \(what) failed: \(error)")
            } else {
                logger.log(.notice, source: "chorus", "membership policy: \(what) done")
            }
        }
    }

    /// Whether SWIM sees `id`'s machine alive, running the group.
    private func isRunning(_ id: NodeID) -> Bool {
        guard let record = member.member(id), record.status == .alive || record.status == .suspect else { return false }
        return ChorusNode.raftGroups(advertisedBy: record).contains(group)
    }

    /// Updates `goneSince`, `healthySince` and `removedAt` from SWIM and
    /// the replica.
    private func observe(now: Instant) {
        let membership = replica.membership
        let members = Set(membership.ids + membership.learnerIDs)
        for id in lastMembers.subtracting(members) { removedAt[id] = now }
        lastMembers = members
        let others = members.subtracting([replica.id])
        for id in others {
            if isRunning(id) {
                goneSince[id] = nil
            } else if goneSince[id] == nil {
                goneSince[id] = now
            }
        }
        goneSince = goneSince.filter { others.contains($0.key) }
        let commitIndex = replica.commitIndex
        var healthy: [NodeID: Instant] = [:]
        for id in membership.learnerIDs {
            // Not gone: its machine runs the group (just looked up above).
            guard let match = replica.replicationProgress(of: id)?.match, member.member(id)?.status == .alive,
                  goneSince[id] == nil, isReachable(id, now: now),
                  match >= commitIndex || commitIndex - match <= policy.maximumTrailingEntries
            else { continue }
            healthy[id] = healthySince[id] ?? now
        }
        healthySince = healthy
        removedAt = removedAt.filter { now - $0.value < policy.failedMemberGrace }
    }

    /// On a leader whose machine left SWIM (or stopped its member): hands
    /// leadership to the voter furthest along among those it heard from
    /// lately, so that the next leader, seeing this machine gone, removes
    /// it.
    private func handOver(now: Instant) {
        let match = { (id: NodeID) in self.replica.replicationProgress(of: id)?.match ?? 0 }
        let voters = replica.membership.ids.filter { $0 != replica.id && isReachable($0, now: now) }
        guard let furthest = voters.max(by: { match($0) < match($1) }) else { return }
        logger.log(.notice, source: "chorus", "membership policy: Raft group \(group): this machine left SWIM, handing leadership to \(furthest)")
        try? replica.transferLeadership(to: furthest)
    }

    /// `duration` as a log line says it: seconds to a tenth (`2.0
    /// seconds`), where `Duration` prints every nanosecond.
    private static func spoken(_ duration: Duration) -> String {
        let tenths = (max(duration.nanoseconds, 0) + 50_000_000) / 100_000_000
        return "\(tenths / 10).\(tenths % 10) seconds"
    }

    /// Whether the leader had an answer from member `id` within an
    /// election timeout (itself: always).
    private func isReachable(_ id: NodeID, now: Instant) -> Bool {
        guard id != replica.id else { return true }
        guard let contact = replica.lastContact(with: id) else { return false }
        return now - contact <= replica.configuration.electionTimeout
    }

    /// The change the policy calls for now, on the leader: a removal first
    /// (members gone for the grace, then machines that left SWIM), then a
    /// promotion, then an addition.
    private func nextChange(now: Instant) -> (RaftMembershipChange, reason: String)? {
        let membership = replica.membership
        let members = membership.learnerIDs + membership.ids
        for id in members where mayRemove(id, from: membership, now: now) {
            if let since = goneSince[id], now - since >= policy.failedMemberGrace {
                let seen = member.member(id).map { "\($0.status)" } ?? "forgotten"
                return (.remove(id), "gone for \(Self.spoken(now - since)): \(seen) in SWIM's view, or not running the group")
            }
        }
        for id in members where mayRemove(id, from: membership, now: now) && member.member(id)?.status == .left {
            return (.remove(id), "its machine left SWIM")
        }
        if let ready = healthySince.filter({ now - $0.value >= policy.stabilization }).keys.min() {
            return (.promote(ready), "caught up for \(Self.spoken(now - healthySince[ready, default: now]))")
        }
        let joining = member.allMembers.filter { candidate in
            candidate.status == .alive && candidate.id != replica.id && !membership.includes(candidate.id)
                && removedAt[candidate.id] == nil
                && ChorusNode.raftGroups(advertisedBy: candidate).contains(group)
        }
        return joining.min { $0.id < $1.id }.map {
            (.addLearner($0.id, endpoint: $0.endpoint), "alive in SWIM, running the group")
        }
    }

    /// Whether the policy may remove `id`: not the leader itself; a
    /// learner always; a voter only if at least ``RaftMembershipPolicy/minimumVoters``
    /// remain, and, if the leader heard from it within an election timeout,
    /// only while it hears from every other voter. So a removal never
    /// lowers the share of voters the group can reach: an unreachable voter
    /// (dead, or soon to be) goes before one that still answers, and a
    /// machine that left SWIM but still runs its replica is kept while
    /// another voter is down (etcd's strict reconfiguration check guards a
    /// removal the same way). Raft's contact, not SWIM's view, decides:
    /// one that crashed a moment ago is not yet dead to SWIM. A new leader
    /// starts with no contact, but Raft takes its first change only once
    /// an entry of its term has committed, by when a quorum has answered
    /// it: a voter it has not heard from yet is not one the rest need.
    private func mayRemove(_ id: NodeID, from membership: RaftMembership, now: Instant) -> Bool {
        guard id != replica.id else { return false }
        guard membership.contains(id) else { return true }
        let remaining = membership.ids.filter { $0 != id }
        guard remaining.count >= policy.minimumVoters else { return false }
        return !isReachable(id, now: now) || remaining.allSatisfy { isReachable($0, now: now) }
    }
}
