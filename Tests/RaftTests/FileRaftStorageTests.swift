import EventCore
import Foundation
@testable import Raft
import TestSupport
import Testing
import WireCodec

/// The file-backed write-ahead log: durability across reopening, group
/// commit, torn tails, damage, segments, snapshots and compaction. Each test
/// works in a fresh temporary directory.
@Suite("FileRaftStorage")
struct FileRaftStorageTests {
    /// Entries `indices` of `term`, each with a command naming its index.
    static func entries(_ indices: ClosedRange<UInt64>, term: UInt64) -> [RaftEntry] {
        indices.map { RaftEntry(term: term, index: $0, command: Array("entry \($0)".utf8)) }
    }

    static func allEntries(_ storage: FileRaftStorage) -> [RaftEntry] {
        storage.entries(from: storage.firstIndex, through: storage.lastIndex, maximumBytes: .max)
    }

    /// Three synced records (entries 1 ... 3, 4 ... 6, 7 ... 9) in one
    /// segment; returns its path and its size after each.
    static func writeThreeRecords(_ directory: TemporaryDirectory) throws -> (path: String, sizes: [Int]) {
        let storage = try FileRaftStorage(directory: directory.path, opening: .new)
        var sizes: [Int] = []
        for start in stride(from: UInt64(1), through: 7, by: 3) {
            try storage.persist(entries(start...(start + 2), term: 1), hardState: RaftHardState(term: 1))
            sizes.append(try directory.bytes(directory.segments()[0]).count)
        }
        return (try directory.segments()[0], sizes)
    }

    @Test("entries, the hard state and the snapshot survive reopening")
    func roundTrip() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let hardState = RaftHardState(term: 3, votedFor: NodeID(7), commitIndex: 12)
        let snapshot = RaftSnapshot(index: 10, term: 2, data: Array(0..<200))
        let log = Self.entries(1...10, term: 2) + Self.entries(11...20, term: 3)
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new)
            try storage.persist(Array(log[..<10]), hardState: RaftHardState(term: 2, votedFor: NodeID(7)))
            try storage.persist(Array(log[10...]), hardState: hardState)
            try storage.saveSnapshot(snapshot)
        }
        let reopened = try FileRaftStorage(directory: directory.path, opening: .existing)
        #expect(Self.allEntries(reopened) == log)
        #expect(reopened.hardState == hardState)
        #expect(reopened.snapshot == snapshot)
        #expect(reopened.truncatedBytes == 0)
        #expect(try directory.names(endingWith: ".snap") == ["snapshot-00000000000000000010-00000000000000000002.snap"])
    }

    /// Below the snapshot held, the entry at its index is gone, so the log
    /// was restarted after it: the committed entries above were discarded.
    @Test("a snapshot not above the one held is refused as invalidArgument; the log and the snapshot stay")
    func olderSnapshotRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let storage = try FileRaftStorage(directory: directory.path, opening: .new)
        let memory = InMemoryRaftStorage()
        let log = Self.entries(1...20, term: 2)
        let held = RaftSnapshot(index: 10, term: 2, data: [10])
        for store in [storage, memory] as [any RaftStorage] {
            try store.persist(log, hardState: RaftHardState(term: 2))
            try store.saveSnapshot(held)
            try store.compact(through: 10)
            for older in [RaftSnapshot(index: 5, term: 2, data: [5]), RaftSnapshot(index: 10, term: 2, data: [0])] {
                #expect {
                    try store.saveSnapshot(older)
                } throws: { error in
                    (error as? RaftStorageError)?.code == .invalidArgument
                }
            }
            #expect(store.snapshot == held)
            #expect(store.lastIndex == 20)
        }
        storage.close()
        let reopened = try FileRaftStorage(directory: directory.path, opening: .existing)
        #expect(reopened.snapshot == held)
        #expect(reopened.lastIndex == 20 && reopened.term(at: 20) == 2)
    }

    @Test("group commit: a persist of many entries is one record and one sync")
    func groupCommit() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let storage = try FileRaftStorage(directory: directory.path, opening: .new)
        let syncs = storage.syncCount
        let written = storage.bytesWritten
        try storage.persist(Self.entries(1...500, term: 1), hardState: RaftHardState(term: 1, votedFor: NodeID(1)))
        #expect(storage.syncCount == syncs + 1)
        let segment = try directory.segments()[0]
        #expect(try directory.bytes(segment).count == written + (storage.bytesWritten - written))
        for start in stride(from: UInt64(501), through: 901, by: 100) {
            try storage.persist(Self.entries(start...(start + 99), term: 1), hardState: nil)
        }
        #expect(storage.syncCount == syncs + 6)
    }

    /// Written unsynced (etcd's rule), a commit-only record could be lost
    /// at a power loss while a synced record written after it survived:
    /// recovery refused such a log as damaged (a bad record with a valid
    /// one after it).
    @Test("a persist that changes only the commit index writes nothing; the next record carries it; a new term or vote is synced")
    func commitIndexOnly() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let storage = try FileRaftStorage(directory: directory.path, opening: .new)
        try storage.persist(Self.entries(1...5, term: 1), hardState: RaftHardState(term: 1, votedFor: NodeID(2)))
        let syncs = storage.syncCount
        let written = storage.bytesWritten
        try storage.persist([], hardState: RaftHardState(term: 1, votedFor: NodeID(2), commitIndex: 5))
        #expect(storage.syncCount == syncs)
        #expect(storage.bytesWritten == written, "no record that is not synced")
        #expect(storage.hardState.commitIndex == 5)
        // The next record, of entries only, carries it.
        try storage.persist(Self.entries(6...6, term: 1), hardState: nil)
        #expect(storage.syncCount == syncs + 1)
        storage.close()
        let reopened = try FileRaftStorage(directory: directory.path, opening: .existing)
        #expect(reopened.hardState.commitIndex == 5)
        // Nor when the segment is full: no segment is started for it.
        let tiny = try TemporaryDirectory()
        defer { tiny.remove() }
        let rolling = try FileRaftStorage(
            directory: tiny.path, opening: .new, options: FileRaftStorage.Options(segmentSize: 1))
        try rolling.persist(Self.entries(1...2, term: 1), hardState: RaftHardState(term: 1))
        let (rollingSyncs, rollingWritten) = (rolling.syncCount, rolling.bytesWritten)
        try rolling.persist([], hardState: RaftHardState(term: 1, commitIndex: 2))
        #expect(rolling.syncCount == rollingSyncs && rolling.bytesWritten == rollingWritten)
        let reopenedSyncs = reopened.syncCount
        try reopened.persist([], hardState: RaftHardState(term: 2, votedFor: nil, commitIndex: 5))
        #expect(reopened.syncCount == reopenedSyncs + 1)
        try reopened.persist([], hardState: RaftHardState(term: 2, votedFor: NodeID(3), commitIndex: 5))
        #expect(reopened.syncCount == reopenedSyncs + 2)
    }

    @Test("entries replacing a suffix survive reopening, within a segment and across segments",
          arguments: [64 << 20, 128])
    func suffixOverwrite(segmentSize: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let options = FileRaftStorage.Options(segmentSize: segmentSize)
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new, options: options)
            for start in stride(from: UInt64(1), through: 9, by: 2) {
                try storage.persist(Self.entries(start...(start + 1), term: 1), hardState: RaftHardState(term: 1))
            }
            let segmentsBefore = try directory.segments().count
            let syncs = storage.syncCount
            try storage.persist(Self.entries(3...5, term: 2), hardState: RaftHardState(term: 2))
            if segmentSize == 128 {
                // A new segment (its file and the directory) supersedes the
                // ones from index 3 on; their removal is synced too, before
                // a compaction could remove the ones below them.
                #expect(try directory.segments().count < segmentsBefore + 1)
                #expect(storage.syncCount == syncs + 3)
            } else {
                #expect(storage.syncCount == syncs + 1)
            }
            try storage.persist(Self.entries(5...6, term: 3), hardState: RaftHardState(term: 3))
        }
        let expected = Self.entries(1...2, term: 1) + Self.entries(3...4, term: 2) + Self.entries(5...6, term: 3)
        // Superseded segments are gone: the first indices of those left rise.
        let firstIndices = try directory.segments().map { UInt64($0.dropLast(4).suffix(20)) ?? 0 }
        #expect(firstIndices == firstIndices.sorted() && Set(firstIndices).count == firstIndices.count)
        let reopened = try FileRaftStorage(directory: directory.path, opening: .existing, options: options)
        #expect(Self.allEntries(reopened) == expected)
        #expect(reopened.hardState.term == 3)
        try reopened.persist(Self.entries(7...7, term: 3), hardState: nil)
        reopened.close()
        #expect(Self.allEntries(try FileRaftStorage(directory: directory.path, opening: .existing, options: options))
                == expected + Self.entries(7...7, term: 3))
    }

    /// A torn last record: the segment cut inside it, garbage or zeros
    /// after it, or the piece of it in its last disk sector left zeros.
    enum Tear: String, CaseIterable {
        case cutShort, garbageAppended, zerosAppended, lastSectorZeroed
    }

    @Test("a torn tail is cut off on opening and every entry before it is kept", arguments: Tear.allCases)
    func tornTail(tear: Tear) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (path, sizes) = try Self.writeThreeRecords(directory)
        var bytes = try directory.bytes(path)
        var random = SeededRandomGenerator(seed: 5)
        let (keptIndex, cut): (UInt64, Int) = switch tear {
        case .cutShort:
            (6, (sizes[2] - sizes[1]) / 2)
        case .garbageAppended:
            (9, 100)
        case .zerosAppended:
            (9, 4_096)
        case .lastSectorZeroed:
            (6, sizes[2] - sizes[1])
        }
        switch tear {
        case .cutShort: bytes.removeLast(bytes.count - sizes[1] - cut)
        case .garbageAppended: bytes += (0..<cut).map { _ in UInt8.random(in: 0...255, using: &random) }
        case .zerosAppended: bytes += [UInt8](repeating: 0, count: cut)
        case .lastSectorZeroed:
            let sectorStart = max(sizes[1], (sizes[2] - 1) / 512 * 512)
            for offset in sectorStart..<sizes[2] { bytes[offset] = 0 }
        }
        try directory.write(bytes, to: path)
        let storage = try FileRaftStorage(directory: directory.path, opening: .existing)
        #expect(storage.truncatedBytes == cut)
        #expect(Self.allEntries(storage) == Self.entries(1...keptIndex, term: 1))
        #expect(try directory.bytes(path).count == sizes[keptIndex == 9 ? 2 : 1])
        try storage.persist(Self.entries((keptIndex + 1)...(keptIndex + 1), term: 1), hardState: nil)
        storage.close()
        let reopened = try FileRaftStorage(directory: directory.path, opening: .existing)
        #expect(reopened.truncatedBytes == 0)
        #expect(Self.allEntries(reopened) == Self.entries(1...(keptIndex + 1), term: 1))
    }

    /// A failing checksum before valid records is damage; so is one of the
    /// last record, whole and with no sector of zeros (etcd's rule for a
    /// torn entry: a write cut short ends the file inside the record or
    /// leaves a sector of zeros in it): that record was written, perhaps
    /// synced and acknowledged (a vote), and damaged since.
    @Test("a whole record failing its checksum, before valid records or last with no sector of zeros, is a corrupt error naming the file and offset; nothing is cut",
          arguments: [1, 2])
    func damagedRecord(record: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (path, sizes) = try Self.writeThreeRecords(directory)
        try directory.flipByte(path, at: sizes[record] - 1)  // the record's last byte
        let before = try directory.bytes(path)
        let error = #expect(throws: RaftStorageError.self) {
            try FileRaftStorage(directory: directory.path, opening: .existing)
        }
        #expect(error?.code == .corrupt)
        #expect(error?.file == path)
        #expect(error?.offset == sizes[record - 1])
        #expect(error?.description.contains(path) == true)
        #expect(try directory.bytes(path) == before, "recovery must not cut a record that may be acknowledged")
    }

    /// A segment's first record is synced before the segment is named, so
    /// none ends at its header but a damaged one; accepted, it left the
    /// hard state an earlier segment's (here: none, so no vote), and the
    /// replica could vote a second time in a term.
    @Test("a last segment cut right after its header is a corrupt error, not a log without its vote")
    func segmentCutAfterHeader() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new)
            try storage.persist([], hardState: RaftHardState(term: 5, votedFor: NodeID(2)))
        }
        let segments = try directory.segments()
        #expect(segments.count == 1)
        let bytes = try directory.bytes(segments[0])
        try directory.write(Array(bytes.prefix(WALSegment.Header.size)), to: segments[0])
        let error = #expect(throws: RaftStorageError.self) {
            try FileRaftStorage(directory: directory.path, opening: .existing)
        }
        #expect(error?.code == .corrupt && error?.file == segments[0] && error?.offset == WALSegment.Header.size)
    }

    @Test("a damaged record in a segment that is not the last is a corrupt error")
    func damageInEarlierSegment() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let options = FileRaftStorage.Options(segmentSize: 1)
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new, options: options)
            for index in UInt64(1)...4 {
                try storage.persist(Self.entries(index...index, term: 1), hardState: RaftHardState(term: 1))
            }
        }
        let segments = try directory.segments()
        #expect(segments.count == 4)
        var bytes = try directory.bytes(segments[1])
        bytes.removeLast()
        try directory.write(bytes, to: segments[1])
        let error = #expect(throws: RaftStorageError.self) {
            try FileRaftStorage(directory: directory.path, opening: .existing, options: options)
        }
        #expect(error?.code == .corrupt && error?.file == segments[1] && error?.offset == WALSegment.Header.size)
    }

    @Test("an unknown format version of a segment or a snapshot is a typed error naming the file",
          arguments: ["segment", "snapshot"])
    func unknownVersion(file kind: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new)
            try storage.persist(Self.entries(1...3, term: 1), hardState: RaftHardState(term: 1))
            try storage.saveSnapshot(RaftSnapshot(index: 2, term: 1, data: [1, 2, 3]))
        }
        let path = kind == "segment" ? try directory.segments()[0]
            : directory.path + "/" + (try directory.names(endingWith: ".snap"))[0]
        var bytes = try directory.bytes(path)
        bytes[8] = 9
        try directory.write(bytes, to: path)
        let error = #expect(throws: RaftStorageError.self) {
            try FileRaftStorage(directory: directory.path, opening: .existing)
        }
        #expect(error?.code == .unsupportedVersion(9) && error?.file == path && error?.offset == 8)
    }

    @Test("a torn last record holding a command that is itself a well-formed record is cut off, not refused")
    func tornRecordHoldingRecord() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (path, _) = try Self.writeThreeRecords(directory)
        // A client's command: a whole record, checksummed as records were
        // before segments had a salt (and as anyone could compute).
        var crafted = try #require(WALRecord(entries: Self.entries(10...10, term: 1), hardState: nil).framed(salt: 0))
        let unsalted = crafted.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[8...])) }
        withUnsafeBytes(of: unsalted.littleEndian) { crafted.replaceSubrange(4..<8, with: $0) }
        let command = crafted + [UInt8](repeating: 0, count: 16)
        // The crash tears the record just past the crafted one: that one is
        // whole and after the bad record's start.
        let torn = try Self.reopenAfterTearing(command, path: path, in: directory)
        #expect(Self.allEntries(torn.storage) == Self.entries(1...9, term: 1))
        #expect(torn.storage.truncatedBytes > command.count)
    }

    /// Appends entry 10 holding `command` to the log of
    /// ``writeThreeRecords(_:)`` at `path`, tears the last 8 bytes of its
    /// record as a crash would, and reopens the store.
    static func reopenAfterTearing(
        _ command: [UInt8], path: String, in directory: TemporaryDirectory
    ) throws -> (storage: FileRaftStorage, tornRecordBytes: Int) {
        let sizeBefore = try directory.bytes(path).count
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .existing)
            try storage.persist([RaftEntry(term: 1, index: 10, command: command)], hardState: nil)
        }
        var bytes = try directory.bytes(path)
        bytes.removeLast(8)
        try directory.write(bytes, to: path)
        return (try FileRaftStorage(directory: directory.path, opening: .existing), bytes.count - sizeBefore)
    }

    /// Without ``CRC32CRanges`` the search for a whole record after the
    /// torn one checksummed each candidate byte by byte: about a terabyte
    /// of CRC here, every aligned offset of the command claiming a 2 MiB
    /// record.
    @Test("a torn 4 MiB record whose bytes read as record lengths at every offset is cut off in one pass",
          .timeLimit(.minutes(2)))
    func tornRecordOfPlausibleLengths() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (path, _) = try Self.writeThreeRecords(directory)
        var command = [UInt8](repeating: 0, count: 4 << 20)
        for offset in stride(from: 0, to: command.count, by: 4) { command[offset + 2] = 0x20 }  // 0x0020_0000
        let torn = try Self.reopenAfterTearing(command, path: path, in: directory)
        #expect(Self.allEntries(torn.storage) == Self.entries(1...9, term: 1))
        #expect(torn.storage.truncatedBytes == torn.tornRecordBytes)
    }

    @Test("segments roll; compaction after a snapshot removes old ones; reopening gives the same log and hard state")
    func rollAndCompact() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let options = FileRaftStorage.Options(segmentSize: 256)
        let storage = try FileRaftStorage(directory: directory.path, opening: .new, options: options)
        // The hard state is written once, in the first segment: every new
        // segment carries it, so it outlives that segment.
        let hardState = RaftHardState(term: 1, votedFor: NodeID(3), commitIndex: 0)
        for start in stride(from: UInt64(1), through: 96, by: 5) {
            try storage.persist(Self.entries(start...(start + 4), term: 1), hardState: start == 1 ? hardState : nil)
        }
        let before = try directory.segments().count
        #expect(before > 5)
        try storage.saveSnapshot(RaftSnapshot(index: 60, term: 1, data: [60]))
        try storage.compact(through: 80)  // limited to the snapshot's 60
        let after = try directory.segments()
        #expect(after.count < before)
        #expect(storage.firstIndex > 1 && storage.firstIndex <= 61)
        #expect(after[0].hasSuffix("-\(String(format: "%020llu", storage.firstIndex)).log"))
        #expect(storage.term(at: storage.firstIndex - 1) == 1)
        storage.close()
        let reopened = try FileRaftStorage(directory: directory.path, opening: .existing, options: options)
        #expect(reopened.firstIndex == storage.firstIndex && reopened.lastIndex == 100)
        #expect(reopened.hardState == hardState)
        #expect(reopened.term(at: reopened.firstIndex - 1) == 1)
        #expect(Self.allEntries(reopened) == Self.allEntries(storage))
        #expect(Self.allEntries(reopened) == Self.entries(reopened.firstIndex...100, term: 1))
    }

    @Test("a snapshot the log does not hold discards it for good")
    func snapshotDiscardsLog() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let options = FileRaftStorage.Options(segmentSize: 128)
        let hardState = RaftHardState(term: 4, votedFor: NodeID(2), commitIndex: 20)
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new, options: options)
            for index in UInt64(1)...10 {
                try storage.persist(Self.entries(index...index, term: 1), hardState: nil)
            }
            try storage.persist([], hardState: hardState)
            try storage.saveSnapshot(RaftSnapshot(index: 20, term: 3, data: [20]))
            #expect(storage.firstIndex == 21 && storage.lastIndex == 20)
        }
        #expect(try directory.segments().count == 1)
        let reopened = try FileRaftStorage(directory: directory.path, opening: .existing, options: options)
        #expect(reopened.firstIndex == 21 && reopened.lastIndex == 20 && reopened.term(at: 20) == 3)
        #expect(reopened.hardState == hardState)
        try reopened.persist(Self.entries(21...22, term: 4), hardState: nil)
        reopened.close()
        #expect(Self.allEntries(try FileRaftStorage(directory: directory.path, opening: .existing, options: options))
            == Self.entries(21...22, term: 4))
    }

    @Test("a snapshot saved just before a crash, the log not yet restarted: opening finishes the job")
    func interruptedSnapshot() throws {
        let directory = try TemporaryDirectory()
        let elsewhere = try TemporaryDirectory()
        defer {
            directory.remove()
            elsewhere.remove()
        }
        let hardState = RaftHardState(term: 3, votedFor: NodeID(1), commitIndex: 4)
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new)
            try storage.persist(Self.entries(1...5, term: 1), hardState: hardState)
            try FileRaftStorage(directory: elsewhere.path, opening: .new)
                .saveSnapshot(RaftSnapshot(index: 30, term: 3, data: [3]))
        }
        let name = try elsewhere.names(endingWith: ".snap")[0]
        try directory.write(try elsewhere.bytes(elsewhere.path + "/" + name), to: directory.path + "/" + name)
        let storage = try FileRaftStorage(directory: directory.path, opening: .existing)
        #expect(storage.snapshot?.index == 30)
        #expect(storage.firstIndex == 31 && storage.lastIndex == 30 && storage.term(at: 30) == 3)
        #expect(storage.hardState == hardState)
        storage.close()
        let reopened = try FileRaftStorage(directory: directory.path, opening: .existing)
        #expect(reopened.firstIndex == 31 && reopened.lastIndex == 30 && reopened.hardState == hardState)
    }

    @Test("leftover temporary files are removed and change nothing")
    func leftoverTemporaryFiles() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let snapshot = RaftSnapshot(index: 2, term: 1, data: [2])
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new)
            try storage.persist(Self.entries(1...3, term: 1), hardState: RaftHardState(term: 1))
            try storage.saveSnapshot(snapshot)
        }
        let leftovers = ["snapshot-00000000000000000009-00000000000000000001.snap.tmp",
                         "wal-00000000000000000009-00000000000000000004.log.tmp"]
        for name in leftovers { try directory.write(Array("half written".utf8), to: directory.path + "/" + name) }
        let storage = try FileRaftStorage(directory: directory.path, opening: .existing)
        #expect(storage.snapshot == snapshot)
        #expect(Self.allEntries(storage) == Self.entries(1...3, term: 1))
        #expect(try directory.names(endingWith: ".tmp").isEmpty)
    }

    @Test("a missing segment between others is a typed error naming the one after the gap")
    func missingSegment() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let options = FileRaftStorage.Options(segmentSize: 1)
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new, options: options)
            for index in UInt64(1)...3 {
                try storage.persist(Self.entries(index...index, term: 1), hardState: nil)
            }
        }
        let segments = try directory.segments()
        try FileManager.default.removeItem(atPath: segments[1])
        let error = #expect(throws: RaftStorageError.self) {
            try FileRaftStorage(directory: directory.path, opening: .existing, options: options)
        }
        #expect(error?.code == .missingSegment && error?.file == segments[2])
    }

    @Test("persist refuses entries that do not continue the log, and changes nothing")
    func invalidAppends() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let storage = try FileRaftStorage(directory: directory.path, opening: .new)
        try storage.persist(Self.entries(1...3, term: 1), hardState: nil)
        for entries in [Self.entries(5...6, term: 1), [RaftEntry(term: 1, index: 2), RaftEntry(term: 1, index: 4)],
                        [RaftEntry(term: 1, index: 0)]] {
            let error = #expect(throws: RaftStorageError.self) { try storage.persist(entries, hardState: nil) }
            #expect(error?.code == .invalidArgument)
        }
        storage.close()
        #expect(Self.allEntries(try FileRaftStorage(directory: directory.path, opening: .existing))
                == Self.entries(1...3, term: 1))
    }

    @Test("damaged or random files never trap: opening succeeds with a usable log or throws RaftStorageError",
          arguments: 1...100 as ClosedRange<UInt64>)
    func damagedFiles(seed: UInt64) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Syncing adds nothing to what this test checks.
        let options = FileRaftStorage.Options(segmentSize: 200, sync: false)
        var random = SeededRandomGenerator(seed: seed)
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new, options: options)
            for start in stride(from: UInt64(1), through: 28, by: 3) {
                try storage.persist(Self.entries(start...(start + 2), term: 1 + start / 10),
                                    hardState: RaftHardState(term: 1 + start / 10, commitIndex: start))
            }
            try storage.saveSnapshot(RaftSnapshot(index: 9, term: 1, data: Array(repeating: 9, count: 50)))
        }
        let files = try directory.names(endingWith: "").map { directory.path + "/" + $0 }
        let file = files[Int.random(in: 0..<files.count, using: &random)]
        var bytes = try directory.bytes(file)
        let mutation = Int.random(in: 0..<5, using: &random)
        switch mutation {
        case 0:
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
        case 1:
            bytes.removeLast(Int.random(in: 1...bytes.count, using: &random))
        case 2:
            bytes += (0..<Int.random(in: 1...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case 3:
            bytes = (0..<Int.random(in: 0...400, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        default:
            let at = Int.random(in: 0...bytes.count, using: &random)
            bytes.insert(contentsOf: (0..<Int.random(in: 1...16, using: &random)).map { _ in
                UInt8.random(in: 0...255, using: &random)
            }, at: at)
        }
        try directory.write(bytes, to: file)
        let storage: FileRaftStorage
        do throws(RaftStorageError) {
            storage = try FileRaftStorage(directory: directory.path, opening: .existing, options: options)
        } catch {
            #expect(error.file.hasPrefix(directory.path), "seed \(seed), mutation \(mutation) of \(file): \(error)")
            return
        }
        let entries = Self.allEntries(storage)
        #expect(storage.term(at: storage.firstIndex - 1) != nil, "seed \(seed), mutation \(mutation) of \(file)")
        #expect(entries.map(\.index) == Array(storage.firstIndex..<(storage.lastIndex + 1)),
                "seed \(seed), mutation \(mutation) of \(file)")
        let next = RaftEntry(term: storage.hardState.term, index: storage.lastIndex + 1, command: [1])
        try storage.persist([next], hardState: nil)
        storage.close()
        let reopened = try FileRaftStorage(directory: directory.path, opening: .existing, options: options)
        #expect(Self.allEntries(reopened) == entries + [next], "seed \(seed), mutation \(mutation) of \(file)")
    }
}
