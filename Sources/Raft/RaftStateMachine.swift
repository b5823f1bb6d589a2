/// The user's replicated state: committed commands are applied to it, in
/// log order, exactly once each per incarnation of the node; a snapshot
/// of it stands in for the log it was built from.
///
/// A restarted node restores the latest snapshot (if any) into an empty
/// state machine, then applies the committed entries after it. A follower
/// too far behind restores a snapshot sent by the leader instead.
public protocol RaftStateMachine: AnyObject {
    /// Applies the command committed at log index `index` and returns the
    /// result handed to the proposer (on the node that proposed it).
    /// Must be deterministic: every replica applies the same commands in the
    /// same order and must reach the same state.
    func apply(_ command: [UInt8], at index: UInt64) -> [UInt8]
    /// The whole state as of the last command applied, as bytes that
    /// ``restore(from:)`` accepts.
    func snapshot() -> [UInt8]
    /// Replaces the whole state with `snapshot`'s.
    ///
    /// - Throws: if the bytes are not a snapshot of this state machine (the
    ///   node then stops: its log no longer holds what the snapshot stood
    ///   for).
    func restore(from snapshot: [UInt8]) throws
}
