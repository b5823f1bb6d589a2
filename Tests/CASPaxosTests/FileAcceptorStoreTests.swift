@testable import CASPaxos
import Foundation
import Simulation
import EventCore
import TestSupport
import Testing
import WireCodec

#if canImport(Glibc)
import Glibc
#endif

/// The durable store: recovery of synced writes, torn tails, compaction.
@Suite("FileAcceptorStore")
struct FileAcceptorStoreTests {
    static func register(_ counter: UInt64, _ value: [UInt8]?) -> RegisterState {
        let ballot = Ballot(counter: counter, proposer: NodeID(1))
        return RegisterState(promised: ballot, accepted: ballot, value: value)
    }

    /// A majority configuration of `version` over four acceptors.
    static func configuration(version: UInt64) -> AcceptorQuorums {
        .majority(of: (1...4).map { Endpoint.loopbackV4(port: UInt16(7_000 + $0)) }, version: version)
    }

    @Test("synced writes survive reopening; unsynced ones do not")
    func recovery() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        let path = directory + "/log"
        do {
            let store = try FileAcceptorStore(path: path, opening: .new)
            _ = try store.load()
            store.apply(.register(key: [1], state: Self.register(1, [10])))
            store.apply(.minimumAge(proposer: NodeID(7), age: 3))
            store.apply(.minimumAge(proposer: NodeID(8), age: 1))
            store.apply(.forgetMinimumAge(proposer: NodeID(8)))
            store.apply(.removalFloor(Ballot(counter: 40, proposer: NodeID(2))))
            store.apply(.proposerConfiguration(Self.configuration(version: 3)))
            store.apply(.proposerConfiguration(Self.configuration(version: 2)))
            try store.sync()
            store.apply(.register(key: [2], state: Self.register(2, [20])))
            store.apply(.removalFloor(Ballot(counter: 50, proposer: NodeID(2))))
            store.apply(.proposerConfiguration(Self.configuration(version: 4)))
        }
        let reopened = try FileAcceptorStore(path: path, opening: .existing)
        let snapshot = try reopened.load()
        #expect(snapshot.registers == [[1]: Self.register(1, [10])])
        #expect(snapshot.minimumAges == [NodeID(7): 3])
        #expect(snapshot.removalFloor == Ballot(counter: 40, proposer: NodeID(2)))
        #expect(snapshot.proposerConfiguration == Self.configuration(version: 3), "the highest version synced")
    }

    /// Replayed with the reader's default limits (4 MiB), a value the
    /// acceptor had accepted, synced and acknowledged made its log
    /// unreadable (`.corrupt`) at the next start.
    @Test("a value of the largest size the configuration allows survives reopening")
    func largestValueReloads() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        var configuration = CASPaxosConfiguration()
        configuration.maximumValueSize = (16 << 20) - configuration.maximumKeySize - 128
        configuration.maximumMessageSize = 16 << 20
        try configuration.validate()
        let value = (0..<configuration.maximumValueSize).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        do {
            let store = try FileAcceptorStore(path: path, opening: .new)
            _ = try store.load()
            store.apply(.register(key: [1], state: Self.register(1, value)))
            try store.sync()
        }
        let reopened = try FileAcceptorStore(path: path, opening: .existing)
        #expect(try reopened.load().register([1])?.value == value)
    }

    /// The documented 16 MiB value (with a key and overhead past the
    /// message limit) made the message-size range invert, which trapped.
    @Test("a value limit that leaves no message size is refused, not a trap")
    func valueLimitWithoutRoomRefused() {
        var configuration = CASPaxosConfiguration()
        configuration.maximumValueSize = 16 << 20
        let error = #expect(throws: ConfigurationError.self) { try configuration.validate() }
        #expect(error?.field == "maximumValueSize")
    }

    /// Replayed, a minimum age or a fence above what the network decodes
    /// went out in refusals every peer dropped (with the frame they came
    /// in); a record holding one is damage, refused at the start.
    @Test("a record with an age or a version above what the network decodes is corrupt")
    func absurdStoredNumbersRefused() throws {
        for write in [AcceptorWrite.minimumAge(proposer: NodeID(7), age: UInt64.max),
                      .minimumVersion(ConfigurationVersion(UInt64.max, digest: 0))] {
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let path = temporary.path + "/log"
            do {
                let store = try FileAcceptorStore(path: path, opening: .new)
                _ = try store.load()
                store.apply(write)
                try store.sync()
            }
            let error = #expect(throws: AcceptorStoreError.self, "\(write)") {
                _ = try FileAcceptorStore(path: path, opening: .existing).load()
            }
            #expect(error?.code == .corrupt)
        }
    }

    @Test("a torn tail is truncated and the records before it kept")
    func tornTail() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        let path = directory + "/log"
        do {
            let store = try FileAcceptorStore(path: path, opening: .new)
            _ = try store.load()
            store.apply(.register(key: [1], state: Self.register(1, [10])))
            try store.sync()
            store.apply(.register(key: [2], state: Self.register(2, [20, 21, 22])))
            try store.sync()
        }
        let size = try FileAcceptorStore(path: path, opening: .existing).fileSize
        #expect(size == 0)  // not loaded yet
        let descriptor = open(path, O_RDWR)
        var status = stat()
        fstat(descriptor, &status)
        ftruncate(descriptor, status.st_size - 2)
        close(descriptor)
        let store = try FileAcceptorStore(path: path, opening: .existing)
        let snapshot = try store.load()
        #expect(snapshot.registers == [[1]: Self.register(1, [10])])
        #expect(store.truncatedBytes > 0)
        store.apply(.register(key: [3], state: Self.register(3, nil)))
        try store.sync()
        #expect(try Self.loadCopy(path).registers.count == 2)
    }

    /// Three synced batches of one register each; returns the file's size
    /// after each batch.
    /// What a restart would load from the log at `path`, read from a copy
    /// of it: the store writing the log holds its lock.
    static func loadCopy(_ path: String) throws -> AcceptorSnapshot {
        let copy = path + ".copy"
        try Data(contentsOf: URL(fileURLWithPath: path)).write(to: URL(fileURLWithPath: copy))
        defer { try? FileManager.default.removeItem(atPath: copy) }
        return try FileAcceptorStore(path: copy, opening: .existing).load()
    }

    static func writeThreeBatches(_ path: String) throws -> [Int] {
        let store = try FileAcceptorStore(path: path, opening: .new)
        _ = try store.load()
        var sizes: [Int] = []
        for counter in UInt64(1)...3 {
            store.apply(.register(key: [UInt8(counter)], state: register(counter, [UInt8(counter), 7])))
            try store.sync()
            sizes.append(store.fileSize)
        }
        return sizes
    }

    /// Overwrites one byte of the file at `offset` with its complement.
    static func flipByte(_ path: String, at offset: Int) {
        let descriptor = open(path, O_RDWR)
        defer { close(descriptor) }
        var byte: UInt8 = 0
        _ = pread(descriptor, &byte, 1, off_t(offset))
        byte = ~byte
        _ = pwrite(descriptor, &byte, 1, off_t(offset))
    }

    static func fileBytes(_ path: String) -> Int {
        var status = stat()
        stat(path, &status)
        return Int(status.st_size)
    }

    @Test("damage before the tail is a typed corrupt error naming the offset, and nothing is dropped")
    func midFileDamage() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        let path = directory + "/log"
        let sizes = try Self.writeThreeBatches(path)
        // The last byte of the first batch's payload: its checksum fails
        // and two whole batches follow.
        Self.flipByte(path, at: sizes[0] - 1)
        let before = Self.fileBytes(path)
        #expect {
            try FileAcceptorStore(path: path, opening: .existing).load()
        } throws: { error in
            guard let error = error as? AcceptorStoreError else { return false }
            return error.code == .corrupt && error.detail.contains("offset \(FileAcceptorStore.headerSize) ")
        }
        #expect(Self.fileBytes(path) == before, "recovery must not truncate acknowledged records")
    }

    @Test("a bad batch whose header says more bytes follow it is corrupt, even with garbage after it")
    func damageBeforeGarbage() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        let path = directory + "/log"
        let sizes = try Self.writeThreeBatches(path)
        // Damage the second batch's payload and the third batch's marker:
        // no valid batch follows the second, but its header says the file
        // goes on past it, which a torn tail never does.
        Self.flipByte(path, at: sizes[1] - 1)
        Self.flipByte(path, at: sizes[1])
        #expect {
            try FileAcceptorStore(path: path, opening: .existing).load()
        } throws: { error in
            guard let error = error as? AcceptorStoreError else { return false }
            return error.code == .corrupt && error.detail.contains("offset \(sizes[0]) ")
        }
    }

    @Test("a torn last batch (a sector of it left zeros, or zeros past the end) is truncated and the rest kept")
    func tornLastBatch() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        let path = directory + "/log"
        let sizes = try Self.writeThreeBatches(path)
        // The piece of the last batch in its last disk sector never reached
        // the disk.
        let descriptor = open(path, O_RDWR)
        let sectorStart = max(sizes[1], (sizes[2] - 1) / 512 * 512)
        let zeros = [UInt8](repeating: 0, count: sizes[2] - sectorStart)
        #expect(pwrite(descriptor, zeros, zeros.count, off_t(sectorStart)) == zeros.count)
        close(descriptor)
        let store = try FileAcceptorStore(path: path, opening: .existing)
        let snapshot = try store.load()
        #expect(snapshot.registers.keys.sorted { $0.lexicographicallyPrecedes($1) } == [[1], [2]])
        #expect(store.truncatedBytes == sizes[2] - sizes[1])
        store.close()
        // A crash can also leave the file extended with zeros.
        let extended = open(path, O_RDWR)
        ftruncate(extended, off_t(sizes[1] + 100))
        close(extended)
        let again = try FileAcceptorStore(path: path, opening: .existing)
        #expect(try again.load().registers.count == 2)
        #expect(again.truncatedBytes == 100)
    }

    /// The tail a crash cut short was never acknowledged, but an operator
    /// should hear that bytes went (found by an embedder's walk-through:
    /// only ``FileAcceptorStore/truncatedBytes`` said so).
    @Test("a node that loads a log with a torn tail logs the bytes dropped as a warning")
    func tornTailWarning() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let sizes = try Self.writeThreeBatches(path)
        let extended = open(path, O_RDWR)
        ftruncate(extended, off_t(sizes[2] + 100))
        close(extended)
        let warnings = RecordedLogLines(level: .warning)
        let network = SimulatedNetwork(seed: 16)
        let node = network.addNode()
        let casPaxos = try CASPaxosNode(
            transport: node, scheduler: node, quorums: .majority(of: [node.localEndpoint]),
            acceptorStore: try FileAcceptorStore(path: path, opening: .existing), logger: warnings)
        #expect(casPaxos.acceptor != nil)
        #expect(warnings.all == ["\(path): dropped a torn tail of 100 bytes (a write a crash cut short, never synced)"])
    }

    /// Bytes after the last batch that are no batch at all (no torn
    /// write's mark) are refused as damage, and said to be so, not as a
    /// batch that was whole (found by the walk-through).
    @Test("bytes appended after the last batch are refused as damage, named as bytes")
    func garbageAfterLastBatch() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let sizes = try Self.writeThreeBatches(path)
        var generator = SeededRandomGenerator(seed: 3)
        let garbage = (0..<300).map { _ in UInt8.random(in: 1...255, using: &generator) }
        let descriptor = open(path, O_RDWR)
        #expect(pwrite(descriptor, garbage, garbage.count, off_t(sizes[2])) == garbage.count)
        close(descriptor)
        let error = #expect(throws: AcceptorStoreError.self) { _ = try FileAcceptorStore(path: path, opening: .existing).load() }
        #expect(error?.code == .corrupt)
        #expect(error?.detail.contains("the last 300 bytes, from offset \(sizes[2]),") == true)
    }

    /// A batch whose header straddles a 512-byte boundary, torn so that
    /// the sector after the boundary never reached the disk: its length
    /// reads 0, so it claims to end early with bytes after it. Those
    /// zeros are a torn write's mark, not damage (found by review).
    @Test("a last batch whose header lost a sector of zeros is a torn tail, though it claims to end early")
    func tornHeader() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        // The first batch's value sized so that the second batch starts 4
        // bytes before the boundary at 512.
        var first = 0
        for length in 0..<512 {
            try? FileManager.default.removeItem(atPath: path)
            let store = try FileAcceptorStore(path: path, opening: .new)
            _ = try store.load()
            store.apply(.register(key: [1], state: Self.register(1, [UInt8](repeating: 1, count: length))))
            try store.sync()
            if store.fileSize == 508 {
                first = length
                break
            }
        }
        try #require(first > 0, "no value length puts the second batch at 508")
        let store = try FileAcceptorStore(path: path, opening: .existing)
        _ = try store.load()
        store.apply(.register(key: [2], state: Self.register(2, [UInt8](repeating: 2, count: 2_000))))
        try store.sync()
        let size = store.fileSize
        store.close()
        let descriptor = open(path, O_RDWR)
        let zeros = [UInt8](repeating: 0, count: 8)
        #expect(pwrite(descriptor, zeros, zeros.count, 512) == zeros.count)
        close(descriptor)
        let reopened = try FileAcceptorStore(path: path, opening: .existing)
        let snapshot = try reopened.load()
        #expect(snapshot.registers.keys.map { $0 } == [[1]])
        #expect(reopened.truncatedBytes == size - 508)
    }

    /// A whole last batch failing its checksum with no sector of zeros was
    /// written, perhaps synced and answered from, and damaged since: its
    /// promises may be what keeps a register linearizable.
    @Test("a whole last batch failing its checksum, with no sector of zeros, is corrupt; nothing is cut")
    func damagedLastBatch() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let sizes = try Self.writeThreeBatches(path)
        Self.flipByte(path, at: sizes[2] - 1)
        let before = try DurableFile(path: path).readAll()
        let store = try FileAcceptorStore(path: path, opening: .existing)
        #expect {
            try store.load()
        } throws: { error in
            (error as? AcceptorStoreError)?.code == .corrupt
                && "\(error)".contains("offset \(sizes[1])")
        }
        #expect(try DurableFile(path: path).readAll() == before)
    }

    @Test("rewrites of the same keys are compacted and the state kept")
    func compaction() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path
        let path = directory + "/log"
        let store = try FileAcceptorStore(path: path, opening: .new, compactionThreshold: 2_048)
        _ = try store.load()
        // Before the rewrites: only the compactions can carry it over.
        store.apply(.proposerConfiguration(Self.configuration(version: 5)))
        for counter in UInt64(1)...500 {
            store.apply(.register(key: [UInt8(counter % 4)], state: Self.register(counter, [UInt8(counter % 256)])))
            try store.sync()
        }
        store.apply(.remove(key: [0], floor: Ballot(counter: 600, proposer: NodeID(1))))
        try store.sync()
        #expect(store.compactionCount > 0)
        #expect(store.fileSize < 4_096)
        let snapshot = try Self.loadCopy(path)
        #expect(snapshot.registers.count == 3)
        #expect(snapshot.registers[[1]] == Self.register(497, [UInt8(497 % 256)]))
        #expect(snapshot.removalFloor == Ballot(counter: 600, proposer: NodeID(1)))
        #expect(snapshot.proposerConfiguration == Self.configuration(version: 5))
    }

    /// Keys removed by garbage collection left the log its size until it
    /// doubled again, and a restart counts the doubling from the size it
    /// loaded (an embedder's walk-through): `compact()` rewrites it now.
    @Test("compact() rewrites the log to its live state at once, with the records buffered, and the state loads back")
    func compactOnDemand() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let store = try FileAcceptorStore(path: path, opening: .new)
        _ = try store.load()
        let value = [UInt8](repeating: 7, count: 1_000)
        for counter in UInt64(1)...300 {
            store.apply(.register(key: Array("key-\(counter)".utf8), state: Self.register(counter, value)))
        }
        try store.sync()
        for counter in UInt64(1)...299 {
            store.apply(.remove(key: Array("key-\(counter)".utf8), floor: Ballot(counter: counter, proposer: NodeID(1))))
        }
        try store.sync()
        let before = store.fileSize
        #expect(store.compactionCount == 0 && before > 300_000)
        // Buffered, not yet synced: the rewrite carries it.
        store.apply(.register(key: [1], state: Self.register(400, [1])))
        try store.compact()
        #expect(store.compactionCount == 1)
        #expect(store.fileSize < 2_000, "\(store.fileSize) bytes")
        store.close()
        let snapshot = try Self.loadCopy(path)
        #expect(snapshot.registers.count == 2)
        #expect(snapshot.registers[Array("key-300".utf8)] == Self.register(300, value))
        #expect(snapshot.registers[[1]] == Self.register(400, [1]))
        #expect(snapshot.removalFloor == Ballot(counter: 299, proposer: NodeID(1)))
    }

    @Test("a log whose creation a crash cut short is created again by a first start, and missing to a restart")
    func unstartedLog() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let unstarted: [[UInt8]] = [
            [], [UInt8](repeating: 0, count: 20), Array("CASP".utf8), [0, 0, 0],
            Array("CASPXLOG".utf8) + [2, 0, 0, 0, 9, 9],
        ]
        for (index, contents) in unstarted.enumerated() {
            let path = temporary.path + "/log-\(index)"
            try DurableFile(path: path).append(contents)
            #expect {
                try FileAcceptorStore(path: path, opening: .existing).load()
            } throws: { error in
                (error as? AcceptorStoreError)?.code == .missingLog
            }
            let store = try FileAcceptorStore(path: path, opening: .new)
            #expect(try store.load().registers.isEmpty)
            store.apply(.register(key: [1], state: Self.register(1, [10])))
            try store.sync()
            #expect(try Self.loadCopy(path).registers == [[1]: Self.register(1, [10])])
        }
    }

    @Test("a short file that is no log is refused by a first start and by a restart, and left as it was")
    func shortForeignFile() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let foreign = [
            Array("CASPXLOX".utf8), Array("CASPXLOG".utf8) + [2, 0, 0, 1, 9], [UInt8](repeating: 0x41, count: 20),
        ]
        for (index, contents) in foreign.enumerated() {
            let path = temporary.path + "/log-\(index)"
            try DurableFile(path: path).append(contents)
            #expect {
                try FileAcceptorStore(path: path, opening: .existing).load()
            } throws: { error in
                (error as? AcceptorStoreError)?.code == .corrupt
            }
            #expect {
                try FileAcceptorStore(path: path, opening: .new).load()
            } throws: { error in
                (error as? AcceptorStoreError)?.code == .existingLog
            }
            #expect(try DurableFile(path: path).readAll() == contents)
        }
    }

    @Test("a restart that finds no file is a missingLog error naming the path, and creates nothing")
    func missingLog() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        #expect {
            try FileAcceptorStore(path: path, opening: .existing)
        } throws: { error in
            guard let error = error as? AcceptorStoreError else { return false }
            return error.code == .missingLog && error.detail.contains(path) && error.detail.contains("membership change")
        }
        #expect(access(path, F_OK) != 0, "a restart must not create the log")
    }

    /// A new store under a missing directory failed with ENOENT, while a
    /// new FileRaftStorage creates its missing directories.
    @Test("a new store creates the log's missing directories, and syncs their parents; a restart creates none; an existing directory's parent is synced too")
    func newStoreCreatesDirectories() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/a/b/acceptor.log"
        #expect(throws: AcceptorStoreError.self) { try FileAcceptorStore(path: path, opening: .existing) }
        #expect(access(temporary.path + "/a", F_OK) != 0, "a restart must not create a directory")
        do {
            let store = try FileAcceptorStore(path: path, opening: .new)
            #expect(store.syncCount == 2, "the parents of a and of a/b (a/b's own parent among them)")
            _ = try store.load()
            store.apply(.register(key: [1], state: Self.register(1, [10])))
            try store.sync()
            store.close()
        }
        var status = stat()
        #expect(stat(temporary.path + "/a/b", &status) == 0 && status.st_mode & S_IFMT == S_IFDIR)
        #expect(try FileAcceptorStore(path: path, opening: .existing).load().registers == [[1]: Self.register(1, [10])])
        // The directory already there: nothing to create; its parent is
        // synced (someone may have made it just before, unsynced).
        let sibling = try FileAcceptorStore(path: temporary.path + "/a/b/proposer.log", opening: .new)
        #expect(sibling.syncCount == 1)
    }

    @Test("a path that is a directory, or under a file, is an I/O error, not a missing log")
    func pathThatCannotHoldALog() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        try DurableFile(path: temporary.path + "/file").append([1])
        for path in [temporary.path, temporary.path + "/file/log"] {
            for opening in [FileAcceptorStore.Opening.new, .existing] {
                #expect {
                    try FileAcceptorStore(path: path, opening: opening)
                } throws: { error in
                    guard case .io = (error as? AcceptorStoreError)?.code else { return false }
                    return true
                }
            }
        }
    }

    @Test("a first start over a log is an existingLog error and leaves the log as it was")
    func firstStartOverALog() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        _ = try Self.writeThreeBatches(path)
        let log = try DurableFile(path: path).readAll()
        #expect {
            try FileAcceptorStore(path: path, opening: .new)
        } throws: { error in
            guard let error = error as? AcceptorStoreError else { return false }
            return error.code == .existingLog && error.detail.contains(path)
        }
        #expect(try DurableFile(path: path).readAll() == log)
        #expect(try FileAcceptorStore(path: path, opening: .existing).load().registers.count == 3)
    }

    /// Rewrites register [1] 20 times (counters 1 ... 20, 32-byte values),
    /// syncing each: enough for a store with a compaction threshold of 256
    /// bytes to compact its log.
    static func rewriteUntilCompacted(_ store: FileAcceptorStore) throws {
        for counter in UInt64(1)...20 {
            store.apply(.register(key: [1], state: Self.register(counter, [UInt8](repeating: 1, count: 32))))
            try store.sync()
        }
        #expect(store.compactionCount > 0)
    }

    @Test("a second store on a log in use is refused before it reads, after compactions too; a closed store writes nothing more and another opens")
    func oneStorePerLog() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let store = try FileAcceptorStore(path: path, opening: .new, compactionThreshold: 256)
        _ = try store.load()
        func expectLocked(_ comment: Comment) {
            for opening in [FileAcceptorStore.Opening.new, .existing] {
                let error = #expect(throws: AcceptorStoreError.self, comment) {
                    try FileAcceptorStore(path: path, opening: opening)
                }
                #expect(error?.code == .locked, comment)
            }
        }
        expectLocked("before a compaction")
        try Self.rewriteUntilCompacted(store)
        expectLocked("after compactions: the new file is locked before it takes the log's name")
        store.close()
        store.apply(.register(key: [2], state: Self.register(1, [2])))
        for (name, write) in [("sync", store.sync), ("load", { _ = try store.load() })] {
            let error = #expect(throws: AcceptorStoreError.self, "\(name)") { try write() }
            #expect(error?.code == .closed, "\(name)")
        }
        let reopened = try FileAcceptorStore(path: path, opening: .existing)
        let snapshot = try reopened.load()
        #expect(snapshot.registers == [[1]: Self.register(20, [UInt8](repeating: 1, count: 32))])
    }

    @Test("a log opened before a compaction replaced it gets no lock: the file locked must still be the log")
    func lockOnReplacedLog() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let store = try FileAcceptorStore(path: path, opening: .new, compactionThreshold: 256)
        _ = try store.load()
        // What a store opening the log gets, just before the compaction.
        let early = try DurableFile(path: path, creating: false)
        try Self.rewriteUntilCompacted(store)
        #expect(try early.lock() == false, "the replaced file's lock is free, but it is no longer the log")
        let error = #expect(throws: AcceptorStoreError.self) { try FileAcceptorStore(path: path, opening: .existing) }
        #expect(error?.code == .locked)
    }

    @Test("a new store loads again as the log it created")
    func newStoreLoadsAgain() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let store = try FileAcceptorStore(path: path, opening: .new)
        _ = try store.load()
        store.apply(.register(key: [1], state: Self.register(1, [10])))
        try store.sync()
        #expect(try store.load().registers == [[1]: Self.register(1, [10])])
    }

    @Test("a log created and never written to opens as new again, and as existing")
    func headerOnlyLog() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        // A first start that crashed before the acceptor wrote anything.
        _ = try FileAcceptorStore(path: path, opening: .new).load()
        #expect(Self.fileBytes(path) == FileAcceptorStore.headerSize)
        for opening in [FileAcceptorStore.Opening.new, .existing] {
            let store = try FileAcceptorStore(path: path, opening: opening)
            #expect(try store.load().registers.isEmpty)
        }
        let store = try FileAcceptorStore(path: path, opening: .new)
        _ = try store.load()
        store.apply(.register(key: [1], state: Self.register(1, [10])))
        try store.sync()
        // Loaded once, the store's log is there: it loads again.
        #expect(try store.load().registers.count == 1)
        store.close()
        #expect {
            try FileAcceptorStore(path: path, opening: .new).load()
        } throws: { error in
            (error as? AcceptorStoreError)?.code == .existingLog
        }
    }

    @Test("a log of another format version is refused as such, naming it; version 1 too")
    func otherFormatVersion() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        _ = try Self.writeThreeBatches(path)
        let log = try DurableFile(path: path).readAll()
        // Version 1 had neither version nor salt: its first batch's marker
        // came right after the magic.
        for (version, bytes) in [(253, Array(log[..<8]) + [0xFD] + log[9...]), (1, Array(log[..<8]) + log[20...])] {
            try DurableFile(path: path, truncating: true).append(bytes)
            #expect {
                try FileAcceptorStore(path: path, opening: .existing).load()
            } throws: { error in
                guard let error = error as? AcceptorStoreError else { return false }
                return error.code == .unsupportedVersion(UInt32(version)) && error.detail.contains("format version \(version);")
            }
        }
    }

    /// The format version in the header of the log at `path`.
    static func formatVersion(_ path: String) throws -> UInt8 {
        try DurableFile(path: path).readAll()[8]
    }

    @Test("a version-2 log stays in version 2, compactions too, until a configuration record, whose sync rewrites it in version 3; a fence then rewrites it in version 4, the fence's digest in version 5, and a value's parent in version 6")
    func olderVersionUpgrades() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        // Version 2 is version 6 without the configuration, fence and
        // parent records: a log with none, its header set to 2, is what
        // the older build wrote.
        _ = try Self.writeThreeBatches(path)
        #expect(try Self.formatVersion(path) == 6)
        var log = try DurableFile(path: path).readAll()
        log[8] = 2
        try DurableFile(path: path, truncating: true).append(log)

        let store = try FileAcceptorStore(path: path, opening: .existing, compactionThreshold: 512)
        let written = try store.load()
        for counter in UInt64(9)...40 {
            store.apply(.register(key: [9], state: Self.register(counter, [90])))
            try store.sync()
        }
        #expect(try Self.formatVersion(path) == 2, "no record needed version 3")
        let compactions = store.compactionCount
        #expect(compactions > 0)

        store.apply(.register(key: [8], state: Self.register(8, [80])))
        store.apply(.proposerConfiguration(Self.configuration(version: 2)))
        try store.sync()
        #expect(try Self.formatVersion(path) == 3)
        #expect(store.compactionCount == compactions + 1)
        store.apply(.register(key: [7], state: Self.register(7, [70])))
        try store.sync()
        #expect(try Self.formatVersion(path) == 3, "appended")
        #expect(store.compactionCount == compactions + 1)

        store.apply(.minimumVersion(6))
        try store.sync()
        #expect(try Self.formatVersion(path) == 4)
        #expect(store.compactionCount == compactions + 2)
        // A fence record with a digest rewrites the log rather than land in
        // version 4, even when the live state does not hold the digest (the
        // fence raised nothing, or a later one without a digest replaced
        // it): the rewrite holds the live state, in version 4.
        store.apply(.minimumVersion(ConfigurationVersion(4, digest: 0x123)))
        try store.sync()
        #expect(try Self.formatVersion(path) == 4 && store.compactionCount == compactions + 3)
        store.apply(.minimumVersion(ConfigurationVersion(6, digest: 0xAB)))
        store.apply(.minimumVersion(7))
        try store.sync()
        #expect(try Self.formatVersion(path) == 4 && store.compactionCount == compactions + 4)
        #expect(try Self.loadCopy(path).minimumVersion == 7)

        // The fence's digest (a version 4 cannot hold) rewrites it in
        // version 5; the first digest of a version stays.
        let digested = ConfigurationVersion(7, digest: 0xABC)
        store.apply(.minimumVersion(digested))
        try store.sync()
        #expect(try Self.formatVersion(path) == 5 && store.compactionCount == compactions + 5)
        store.apply(.minimumVersion(ConfigurationVersion(7, digest: 0xDEF)))
        try store.sync()

        // A register whose value names its parent rewrites it in version
        // 6, where it stays, though the register is replaced by one
        // without.
        var withParent = Self.register(41, [91])
        withParent.parent = Self.register(40, nil).accepted
        store.apply(.register(key: [9], state: withParent))
        try store.sync()
        #expect(try Self.formatVersion(path) == 6 && store.compactionCount == compactions + 6)
        #expect(try Self.loadCopy(path).registers[[9]]?.parent == withParent.parent)
        store.apply(.register(key: [9], state: Self.register(42, [92])))
        try store.sync()
        #expect(try Self.formatVersion(path) == 6 && store.compactionCount == compactions + 6)

        let snapshot = try Self.loadCopy(path)
        var expected = written.registers
        expected[[9]] = Self.register(42, [92])
        expected[[8]] = Self.register(8, [80])
        expected[[7]] = Self.register(7, [70])
        #expect(snapshot.registers == expected)
        #expect(snapshot.proposerConfiguration == Self.configuration(version: 2))
        #expect(snapshot.minimumVersion == digested, "a fence never goes down, nor changes its digest")
    }

    @Test("the fence survives a restart and compactions")
    func fenceSurvivesCompaction() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let store = try FileAcceptorStore(path: path, opening: .new, compactionThreshold: 512)
        _ = try store.load()
        store.apply(.minimumVersion(3))
        try store.sync()
        #expect(try Self.loadCopy(path).minimumVersion == 3)
        for counter in UInt64(1)...40 {
            store.apply(.register(key: [1], state: Self.register(counter, [UInt8](repeating: 1, count: 32))))
            try store.sync()
        }
        #expect(store.compactionCount > 0)
        let snapshot = try Self.loadCopy(path)
        #expect(snapshot.minimumVersion == 3)
        #expect(snapshot.register([1]) == Self.register(40, [UInt8](repeating: 1, count: 32)))
    }

    @Test("a torn last batch holding a value that is itself a well-formed batch is truncated, not refused")
    func tornBatchHoldingBatch() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        _ = try Self.writeThreeBatches(path)
        // A client's value: a whole batch, checksummed as a batch was before
        // logs had a salt (and as anyone could compute), of a register
        // record.
        var record = WireWriter(capacity: 64)
        AcceptorRecord.append(.register(key: [9], state: Self.register(9, [9])), to: &record)
        let payload = record.takeBytes()
        var crafted = WireWriter(capacity: 64)
        crafted.writeUInt32(AcceptorLogBatch.marker)
        crafted.writeUInt32(UInt32(payload.count))
        crafted.writeUInt32(payload.withUnsafeBytes { CRC32C.checksum($0) })
        payload.withUnsafeBytes { crafted.writeRawBytes($0) }
        let value = crafted.takeBytes() + [UInt8](repeating: 0, count: 16)
        // The crash tears the batch just past the crafted one: that one is
        // whole and after the bad batch's start.
        let torn = try Self.reopenAfterTearing(value, path: path)
        #expect(try torn.store.load().registers.count == 3)
        #expect(torn.store.truncatedBytes > value.count)
    }

    /// Writes key 4 holding `value` in a batch of its own to the log of
    /// ``writeThreeBatches(_:)`` at `path` (appended, not compacted into a
    /// new log), tears the last 8 bytes of that batch as a crash would, and
    /// reopens the store.
    static func reopenAfterTearing(_ value: [UInt8], path: String) throws -> (store: FileAcceptorStore, tornBatchBytes: Int) {
        let sizeBefore: Int
        let size: Int
        do {
            let store = try FileAcceptorStore(path: path, opening: .existing, compactionThreshold: 64 << 20)
            _ = try store.load()
            sizeBefore = store.fileSize
            store.apply(.register(key: [4], state: Self.register(4, value)))
            try store.sync()
            size = store.fileSize
        }
        let descriptor = open(path, O_RDWR)
        ftruncate(descriptor, off_t(size - 8))
        close(descriptor)
        return (try FileAcceptorStore(path: path, opening: .existing), size - 8 - sizeBefore)
    }

    /// Without ``CRC32CRanges`` the search for a whole batch after the torn
    /// one checksummed each candidate byte by byte: two terabytes of CRC
    /// here, the value holding the marker and a 4 MiB length every 8 bytes.
    @Test("a torn 8 MiB batch whose value reads as batch headers every 8 bytes is truncated in one pass",
          .timeLimit(.minutes(2)))
    func tornBatchOfPlausibleHeaders() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        _ = try Self.writeThreeBatches(path)
        var headers = WireWriter(capacity: 8 << 20)
        while headers.count < 8 << 20 {
            headers.writeUInt32(AcceptorLogBatch.marker)
            headers.writeUInt32(4 << 20)
        }
        let torn = try Self.reopenAfterTearing(headers.takeBytes(), path: path)
        #expect(try torn.store.load().registers.count == 3)
        #expect(torn.store.truncatedBytes == torn.tornBatchBytes)
    }

    /// The payload sizes of the batches of the log at `path`, which must
    /// hold nothing else.
    static func batchPayloads(_ path: String) throws -> [Int] {
        let log = try DurableFile(path: path).readAll()
        var payloads: [Int] = []
        log.withUnsafeBytes { bytes in
            let salt = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt64.self))
            var offset = FileAcceptorStore.headerSize
            while offset < bytes.count, case .valid(let payload, let length) = AcceptorLogBatch.check(
                UnsafeRawBufferPointer(rebasing: bytes[offset...]), salt: salt)
            {
                payloads.append(payload.count)
                offset += length
            }
            #expect(offset == bytes.count, "the log is whole batches")
        }
        return payloads
    }

    @Test("records past the batch payload limit go in several batches, each synced, and all come back")
    func batchesStayBounded() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let value = [UInt8](repeating: 7, count: 100)
        var expected: [[UInt8]: RegisterState] = [:]
        // A batch closes at the first record past 1,000 bytes (records are
        // about 130 bytes).
        let bounded = { (payloads: [Int]) in payloads.allSatisfy { $0 < 1_000 + 150 } }
        do {
            let store = try FileAcceptorStore(path: path, opening: .new, compactionThreshold: 8_192, maximumBatchPayload: 1_000)
            _ = try store.load()
            // One sync of 50 records, about 6.5 KB: several batches.
            for index in 0..<50 {
                let state = Self.register(UInt64(index + 1), value)
                store.apply(.register(key: [UInt8(index)], state: state))
                expected[[UInt8(index)]] = state
            }
            try store.sync()
            let synced = try Self.batchPayloads(path)
            #expect(synced.count >= 6 && bounded(synced), "\(synced)")
            // Rewrites until the log passes the threshold and is compacted:
            // the compacted log holds the state in bounded batches too.
            for round in 0..<4 {
                for index in 0..<50 {
                    let state = Self.register(UInt64(100 * (round + 1) + index), value)
                    store.apply(.register(key: [UInt8(index)], state: state))
                    expected[[UInt8(index)]] = state
                }
                try store.sync()
            }
            #expect(store.compactionCount > 0)
        }
        let payloads = try Self.batchPayloads(path)
        #expect(payloads.count >= 6 && bounded(payloads), "\(payloads)")
        let reopened = try FileAcceptorStore(path: path, opening: .existing)
        #expect(try reopened.load().registers == expected)
        #expect(reopened.truncatedBytes == 0)
    }

    /// What a crashed process wrote but had not synced is read back from
    /// the page cache: the log is synced before the acceptor answers from
    /// it (a repeated accept is answered with no sync of its own).
    @Test("opening a log syncs it, even with nothing to cut")
    func openingSyncsTheLog() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let store = try FileAcceptorStore(path: path, opening: .new)
        _ = try store.load()
        #expect(store.syncCount == 3, "the log's directory's parent, the new log and its directory")
        store.apply(.register(key: [1], state: Self.register(1, [10])))
        try store.sync()
        #expect(store.syncCount == 4)
        store.close()
        let reopened = try FileAcceptorStore(path: path, opening: .existing)
        _ = try reopened.load()
        #expect(reopened.truncatedBytes == 0)
        #expect(reopened.syncCount == 2, "the log and its directory")
    }

    /// The batches are durable in the log as it was: a rewrite written but
    /// unable to take the log's name used to fail the sync, which stopped
    /// the acceptor.
    @Test("a compaction whose rewrite cannot take the log's name is counted; the sync succeeds")
    func failedRenameIsNotFatal() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let store = try FileAcceptorStore(path: path, opening: .new, compactionThreshold: 256)
        _ = try store.load()
        // The log's name taken by a directory that is not empty (the store
        // goes on writing the open log, unlinked): a rename onto it fails.
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        try Data([1]).write(to: URL(fileURLWithPath: path + "/occupied"))
        for counter in UInt64(1)...100 {
            store.apply(.register(key: [UInt8(counter % 4)], state: Self.register(counter, [UInt8(counter)])))
            try store.sync()
        }
        #expect(store.compactionCount == 0)
        #expect(store.compactionFailures > 0)
        #expect(!FileManager.default.fileExists(atPath: path + ".compact"), "the rewrite was removed")
    }

    /// The batches are durable in the log as it was: a rewrite that cannot
    /// be made (here its file's name is taken by a directory) is counted,
    /// not a failed sync that would stop the acceptor.
    @Test("a compaction that cannot be written leaves the log whole and the sync successful")
    func failedCompactionIsNotFatal() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        try FileManager.default.createDirectory(atPath: path + ".compact", withIntermediateDirectories: false)
        let store = try FileAcceptorStore(path: path, opening: .new, compactionThreshold: 256)
        _ = try store.load()
        for counter in UInt64(1)...100 {
            store.apply(.register(key: [UInt8(counter % 4)], state: Self.register(counter, [UInt8(counter)])))
            try store.sync()
        }
        #expect(store.compactionCount == 0)
        #expect(store.compactionFailures > 0)
        #expect(store.compactionFailures < 10, "tried again only once the log doubled")
        let snapshot = try Self.loadCopy(path)
        #expect(snapshot.registers.count == 4)
        #expect(snapshot.registers[[0]] == Self.register(100, [100]))
        // With the name free again, the next try compacts.
        try FileManager.default.removeItem(atPath: path + ".compact")
        for counter in UInt64(101)...400 {
            store.apply(.register(key: [UInt8(counter % 4)], state: Self.register(counter, [UInt8(counter % 256)])))
            try store.sync()
        }
        #expect(store.compactionCount > 0)
        #expect(try Self.loadCopy(path).registers[[0]] == Self.register(400, [UInt8(400 % 256)]))
        // A success ends the deferral: compactions come at the usual pace
        // again (the state is four registers), not only once the log has
        // doubled from the size of the last failure.
        let compactions = store.compactionCount
        for counter in UInt64(401)...500 {
            store.apply(.register(key: [UInt8(counter % 4)], state: Self.register(counter, [UInt8(counter % 256)])))
            try store.sync()
        }
        #expect(store.compactionCount >= compactions + 3, "\(store.compactionCount - compactions) compactions")
        #expect(!FileManager.default.fileExists(atPath: path + ".compact"))
    }

    /// Right after a compaction the whole state is one batch near the end
    /// of the log: damaged there, it must be refused as corrupt, not cut
    /// off as a torn tail (which would open an acceptor that forgot every
    /// promise).
    @Test("damage to a compacted state, before any append after it, is refused as corrupt")
    func damagedCompactionRefused() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/log"
        let store = try FileAcceptorStore(path: path, opening: .new, compactionThreshold: 256)
        _ = try store.load()
        var counter: UInt64 = 0
        while store.compactionCount == 0 {
            counter += 1
            store.apply(.register(key: [UInt8(counter % 4)], state: Self.register(counter, [UInt8(counter % 256)])))
            try store.sync()
        }
        store.close()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[30] ^= 0xFF  // inside the state's batch (the header is 20 bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let reopened = try FileAcceptorStore(path: path, opening: .existing)
        let error = #expect(throws: AcceptorStoreError.self) { try reopened.load() }
        #expect(error?.code == .corrupt)
    }
}
