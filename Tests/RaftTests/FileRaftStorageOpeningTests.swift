import EventCore
import Foundation
@testable import Raft
import TestSupport
import Testing

/// How a ``FileRaftStorage`` is opened: a first start creates the log and
/// refuses one that holds state; a restart must find the log, and a lost
/// one is an error, never a fresh start. Each test works in a fresh
/// temporary directory.
@Suite("FileRaftStorage opening")
struct FileRaftStorageOpeningTests {
    /// The names in `path`, sorted, and each file's bytes.
    static func contents(of path: String) throws -> [String: [UInt8]] {
        var contents: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: path) {
            contents[name] = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + "/" + name)))
        }
        return contents
    }

    @Test("a restart in a missing directory is a missing log naming it, and creates nothing")
    func missingDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/replica"
        let error = #expect(throws: RaftStorageError.self) {
            try FileRaftStorage(directory: path, opening: .existing)
        }
        #expect(error?.code == .missingLog)
        #expect(error?.file == path)
        #expect(error?.description.contains("do not start it on a new one") == true)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("a restart in a directory without a segment is a missing log, and leaves the directory as it was",
          arguments: [[:], ["wal-00000000000000000001-00000000000000000001.log.tmp": Array("cut short".utf8)],
                      ["notes.txt": Array("not a log".utf8)]])
    func noSegment(files: [String: [UInt8]]) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for (name, bytes) in files { try directory.write(bytes, to: directory.path + "/" + name) }
        let error = #expect(throws: RaftStorageError.self) {
            try FileRaftStorage(directory: directory.path, opening: .existing)
        }
        #expect(error?.code == .missingLog)
        #expect(error?.file == directory.path)
        #expect(try Self.contents(of: directory.path) == files)
    }

    @Test("a first start over a first start cut short creates the log, which a restart then opens")
    func firstStartCreates() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/a/replica"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let leftover = "wal-00000000000000000001-00000000000000000001.log.tmp"
        try directory.write(Array("cut short".utf8), to: path + "/" + leftover)
        do {
            let storage = try FileRaftStorage(directory: path, opening: .new)
            #expect(storage.syncCount == 3, "the parent directory, the segment, the directory")
            #expect(try FileManager.default.contentsOfDirectory(atPath: path).count == 1)
            #expect(!FileManager.default.fileExists(atPath: path + "/" + leftover))
            try storage.persist(FileRaftStorageTests.entries(1...2, term: 1), hardState: RaftHardState(term: 1))
        }
        let reopened = try FileRaftStorage(directory: path, opening: .existing)
        #expect(FileRaftStorageTests.allEntries(reopened) == FileRaftStorageTests.entries(1...2, term: 1))
        #expect(reopened.hardState == RaftHardState(term: 1))
    }

    /// What a replica may have acknowledged, each alone: an entry, a vote,
    /// a term, a commit index, a snapshot (saved, or beside a log not yet
    /// restarted after it); and entries with what opening would clean up
    /// (a torn tail, a leftover temporary file, an older snapshot).
    static let states: [String] = [
        "entries", "vote", "term", "snapshot", "snapshot beside an untouched log",
        "torn tail", "leftover", "older snapshot",
    ]

    @Test("a first start over a log that holds state is refused, and leaves every file as it was",
          arguments: states)
    func firstStartOverState(state: String) throws {
        let directory = try TemporaryDirectory()
        let elsewhere = try TemporaryDirectory()
        defer {
            directory.remove()
            elsewhere.remove()
        }
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new)
            let entries = FileRaftStorageTests.entries(1...3, term: 1)
            switch state {
            case "entries": try storage.persist(entries, hardState: nil)
            case "vote": try storage.persist([], hardState: RaftHardState(votedFor: NodeID(2)))
            case "term": try storage.persist([], hardState: RaftHardState(term: 4))
            case "snapshot": try storage.saveSnapshot(RaftSnapshot(index: 5, term: 2, data: [5]))
            case "snapshot beside an untouched log":
                try FileRaftStorage(directory: elsewhere.path, opening: .new)
                    .saveSnapshot(RaftSnapshot(index: 30, term: 3, data: [3]))
                let name = try elsewhere.names(endingWith: ".snap")[0]
                try directory.write(try elsewhere.bytes(elsewhere.path + "/" + name), to: directory.path + "/" + name)
            case "torn tail":
                try storage.persist(entries, hardState: nil)
                let segment = try directory.segments()[0]
                try directory.write(try directory.bytes(segment) + [1, 0, 0, 0, 9], to: segment)
            case "leftover":
                try storage.persist(entries, hardState: nil)
                try directory.write(
                    Array("cut short".utf8),
                    to: directory.path + "/wal-00000000000000000009-00000000000000000004.log.tmp")
            default:
                try storage.persist(entries, hardState: nil)
                try storage.saveSnapshot(RaftSnapshot(index: 1, term: 1, data: [1]))
                let older = try directory.names(endingWith: ".snap")[0]
                try storage.saveSnapshot(RaftSnapshot(index: 2, term: 1, data: [2]))
                try directory.write([0], to: directory.path + "/" + older)
            }
        }
        let before = try Self.contents(of: directory.path)
        let error = #expect(throws: RaftStorageError.self) {
            try FileRaftStorage(directory: directory.path, opening: .new)
        }
        #expect(error?.code == .existingLog, "\(state)")
        #expect(error?.file == directory.path)
        #expect(try Self.contents(of: directory.path) == before)
        #expect(throws: Never.self) { try FileRaftStorage(directory: directory.path, opening: .existing) }
    }

    @Test("a first start in directories it creates syncs the parent of each, so none can vanish with a power loss")
    func createdDirectoriesSynced() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/cluster/group-7/replica"
        let storage = try FileRaftStorage(directory: path, opening: .new)
        #expect(storage.syncCount == 5, "three parents (of cluster, group-7, replica), the segment, the directory")
        let unsynced = try FileRaftStorage(
            directory: directory.path + "/other/replica", opening: .new, options: .init(sync: false))
        #expect(unsynced.syncCount == 0)
    }

    @Test("a log created and never written to opens both ways; once written, a first start refuses it")
    func untouchedLog() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try FileRaftStorage(directory: directory.path, opening: .new)
        let created = try Self.contents(of: directory.path)
        #expect(created.count == 1)
        let again = try FileRaftStorage(directory: directory.path, opening: .new)
        #expect(again.syncCount == 3, "the parent directory, the segment and the directory are synced again")
        #expect(try Self.contents(of: directory.path) == created)
        again.close()
        let restarted = try FileRaftStorage(directory: directory.path, opening: .existing)
        // The segment too: a crashed process may have left records there
        // unsynced, which the replica must not answer from until they are.
        #expect(restarted.syncCount == 2, "the segment and the directory are synced again")
        try restarted.persist([], hardState: RaftHardState(term: 1, votedFor: NodeID(3)))
        restarted.close()
        let error = #expect(throws: RaftStorageError.self) {
            try FileRaftStorage(directory: directory.path, opening: .new)
        }
        #expect(error?.code == .existingLog)
        let written = try FileRaftStorage(directory: directory.path, opening: .existing)
        #expect(written.hardState.votedFor == NodeID(3))
        #expect(written.syncCount == 2, "every opening syncs the last segment and the directory")
    }

    @Test("a second store on a directory in use is refused before it reads; once the first is closed, it writes nothing more and another opens")
    func oneStorePerDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let first = try FileRaftStorage(directory: directory.path, opening: .new)
        try first.persist(FileRaftStorageTests.entries(1...2, term: 1), hardState: RaftHardState(term: 1))
        for opening in [FileRaftStorage.Opening.new, .existing] {
            let error = #expect(throws: RaftStorageError.self) {
                try FileRaftStorage(directory: directory.path, opening: opening)
            }
            #expect(error?.code == .locked)
            #expect(error?.file == directory.path)
        }
        first.close()
        let writes: [(String, () throws -> Void)] = [
            ("persist", { try first.persist(FileRaftStorageTests.entries(3...3, term: 1), hardState: nil) }),
            ("saveSnapshot", { try first.saveSnapshot(RaftSnapshot(index: 2, term: 1, data: [2])) }),
            ("compact", { try first.compact(through: 1) }),
        ]
        for (name, write) in writes {
            let error = #expect(throws: RaftStorageError.self, "\(name)") { try write() }
            #expect(error?.code == .closed, "\(name)")
        }
        #expect(first.lastIndex == 2, "reads go on")
        let second = try FileRaftStorage(directory: directory.path, opening: .existing)
        #expect(FileRaftStorageTests.allEntries(second) == FileRaftStorageTests.entries(1...2, term: 1))
        #expect(second.snapshot == nil)
    }

    @Test("releasing a store releases the directory's lock")
    func releaseUnlocks() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new)
            try storage.persist([], hardState: RaftHardState(term: 1))
        }
        #expect(try FileRaftStorage(directory: directory.path, opening: .existing).hardState.term == 1)
    }

    @Test("a path that is a file is an I/O error both ways, not a missing log", arguments: [false, true])
    func pathIsAFile(restart: Bool) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/replica"
        try directory.write(Array("a file".utf8), to: path)
        let error = #expect(throws: RaftStorageError.self) {
            try FileRaftStorage(directory: path, opening: restart ? .existing : .new)
        }
        #expect(error?.code == .io(call: "open", errno: ENOTDIR))
        #expect(try directory.bytes(path) == Array("a file".utf8))
    }
}
