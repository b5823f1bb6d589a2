import Raft

/// A node's storage as the test cluster hands it to a ``RaftNode``: reads
/// and writes go to the storage the cluster keeps, until the node's
/// process is taken for dead (``fence()``); from then on every write
/// throws, as it would with the process gone, so a driver whose node a
/// forced fault crashed in the middle of a turn stores nothing more. A
/// restart wraps the same storage anew.
final class FencedRaftStorage: RaftStorage {
    struct Fenced: Error {}

    private let inner: any RaftStorage
    private(set) var isFenced = false

    init(_ inner: any RaftStorage) {
        self.inner = inner
    }

    func fence() { isFenced = true }

    var hardState: RaftHardState { inner.hardState }
    var firstIndex: UInt64 { inner.firstIndex }
    var lastIndex: UInt64 { inner.lastIndex }
    var snapshot: RaftSnapshot? { inner.snapshot }
    func term(at index: UInt64) -> UInt64? { inner.term(at: index) }
    func entries(from start: UInt64, through end: UInt64, maximumBytes: Int) -> [RaftEntry] {
        inner.entries(from: start, through: end, maximumBytes: maximumBytes)
    }

    func persist(_ entries: [RaftEntry], hardState: RaftHardState?) throws {
        guard !isFenced else { throw Fenced() }
        try inner.persist(entries, hardState: hardState)
    }

    func saveSnapshot(_ snapshot: RaftSnapshot) throws {
        guard !isFenced else { throw Fenced() }
        try inner.saveSnapshot(snapshot)
    }

    func compact(through index: UInt64) throws {
        guard !isFenced else { throw Fenced() }
        try inner.compact(through: index)
    }
}
