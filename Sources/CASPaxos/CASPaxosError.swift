/// Why a proposal (or an administrative operation) did not complete.
///
/// ``Code/conflict``, ``Code/noQuorum``, ``Code/timeout`` and
/// ``Code/cancelled`` are indeterminate: the change may or may not have
/// taken effect (an acceptance may have reached a quorum whose answers
/// were lost), so a caller that must know reads the key again. The other codes are
/// definite: nothing was written.
public struct CASPaxosError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Hashable, Sendable {
        /// The deadline passed and the last attempt was refused by acceptors
        /// that had seen a higher ballot (concurrent proposers kept winning).
        case conflict
        /// The deadline passed and the last attempt was answered by fewer
        /// acceptors than a quorum (acceptors down or unreachable: the
        /// detail names those its last phase heard nothing from).
        case noQuorum
        /// The deadline passed before an attempt concluded (the proposal
        /// waited behind earlier ones on its key, or in back-off).
        case timeout
        /// The key or the value the change produced is longer than the
        /// configuration allows. Definite: nothing was written.
        case tooLarge
        /// Too many proposals are pending on this node. Definite.
        case overloaded
        /// The node is not a proposer, or was stopped; or the key's
        /// proposal failed, no accept sent, where an acceptor had promised
        /// it a ballot no other can beat (a faulty or hostile peer's absurd
        /// ballot at ``Ballot/maximumCounter``: that acceptor is lost to
        /// the key, which goes on while a quorum of the others answers;
        /// the proposer's other keys are not touched); or the proposer's
        /// age reached ``ProposerAge/maximumAge``, or its ballot counter
        /// ``Ballot/ownCounterLimit`` (only such a peer's absurd age, or
        /// 2⁶⁰ ballots drawn, bring them there: restart the proposer with
        /// a new ID, and look for that peer).
        /// Definite, but for a proposal whose earlier attempt sent accepts,
        /// which fails with ``conflict`` instead.
        case notAvailable
        /// An administrative request that cannot be carried out (a
        /// membership change of more than one acceptor at a time, or from a
        /// configuration that is itself mid-change). Definite.
        case invalidRequest
        /// An acceptor refused this proposer's configuration: a membership
        /// change moved the cluster on and fenced older configurations off
        /// while this proposer was left behind (restarted on an old one,
        /// say), or this proposer holds another configuration of the
        /// fence's version (quorums built by hand). While a change runs,
        /// wait: it sends its configuration to the proposers it lists.
        /// Otherwise restart this one with the configuration a running
        /// proposer holds (its quorums exactly: mid-change it is not a
        /// majority one), or, for a proposer left behind, call
        /// ``Proposer/changeMembership(to:proposers:now:into:)`` with the
        /// current acceptors on a proposer in it, listing this one, which
        /// sends it the configuration again (one with quorums built by hand
        /// refuses it, and the change stops). Definite (a proposal that may
        /// have written before the refusal fails with ``conflict``
        /// instead).
        case staleConfiguration
        /// Acceptors refused to store the key: each holds
        /// ``CASPaxosConfiguration/maximumRegisters`` registers, each with
        /// a value or a tombstone accepted, and too
        /// many of them for a quorum (for a garbage collection's tombstone
        /// re-write, which needs every acceptor, one).
        /// No retry succeeds until keys are deleted and collected, or the
        /// limit raised, so the proposal fails at once. Definite (a
        /// proposal that sent an accept fails with ``conflict`` instead:
        /// an acceptor that refused it for want of room may take a
        /// repeated copy once room frees).
        case registersFull
        /// The task awaiting the proposal was cancelled (the `async` API on
        /// a `LoopBound<CASPaxosNode>`) after the proposal sent an accept:
        /// the wait ended, but the proposal could not be withdrawn (the
        /// accept may have been taken), and runs on until it succeeds or
        /// its deadline passes. Indeterminate.
        case cancelled
        /// The proposal was withdrawn before it could write anything:
        /// ``Proposer/withdraw(_:now:into:)`` or
        /// ``CASPaxosNode/withdraw(_:)`` took it back while it was queued,
        /// backing off or preparing, with no accept sent; or the task
        /// awaiting it (the `async` API) was cancelled then, or before it
        /// started. Definite: nothing was written.
        case withdrawn
    }

    /// What went wrong.
    public var code: Code
    /// Details for people: the key, sizes, attempts.
    public var detail: String

    /// Creates an error.
    public init(_ code: Code, detail: String) {
        self.code = code
        self.detail = detail
    }

    /// Whether the change may have taken effect anyway.
    public var isIndeterminate: Bool {
        switch code {
        case .conflict, .noQuorum, .timeout, .cancelled: true
        case .tooLarge, .overloaded, .notAvailable, .invalidRequest, .staleConfiguration, .registersFull, .withdrawn:
            false
        }
    }

    /// The code and the detail, on one line.
    public var description: String { "\(code): \(detail)" }
}
