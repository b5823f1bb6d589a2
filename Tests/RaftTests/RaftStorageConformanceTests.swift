import EventCore
import Raft
import TestSupport
import Testing

/// What the ``RaftStorage`` protocol promises, checked alike on
/// `InMemoryRaftStorage` and on `FileRaftStorage`, the file store reopened
/// from its directory after every write (and once with a segment per
/// write, so that compaction removes some).
@Suite("RaftStorage conformance")
struct RaftStorageConformanceTests {
    /// A storage under test.
    final class Harness {
        private(set) var storage: any RaftStorage
        let directory: TemporaryDirectory?
        let options: FileRaftStorage.Options

        init(_ kind: String) throws {
            options = FileRaftStorage.Options(segmentSize: kind == "file, a segment per write" ? 1 : 64 << 20)
            if kind == "memory" {
                directory = nil
                storage = InMemoryRaftStorage()
            } else {
                let directory = try TemporaryDirectory()
                self.directory = directory
                storage = try FileRaftStorage(directory: directory.path, opening: .new, options: options)
            }
        }

        /// Opens a file store again from its directory (in memory, nothing).
        func reopen() throws {
            guard let directory else { return }
            (storage as? FileRaftStorage)?.close()
            storage = try FileRaftStorage(directory: directory.path, opening: .existing, options: options)
        }

        /// Every entry held.
        var entries: [RaftEntry] {
            storage.entries(from: storage.firstIndex, through: storage.lastIndex, maximumBytes: .max)
        }
    }

    @Test("appends, overwrites, hard state, reads, snapshots and compaction",
          arguments: ["memory", "file", "file, a segment per write"])
    func conformance(kind: String) throws {
        let harness = try Harness(kind)
        defer { harness.directory?.remove() }
        var storage: any RaftStorage { harness.storage }

        #expect(storage.firstIndex == 1 && storage.lastIndex == 0)
        #expect(storage.term(at: 0) == 0 && storage.term(at: 1) == nil)
        #expect(storage.hardState == RaftHardState() && storage.snapshot == nil)
        #expect(storage.entries(from: 1, through: 5, maximumBytes: .max).isEmpty)

        // Entries with a hard state.
        let first = (1...5).map { RaftEntry(term: 1, index: UInt64($0), command: Array(repeating: UInt8($0), count: 10)) }
        let voted = RaftHardState(term: 1, votedFor: NodeID(2), commitIndex: 0)
        try storage.persist(first, hardState: voted)
        try harness.reopen()
        #expect(storage.lastIndex == 5 && storage.hardState == voted)
        #expect(harness.entries == first)

        // A new leader's entry replaces the suffix from its index.
        let noop = RaftEntry(term: 2, index: 4, kind: .leaderNoop)
        let termTwo = RaftHardState(term: 2, votedFor: nil, commitIndex: 0)
        try storage.persist([noop], hardState: termTwo)
        try harness.reopen()
        #expect(harness.entries == first[..<3] + [noop])
        #expect(storage.term(at: 4) == 2 && storage.term(at: 5) == nil && storage.hardState == termTwo)

        // Reads: clamped to what is held, at least one entry, then the byte budget.
        #expect(storage.entries(from: 1, through: 4, maximumBytes: 25).map(\.index) == [1, 2])
        #expect(storage.entries(from: 1, through: 4, maximumBytes: 0).map(\.index) == [1])
        #expect(storage.entries(from: 3, through: 9, maximumBytes: .max).map(\.index) == [3, 4])
        #expect(storage.entries(from: 0, through: 2, maximumBytes: .max).map(\.index) == [1, 2])

        // A hard state alone that changes only the commit index: the file
        // store keeps it for its next write, which carries it.
        let committed = RaftHardState(term: 2, votedFor: nil, commitIndex: 3)
        try storage.persist([], hardState: committed)
        #expect(storage.hardState == committed && storage.lastIndex == 4)

        // A snapshot the log holds keeps the log.
        let more = (5...10).map { RaftEntry(term: 2, index: UInt64($0), command: [UInt8($0)]) }
        try storage.persist(more, hardState: nil)
        let log = first[..<3] + [noop] + more
        let held = RaftSnapshot(index: 6, term: 2, data: [6, 6])
        try storage.saveSnapshot(held)
        try harness.reopen()
        #expect(storage.snapshot == held && storage.firstIndex == 1 && storage.lastIndex == 10)
        #expect(storage.hardState == committed)

        // Compaction goes no further than the snapshot; the term before the
        // first entry stays known.
        try storage.compact(through: 9)
        try harness.reopen()
        let kept = storage.firstIndex
        #expect(kept <= 7, "\(kind): first index \(kept) after compacting through the snapshot at 6")
        if kind != "file" {  // one segment, which is never removed
            #expect(kept > 1, "\(kind): nothing was compacted")
        }
        #expect(storage.term(at: kept - 1) == (kept == 1 ? 0 : log[Int(kept) - 2].term))
        #expect(kept == 1 || storage.term(at: kept - 2) == nil)
        #expect(harness.entries == Array(log[Int(kept - 1)...]))

        // A snapshot the log does not hold (past its end) discards it.
        let ahead = RaftSnapshot(index: 12, term: 3, data: [12])
        try storage.saveSnapshot(ahead)
        try harness.reopen()
        #expect(storage.snapshot == ahead && storage.hardState == committed)
        #expect(storage.firstIndex == 13 && storage.lastIndex == 12)
        #expect(storage.term(at: 12) == 3 && storage.term(at: 11) == nil && harness.entries.isEmpty)

        // The log goes on after it.
        let next = RaftEntry(term: 3, index: 13, command: [13])
        try storage.persist([next, RaftEntry(term: 3, index: 14)], hardState: nil)
        try harness.reopen()
        #expect(harness.entries.map(\.index) == [13, 14] && storage.term(at: 12) == 3)

        // A snapshot whose last entry the log holds with another term
        // discards it too.
        let conflicting = RaftSnapshot(index: 13, term: 4, data: [])
        try storage.saveSnapshot(conflicting)
        try harness.reopen()
        #expect(storage.snapshot == conflicting && storage.firstIndex == 14 && storage.lastIndex == 13)
        #expect(storage.term(at: 13) == 4)
    }
}
