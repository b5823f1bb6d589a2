import Foundation
import Testing
@testable import EventCore

#if canImport(Glibc)
import Glibc
#endif

/// The model the storage power-loss tests rely on: over many seeds, a
/// power loss keeps what was synced, and may lose, tear or keep what was
/// not, never anything else.
@Suite("PowerLossJournal")
struct PowerLossJournalTests {
    /// A fresh empty directory, and its removal.
    static func withRoot(_ body: (String) throws -> Void) throws {
        let root = NSTemporaryDirectory() + "chorus-power-\(UInt64.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try body(root)
    }

    /// The file's bytes, nil if it is not there.
    static func contents(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { [UInt8]($0) }
    }

    @Test("synced bytes stay; bytes written since are kept, cut or zeroed in part")
    func fileContents() throws {
        let synced = [UInt8](repeating: 1, count: 700)
        let unsynced = [UInt8](repeating: 2, count: 900)
        var kinds: Set<String> = []
        for seed in 0..<64 as Range<UInt64> {
            try Self.withRoot { root in
                let journal = try PowerLossJournal(root: root, cutAfter: .max)
                defer { journal.stop() }
                let file = try DurableFile(path: root + "/f")
                try file.append(synced)
                try file.synchronizeData()
                try DurableFile.synchronizeDirectory(root)
                try file.append(unsynced)
                try journal.restore(seed: seed)
                let after = try #require(Self.contents(root + "/f"), "seed \(seed): the file is gone")
                #expect(after.starts(with: synced), "seed \(seed)")
                #expect(after.count <= synced.count + unsynced.count)
                let tail = after.dropFirst(synced.count)
                #expect(tail.allSatisfy { $0 == 2 || $0 == 0 })
                if tail.isEmpty {
                    kinds.insert("lost")
                } else if tail.count == unsynced.count && !tail.contains(0) {
                    kinds.insert("kept")
                } else {
                    kinds.insert("torn")
                }
            }
        }
        #expect(kinds == ["lost", "kept", "torn"])
    }

    @Test("a rename is durable at the directory's sync, and until then may be undone")
    func renames() throws {
        var outcomes: Set<[UInt8]> = []
        for seed in 0..<32 as Range<UInt64> {
            for syncsDirectory in [false, true] {
                try Self.withRoot { root in
                    let journal = try PowerLossJournal(root: root, cutAfter: .max)
                    defer { journal.stop() }
                    for (name, byte) in [("old", UInt8(1)), ("new", 2)] {
                        let file = try DurableFile(path: root + "/" + name)
                        try file.append([byte])
                        try file.synchronizeData()
                    }
                    try DurableFile.synchronizeDirectory(root)
                    try DurableFile(path: root + "/new").rename(to: root + "/old")
                    if syncsDirectory { try DurableFile.synchronizeDirectory(root) }
                    try journal.restore(seed: seed)
                    let after = try #require(Self.contents(root + "/old"))
                    if syncsDirectory {
                        #expect(after == [2])
                        #expect(Self.contents(root + "/new") == nil)
                    } else {
                        outcomes.insert(after)
                    }
                }
            }
        }
        #expect(outcomes == [[1], [2]])
    }

    @Test("a file created, synced, in a directory never synced may vanish")
    func unsyncedCreation() throws {
        var present: Set<Bool> = []
        for seed in 0..<32 as Range<UInt64> {
            try Self.withRoot { root in
                let journal = try PowerLossJournal(root: root, cutAfter: .max)
                defer { journal.stop() }
                let file = try DurableFile(path: root + "/f")
                try file.append([7])
                try file.synchronizeData()
                try journal.restore(seed: seed)
                present.insert(Self.contents(root + "/f") != nil)
            }
        }
        #expect(present == [false, true])
    }

    @Test("the calls after the cut are not recorded, and a dead process's calls fail unmade")
    func cutAndProcessCrash() throws {
        try Self.withRoot { root in
            let journal = try PowerLossJournal(root: root, cutAfter: 4)
            defer { journal.stop() }
            journal.crashProcess(afterCall: 2)
            let file = try DurableFile(path: root + "/f")
            try file.append([1])
            #expect(journal.hasProcessCrashed)
            let error = #expect(throws: DurableFileError.self) { try file.synchronizeData() }
            #expect(error?.call == "fdatasync")
            #expect(error?.errno == EIO)
            journal.restartProcess()
            try file.synchronizeData()
            try DurableFile.synchronizeDirectory(root)
            #expect(journal.isCut)
            try file.append([2])
            try file.synchronizeData()
            #expect(journal.recordedCalls == 4)
            try journal.restore(seed: 0)
            #expect(Self.contents(root + "/f") == [1], "the write after the cut is gone")
        }
    }
}
