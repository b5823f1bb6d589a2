import Raft

/// A storage that hands every call to `inner`: the base of the test
/// storages that watch or fence a node's writes (``FencedRaftStorage``,
/// `SnapshotTests.SnapshotOrderSpy`), which override the writes.
class ForwardingRaftStorage: RaftStorage {
    let inner: any RaftStorage

    init(_ inner: any RaftStorage) {
        self.inner = inner
    }

    var hardState: RaftHardState { inner.hardState }
    var firstIndex: UInt64 { inner.firstIndex }
    var lastIndex: UInt64 { inner.lastIndex }
    var snapshot: RaftSnapshot? { inner.snapshot }
    func term(at index: UInt64) -> UInt64? { inner.term(at: index) }
    func entries(from start: UInt64, through end: UInt64, maximumBytes: Int) -> [RaftEntry] {
        inner.entries(from: start, through: end, maximumBytes: maximumBytes)
    }

    func persist(_ entries: [RaftEntry], hardState: RaftHardState?) throws {
        try inner.persist(entries, hardState: hardState)
    }

    func saveSnapshot(_ snapshot: RaftSnapshot) throws {
        try inner.saveSnapshot(snapshot)
    }

    func compact(through index: UInt64) throws {
        try inner.compact(through: index)
    }
}
