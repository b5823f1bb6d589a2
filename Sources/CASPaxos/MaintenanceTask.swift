import EventCore

/// A garbage collection or membership change a ``Proposer`` drives: a list
/// of steps, each finished before the next starts, each resent to the
/// nodes that have not answered until they do or the run's deadline
/// passes. A run fails once it has made no progress (a step finished, a
/// page of keys listed, a key re-written) for
/// ``CASPaxosConfiguration/maintenanceTimeout``. After a failed run the
/// task backs off and tries again until its ``finalDeadline``: a garbage
/// collection from its first step (the paper's GC is retried until it
/// completes; ours for ``CASPaxosConfiguration/garbageCollectionTimeout``),
/// a membership change from the step that failed, a re-scan from the keys
/// it had not re-written yet.
struct MaintenanceTask {
    /// One step.
    enum Step {
        /// Re-write the key's tombstone through every acceptor (identity
        /// change, full accept quorum); learns the tombstone's ballot.
        case rewriteTombstone(key: [UInt8])
        /// Every proposer forgets the key's cached ballot, fast-forwards
        /// past the tombstone and grows older.
        case invalidateProposers(key: [UInt8])
        /// Every acceptor refuses the proposers' younger messages.
        case raiseMinimumAges
        /// Every acceptor removes the key if it still holds the tombstone.
        case removeTombstone(key: [UInt8])
        /// Every proposer adopts these acceptor quorums.
        case reconfigure(AcceptorQuorums)
        /// Identity change on every key listed by a prepare quorum and by
        /// every acceptor in `joining` (acceptors being added, which may
        /// hold keys from an earlier membership, collected since on the
        /// others).
        case rescan(joining: [Endpoint])
        /// Take the cluster's membership-change register for a change from
        /// the current acceptors to these (or go on under a record that
        /// allows them), then plan the change's steps from the
        /// configuration in use.
        case takeMembershipRecord(to: [Endpoint])
        /// Empty the membership-change register, if it still holds the
        /// record the change went on under.
        case releaseMembershipRecord
        /// Every acceptor of `final` (the change's final configuration,
        /// which every proposer adopted) refuses prepares and accepts of
        /// configurations older than it: sent to all, done once a prepare
        /// quorum of it answered.
        case raiseMinimumVersion(final: AcceptorQuorums)
    }

    let id: UInt64
    /// When the current run fails (``CASPaxosConfiguration/maintenanceTimeout``
    /// after it started or last made progress).
    var deadline: Instant
    /// Proposers to invalidate or reconfigure (those dropped from the
    /// cluster's list leave it: ``Proposer/updateProposers(_:now:into:)``).
    var proposers: [Endpoint]
    var steps: [Step]
    /// The steps to start over from when a run fails (garbage collection),
    /// or nil to retry the steps left (membership change).
    let restartSteps: [Step]?
    /// When the task fails instead of trying again (for a garbage
    /// collection, ``CASPaxosConfiguration/garbageCollectionTimeout`` after
    /// it started; for a membership change,
    /// ``CASPaxosConfiguration/maintenanceTimeout`` after its last progress).
    var finalDeadline: Instant
    /// Runs that failed and were tried again.
    var restarts = 0
    /// When the next run starts, while the task backs off after a failure.
    var restartAt: Instant?
    /// The request ID of the current step's messages (one per step; key
    /// listings use one per page and acceptor, in ``listingRequests``).
    var requestID: UInt64 = 0
    /// Who must answer the current step, and who did.
    var targets: [Endpoint] = []
    var answered: Set<Endpoint> = []
    var resendAt = Instant.distantFuture
    /// The message the current step sends to every target.
    var message: CASPaxosMessage?
    /// Proposals the current step waits for, and the key of each.
    var proposals: [UInt64: [UInt8]] = [:]
    /// Garbage collection: the tombstone's ballot and the proposers' ages.
    var tombstone = Ballot.zero
    var ages: [ProposerAge] = []
    /// Re-scan: the configuration version (with its digest) its listing
    /// was made under (a re-scan run again under it goes on from where the
    /// failed run stopped); per acceptor, the last key listed and whether
    /// the listing is complete; the latest listing request per acceptor;
    /// the keys.
    var rescanVersion: ConfigurationVersion?
    var listingCursor: [Endpoint: [UInt8]] = [:]
    var listingDone: Set<Endpoint> = []
    var listingRequests: [UInt64: Endpoint] = [:]
    var keys: Set<[UInt8]> = []
    /// The highest removal floor the prepare acceptors listed with, which
    /// the acceptors being added raise theirs to before they list.
    var rescanFloor = Ballot.zero
    /// The re-scan's keys still to re-write, the next one last.
    var rewritesLeft: [[UInt8]] = []
    /// Membership change: the register value it went on under, and the
    /// error to end with once the register is released (a plan that
    /// failed after the register was taken).
    var membershipRecord: [UInt8]?
    var failure: CASPaxosError?

    /// The current step, as messages name it ("its end" once none is left).
    var stepDescription: String { steps.first.map { "\($0)" } ?? "its end" }

    /// Whether this is a garbage collection (which starts over until it
    /// completes) rather than a membership change.
    var isGarbageCollection: Bool { restartSteps != nil }

    /// The task made progress at `now`: the current run (and a membership
    /// change as a whole) has `timeout` from now.
    mutating func progressed(now: Instant, timeout: Duration) {
        deadline = now + timeout
        if !isGarbageCollection { finalDeadline = deadline }
    }
}
