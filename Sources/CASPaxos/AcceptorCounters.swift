/// A snapshot of what an acceptor has done, for metrics and tests.
public struct AcceptorCounters: Hashable, Sendable {
    /// Prepares answered with a promise.
    public var promises = 0
    /// Reads' prepares of keys the acceptor holds no register for,
    /// answered with a promise it did not store
    /// (``CASPaxosMessage/unrecordedPromise(requestID:removalFloor:)``).
    public var unrecordedPromises = 0
    /// Accepts answered with an acceptance.
    public var acceptances = 0
    /// Copies of an accept already taken, answered with an acceptance
    /// again though a higher ballot was promised since (not in
    /// ``acceptances``).
    public var repeatedAcceptances = 0
    /// Garbage collection's re-writes of a tombstone for keys the acceptor
    /// holds no register for, taken by raising the removal floor, and, on
    /// a full acceptor, for keys whose register holds only a promise,
    /// taken by removing it
    /// (``CASPaxosMessage/rewriteTombstone(requestID:key:ballot:age:version:)``;
    /// also counted in ``acceptances``).
    public var tombstonesTakenAsRemoved = 0
    /// Garbage collection's prepares of keys the acceptor holds no register
    /// for, promised by raising the removal floor because it held
    /// ``CASPaxosConfiguration/maximumRegisters`` registers
    /// (``CASPaxosMessage/collectionPrepare(requestID:key:ballot:age:version:)``;
    /// also counted in ``promises``).
    public var promisesByFloor = 0
    /// Prepares and accepts refused because a higher ballot was seen.
    public var conflicts = 0
    /// Messages refused because their proposer is younger than garbage
    /// collection requires.
    public var staleAgeRefusals = 0
    /// Prepares and accepts refused because their proposer's configuration
    /// is older than a membership change's fence, or of its version with
    /// another digest (``AcceptorSnapshot/minimumVersion``).
    public var staleConfigurationRefusals = 0
    /// Messages dropped for an absurd ballot (zero, a counter above
    /// ``Ballot/maximumCounter``, or a piggybacked next ballot not above
    /// the accepted one) or an age above ``ProposerAge/maximumAge``: only a
    /// message handed over in process gets here, the decoder refusing
    /// such messages from the network.
    public var invalidBallots = 0
    /// Times the removal floor was kept from rising above
    /// ``Ballot/ownCounterLimit`` (a forged or corrupt ballot's doing):
    /// a register promised above it kept where a fold or a collection
    /// would have removed it, or a message that would have raised the
    /// floor above it dropped.
    public var absurdFloorsRefused = 0
    /// Prepares and accepts for a new key refused because the acceptor holds
    /// ``CASPaxosConfiguration/maximumRegisters`` registers, none of them
    /// holding a promise only (see ``promiseOnlyRegistersFolded``).
    public var registersRefused = 0
    /// Minimum-age updates dropped unanswered because they list more
    /// proposers than ``CASPaxosConfiguration/maximumTrackedProposers``.
    public var minimumAgesRefused = 0
    /// Minimum ages forgotten to make room for a collection's proposers
    /// (those of proposers it does not list).
    public var minimumAgesForgotten = 0
    /// Registers removed by garbage collection.
    public var registersRemoved = 0
    /// Registers holding a promise and nothing accepted (a prepare whose
    /// accept never came) removed to make room for a new key, oldest
    /// first, at ``CASPaxosConfiguration/maximumRegisters``: their promises
    /// are kept by the removal floor.
    public var promiseOnlyRegistersFolded = 0
    /// Replies and messages meant for proposers that reached this acceptor.
    public var unexpectedMessages = 0

    /// Creates zeroed counters.
    public init() {}
}
