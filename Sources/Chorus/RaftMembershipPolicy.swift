import EventCore

/// How a ``ChorusNode`` lets SWIM's view of the cluster change a Raft
/// group's membership (opt-in: without a policy, SWIM only reports, and
/// the operator changes members).
///
/// With a policy, the group's leader compares the group's members with
/// what SWIM sees, about every ``interval``, and makes at most one change
/// at a time (each through `RaftNode.changeMembership`), as Consul's
/// leader reconciles its Serf members into Raft with autopilot:
/// 1. it removes a member whose machine SWIM has found dead (or has
///    forgotten), or that no longer advertises the group, once it has been
///    so for ``failedMemberGrace``; and one whose machine left SWIM
///    gracefully at once. Never itself, never a voter when fewer than
///    ``minimumVoters`` would remain, and a voter it still hears from only
///    while it hears from every other voter, so that a removal never
///    lowers the share of voters the group can reach;
/// 2. it promotes a learner once its machine is alive, advertises the
///    group, and the learner answers and has stayed within
///    ``maximumTrailingEntries`` of the leader's commit index for
///    ``stabilization``;
/// 3. it adds as a learner a machine SWIM sees alive that runs a replica of
///    the group with a policy (every such ``ChorusNode`` advertises its
///    groups in its SWIM metadata) but is not a member, unless the leader
///    removed it within the grace.
///
/// A leader whose own machine left SWIM hands leadership over first.
/// Each change, its reason and its outcome are logged at `notice` (source
/// `chorus`) through the ``ChorusNode``'s logger. A
/// false suspicion costs a member for a while, not the group: a removed
/// machine that is still up keeps advertising the group and comes back as
/// a learner, then a voter. To take a machine out of a group for good
/// with a policy on, stop its replica (``ChorusNode/stopGroup(_:)``) or
/// have the machine leave SWIM. Give every machine of a group the same
/// policy: whichever leads applies its own, and a member that runs the
/// group without one does not advertise it (the leader removes it after
/// the grace).
public struct RaftMembershipPolicy: Hashable, Sendable {
    /// How long a member's machine must have been dead in SWIM's view (or
    /// forgotten by it) before the leader removes it (at least 1 s).
    /// Default 30 s: well past SWIM's suspicion timeout, so that a member
    /// is removed for a failure, not for a slow moment.
    public var failedMemberGrace: Duration = .seconds(30)
    /// How long a learner must stay caught up, its machine alive, before
    /// the leader promotes it (at least 0). Default 10 s (Consul's server
    /// stabilization time).
    public var stabilization: Duration = .seconds(10)
    /// The fewest voters the policy leaves a group with when it removes a
    /// failed one (1 ... 1,024). Default 3, so a group it shrinks still
    /// survives a failure. It never adds voters to reach it: only machines
    /// that run the group join it.
    public var minimumVoters = 3
    /// How far behind the leader's commit index a learner may be and count
    /// as caught up. Default 256.
    public var maximumTrailingEntries: UInt64 = 256
    /// How often each machine compares the group with SWIM's view (1 ms
    /// ... 60 s). Default 1 s.
    public var interval: Duration = .seconds(1)

    /// The default policy.
    public init() {}

    /// Checks every field against its documented range.
    ///
    /// - Throws: `ConfigurationError` naming the first field out of range.
    public func validate() throws(ConfigurationError) {
        if failedMemberGrace < .seconds(1) {
            throw ConfigurationError(field: "failedMemberGrace", value: "\(failedMemberGrace)", allowedRange: "at least 1 s")
        }
        if stabilization < .zero {
            throw ConfigurationError(field: "stabilization", value: "\(stabilization)", allowedRange: "at least 0")
        }
        if !(1...1_024).contains(minimumVoters) {
            throw ConfigurationError(field: "minimumVoters", value: "\(minimumVoters)", allowedRange: "1 ... 1,024")
        }
        if interval < .milliseconds(1) || interval > .seconds(60) {
            throw ConfigurationError(field: "interval", value: "\(interval)", allowedRange: "1 ms ... 60 s")
        }
    }
}
