import Raft

/// Applies nothing: counts the commands and their bytes (etcd raft's
/// in-process benchmarks apply to no state machine either). Its result is
/// empty, so applying allocates nothing. The state machine of Raft's
/// pipelined throughput, in process (RaftBenchmarks) and on loopback
/// (CASPaxosBenchmarks' Raft peers).
public final class CountingStateMachine: RaftStateMachine {
    /// Commands applied, and their bytes.
    public private(set) var applied = 0
    public private(set) var bytes = 0

    public init() {}

    public func apply(_ command: [UInt8], at index: UInt64) -> [UInt8] {
        applied += 1
        bytes &+= command.count
        return []
    }

    public func snapshot() -> [UInt8] {
        withUnsafeBytes(of: UInt64(applied).littleEndian) { Array($0) }
    }

    public func restore(from snapshot: [UInt8]) throws {
        guard snapshot.count == 8 else { throw CounterSnapshotError(byteCount: snapshot.count) }
        applied = Int(snapshot.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
    }
}

/// A snapshot handed to ``CountingStateMachine`` that is not its 8-byte
/// count.
public struct CounterSnapshotError: Error, CustomStringConvertible {
    public let byteCount: Int
    public var description: String { "not a counter snapshot: \(byteCount) bytes, where a count is 8" }
}
