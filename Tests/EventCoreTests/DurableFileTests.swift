import Foundation
import Testing
@testable import EventCore

@Suite("DurableFile directories")
struct DurableFileTests {
    @Test("the directory holding a path, trailing slashes not counting as a level")
    func directoryOfPath() {
        #expect(DurableFile.directory(of: "a/b/c") == "a/b")
        #expect(DurableFile.directory(of: "a/b/c/") == "a/b")
        #expect(DurableFile.directory(of: "a/b/c//") == "a/b")
        #expect(DurableFile.directory(of: "/a") == "/")
        #expect(DurableFile.directory(of: "/a/") == "/")
        #expect(DurableFile.directory(of: "/") == "/")
        #expect(DurableFile.directory(of: "a") == ".")
        #expect(DurableFile.directory(of: "a/") == ".")
    }

    @Test("making a directory returns those it created, outermost first, and none when all exist")
    func madeDirectories() throws {
        let root = NSTemporaryDirectory() + "chorus-durable-\(UInt64.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(try DurableFile.makeDirectory(root + "/x") == [root, root + "/x"])
        #expect(try DurableFile.makeDirectory(root + "/x/y/z/") == [root + "/x/y", root + "/x/y/z"])
        #expect(try DurableFile.makeDirectory(root + "/x/y") == [])
        let error = #expect(throws: DurableFileError.self) { try DurableFile.makeDirectory("/proc/chorus-cannot") }
        #expect(error?.call == "mkdir")
    }
}
