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

    @Test("a first start in such a directory creates the log, which a restart then opens")
    func firstStartCreates() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/a/replica"
        try directory.write(Array("cut short".utf8), to: directory.path + "/leftover.log.tmp")
        do {
            let storage = try FileRaftStorage(directory: path, opening: .new)
            try storage.persist(FileRaftStorageTests.entries(1...2, term: 1), hardState: RaftHardState(term: 1))
        }
        let reopened = try FileRaftStorage(directory: path, opening: .existing)
        #expect(FileRaftStorageTests.allEntries(reopened) == FileRaftStorageTests.entries(1...2, term: 1))
        #expect(reopened.hardState == RaftHardState(term: 1))
    }

    /// What a replica may have acknowledged, each alone: an entry, a vote,
    /// a term, a commit index, a snapshot.
    static let states: [String] = ["entries", "vote", "term", "commit", "snapshot"]

    @Test("a first start over a log that holds state is refused, and leaves every file as it was",
          arguments: states)
    func firstStartOverState(state: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let storage = try FileRaftStorage(directory: directory.path, opening: .new)
            switch state {
            case "entries": try storage.persist(FileRaftStorageTests.entries(1...1, term: 1), hardState: nil)
            case "vote": try storage.persist([], hardState: RaftHardState(votedFor: NodeID(2)))
            case "term": try storage.persist([], hardState: RaftHardState(term: 4))
            case "commit": try storage.persist([], hardState: RaftHardState(commitIndex: 1))
            default: try storage.saveSnapshot(RaftSnapshot(index: 5, term: 2, data: [5]))
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

    @Test("a log created and never written to opens both ways; once written, a first start refuses it")
    func untouchedLog() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try FileRaftStorage(directory: directory.path, opening: .new)
        let created = try Self.contents(of: directory.path)
        #expect(created.count == 1)
        let again = try FileRaftStorage(directory: directory.path, opening: .new)
        #expect(again.syncCount == 1, "the directory is synced again")
        #expect(try Self.contents(of: directory.path) == created)
        let restarted = try FileRaftStorage(directory: directory.path, opening: .existing)
        try restarted.persist([], hardState: RaftHardState(term: 1, votedFor: NodeID(3)))
        let error = #expect(throws: RaftStorageError.self) {
            try FileRaftStorage(directory: directory.path, opening: .new)
        }
        #expect(error?.code == .existingLog)
        #expect(try FileRaftStorage(directory: directory.path, opening: .existing).hardState.votedFor == NodeID(3))
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
        #expect(error?.code == .io(call: "opendir", errno: ENOTDIR))
        #expect(try directory.bytes(path) == Array("a file".utf8))
    }
}
