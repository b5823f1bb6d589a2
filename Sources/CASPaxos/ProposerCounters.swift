/// A snapshot of what a proposer has done, for metrics and tests.
public struct ProposerCounters: Hashable, Sendable {
    /// Proposals that completed with a value.
    public var proposalsSucceeded = 0
    /// Proposals that failed (any ``CASPaxosError``).
    public var proposalsFailed = 0
    /// Of those, proposals withdrawn before they sent an accept
    /// (``Proposer/withdraw(_:now:into:)``).
    public var proposalsWithdrawn = 0
    /// Attempts started (a proposal's first and each retry).
    public var attempts = 0
    /// Attempts that skipped the prepare phase thanks to the cached ballot
    /// (one-round-trip optimization).
    public var oneRoundTripAttempts = 0
    /// Reads that ended at the promises, without an accept phase: every
    /// promise of the quorum reported the same accepted ballot, held by
    /// an accept quorum, so its value was chosen.
    public var readsEndedAtPromises = 0
    /// Reads whose prepare quorum held an acceptor that stored no promise
    /// (the key absent there) and one that accepted a value the read must
    /// write back: prepared again, with promises that are stored, at once.
    public var readsPreparedAgain = 0
    /// Retries whose prepare found another proposer's ballot above the
    /// proposal's refused accept before every acceptor had answered that
    /// accept, and waited for the missing answers: refusals that prove it
    /// written nowhere let the change apply afresh, where the proposal
    /// would have failed indeterminate at once.
    public var awaitedLastAccepts = 0
    /// Retries whose prepare found another proposer's value above the
    /// proposal's accepts, built on one of them (the promises named its
    /// parent, ``RegisterState/parent``): the change had taken effect, and
    /// the proposal wrote that value back and returns its own result,
    /// where without parents it fails indeterminate.
    public var rivalValuesBuiltOnOwn = 0
    /// Retries whose prepare found another proposer's value above the
    /// proposal's accepts, built on a value older than all of them: the
    /// change had not taken effect and was applied to that value, where
    /// without parents the proposal fails indeterminate.
    public var rivalValuesBuiltOnOlder = 0
    /// Attempts abandoned: refused by a higher ballot or a stale age, or
    /// not answered by a quorum in time.
    public var failedAttempts = 0
    /// Prepare and accept messages sent.
    public var requestsSent = 0
    /// Prepare and accept messages sent again to acceptors that had not
    /// answered within ``CASPaxosConfiguration/resendInterval`` (not in
    /// ``requestsSent``).
    public var requestsResent = 0
    /// Replies with a request ID no attempt is waiting for (late,
    /// duplicated, or from a finished attempt).
    public var staleReplies = 0
    /// Messages meant for acceptors that reached this proposer, or replies
    /// from endpoints that are not acceptors of the phase.
    public var unexpectedMessages = 0
    /// Garbage-collection invalidations handled (each makes the proposer
    /// one age older).
    public var invalidations = 0
    /// Garbage collections started over, and membership-change steps
    /// retried, after a failed run.
    public var maintenanceRestarts = 0
    /// Acceptor configurations adopted (membership changes).
    public var reconfigurations = 0
    /// Configurations refused: sent at a lower version than this
    /// proposer's, or at its version but different (answered with
    /// ``CASPaxosMessage/configurationRefused(requestID:current:)``).
    public var configurationsRefused = 0
    /// Proposals failed because an acceptor refused this proposer's
    /// configuration as older than a membership change's fence, or as
    /// another configuration of its version (answered
    /// with ``CASPaxosMessage/staleConfiguration(requestID:minimumVersion:)``).
    public var staleConfigurationRefusals = 0
    /// Proposals failed because acceptors with full registers
    /// (``CASPaxosMessage/registersFull(requestID:)``) left an attempt
    /// short of its quorum.
    public var registersFullFailures = 0
    /// Garbage collections refused because
    /// ``CASPaxosConfiguration/maximumGarbageCollections`` were running
    /// (their tombstones stay until collected later).
    public var garbageCollectionsRefused = 0
    /// Ballots not drawn because none was left to beat a key's promise
    /// (an absurd ballot at or near ``Ballot/maximumCounter``): each left
    /// an accept without the next ballot, or a prepare drawn from the
    /// counter instead (which only the acceptors that did not make that
    /// promise take: see ``CASPaxosError/Code/notAvailable``).
    public var ballotsExhausted = 0
    /// Answers naming a ballot above ``Ballot/followedCounterLimit``
    /// (forged, or corrupted: no honest cluster counts so far), which
    /// only the proposal they answered beats.
    public var absurdBallots = 0

    /// Creates zeroed counters.
    public init() {}
}
