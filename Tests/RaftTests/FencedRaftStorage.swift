import Raft

/// A node's storage as the test cluster hands it to a ``RaftNode``: reads
/// and writes go to the storage the cluster keeps, until the node's
/// process is taken for dead (``fence()``); from then on every write
/// throws, as it would with the process gone, so a driver whose node a
/// forced fault crashed in the middle of a turn stores nothing more. A
/// restart wraps the same storage anew.
final class FencedRaftStorage: ForwardingRaftStorage {
    struct Fenced: Error {}

    private(set) var isFenced = false

    func fence() { isFenced = true }

    override func persist(_ entries: [RaftEntry], hardState: RaftHardState?) throws {
        guard !isFenced else { throw Fenced() }
        try super.persist(entries, hardState: hardState)
    }

    override func saveSnapshot(_ snapshot: RaftSnapshot) throws {
        guard !isFenced else { throw Fenced() }
        try super.saveSnapshot(snapshot)
    }

    override func compact(through index: UInt64) throws {
        guard !isFenced else { throw Fenced() }
        try super.compact(through: index)
    }
}
