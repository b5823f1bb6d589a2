import Foundation
import Testing
@testable import EventCore

@Suite("Exclusive locks held for a moment")
struct ExclusiveLockTests {
    /// A lock another descriptor releases a moment after the attempt
    /// begins: what a child process between its fork and its `exec` does
    /// with its copy of a store's descriptor. Without the retries the
    /// attempt was refused (the flaky restart of a Raft store in the
    /// linearizability suite, while another test started `ip`).
    @Test("a directory's lock released a moment after the attempt is taken")
    func releasedMomentLater() throws {
        let root = NSTemporaryDirectory() + "chorus-lock-\(UInt64.random(in: 0 ... .max))"
        _ = try DurableFile.makeDirectory(root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let holder = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(holder >= 0)
        try #require(flock(holder, LOCK_EX | LOCK_NB) == 0)
        let started = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            started.signal()
            usleep(2_000)
            close(holder)
        }
        started.wait()
        let lock = try DirectoryLock(root)
        #expect(lock.path == root)
    }

    @Test("a lock held throughout is refused with EWOULDBLOCK")
    func heldThroughout() throws {
        let root = NSTemporaryDirectory() + "chorus-lock-\(UInt64.random(in: 0 ... .max))"
        _ = try DurableFile.makeDirectory(root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let held = try DirectoryLock(root)
        let error = #expect(throws: DurableFileError.self) { try DirectoryLock(root) }
        #expect(error?.isLockHeld == true)
        #expect(held.path == root)
    }
}
