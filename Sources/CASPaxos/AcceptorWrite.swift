import EventCore

/// One change to an acceptor's durable state: what
/// ``CASPaxosEffect/persist(_:)`` carries and an ``AcceptorStore`` records.
public enum AcceptorWrite: Hashable, Sendable {
    /// The register of `key` is now `state`.
    case register(key: [UInt8], state: RegisterState)
    /// The register of `key` was removed (by garbage collection, or folded
    /// into the floor to make room: a promise with nothing accepted);
    /// ballots up to `floor` are refused for every absent key from now on.
    case remove(key: [UInt8], floor: Ballot)
    /// Ballots up to `floor` are refused for every absent key from now on:
    /// the floor of the acceptors a joining acceptor is added to.
    case removalFloor(Ballot)
    /// Messages from `proposer` younger than `age` are refused.
    case minimumAge(proposer: NodeID, age: UInt64)
    /// The minimum age of `proposer` is forgotten: a collection that does
    /// not list it needed room (see
    /// ``CASPaxosConfiguration/maximumTrackedProposers``).
    case forgetMinimumAge(proposer: NodeID)
    /// The proposer on the acceptor's node adopted `quorums` (a membership
    /// change's step), durably before it acknowledges: after a restart,
    /// the node starts its proposer from it (see
    /// ``AcceptorSnapshot/proposerConfiguration``).
    case proposerConfiguration(AcceptorQuorums)
    /// Prepares and accepts of configurations older than this version, or
    /// of its version with another digest, are refused from now on (a
    /// membership change's fence; see ``AcceptorSnapshot/minimumVersion``).
    case minimumVersion(ConfigurationVersion)
}
