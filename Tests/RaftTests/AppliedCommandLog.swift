import Raft

/// A state machine that records what it applies, at which index, and
/// answers each command with itself.
final class AppliedCommandLog: RaftStateMachine {
    var applied: [UInt64: [UInt8]] = [:]

    func apply(_ command: [UInt8], at index: UInt64) -> [UInt8] {
        applied[index] = command
        return command
    }

    func snapshot() -> [UInt8] { [] }
    func restore(from snapshot: [UInt8]) throws {}
}
