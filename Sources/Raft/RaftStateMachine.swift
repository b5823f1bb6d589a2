/// The user's replicated state: committed commands are applied to it, in
/// log order, exactly once each per incarnation of the node.
///
/// Without snapshots (not yet implemented) a restarted node starts from an
/// empty state machine and applies the whole committed log again.
public protocol RaftStateMachine: AnyObject {
    /// Applies the command committed at log index `index` and returns the
    /// result handed to the proposer (on the node that proposed it).
    /// Must be deterministic: every replica applies the same commands in the
    /// same order and must reach the same state.
    func apply(_ command: [UInt8], at index: UInt64) -> [UInt8]
}
