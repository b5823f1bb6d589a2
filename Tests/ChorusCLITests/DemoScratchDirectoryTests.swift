import Foundation
import TestSupport
import Testing

@testable import ChorusCLI

@Suite("chorus demo's scratch directories")
struct DemoScratchDirectoryTests {
    @Test("an interrupted demo removes its process's scratch directories, files and all, and no other process's or file's")
    func removeAll() throws {
        let parent = try TemporaryDirectory()
        defer { parent.remove() }
        let url = URL(fileURLWithPath: parent.path)
        let names = ["chorus-raft-4242-17", "chorus-caspaxos-4242-9", "chorus-raft-42420-3", "chorus-raft-424-3", "other-4242-1"]
        for name in names {
            let directory = url.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data("log".utf8).write(to: directory.appendingPathComponent("node-1"))
        }
        DemoScratchDirectory.removeAll(ofProcess: 4242, in: url)
        let left = try FileManager.default.contentsOfDirectory(atPath: parent.path).sorted()
        #expect(left == ["chorus-raft-424-3", "chorus-raft-42420-3", "other-4242-1"])
    }

    @Test("a scenario's directory is named after it and this process")
    func named() {
        let name = DemoScratchDirectory.url(for: "raft").lastPathComponent
        #expect(name.hasPrefix("chorus-raft-\(ProcessInfo.processInfo.processIdentifier)-"))
    }
}
