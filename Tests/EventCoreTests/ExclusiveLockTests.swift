import Foundation
import Testing
import TestSupport
@testable import EventCore

@Suite("Exclusive locks held for a moment")
struct ExclusiveLockTests {
    /// A lock another descriptor releases 20 ms after the attempt begins:
    /// what a child process between its fork and its `exec` does with its
    /// copy of a store's descriptor. Without the retries the attempt was
    /// refused (the flaky restart of a Raft store in the linearizability
    /// suite, while another test started `ip`). The retries here wait up
    /// to 5 s in all, so a slow holder thread cannot fail the test; the
    /// lock is checked held just before the attempt, so the test cannot
    /// pass without a retry.
    @Test("a lock released a moment after the attempt is taken by a retry")
    func releasedMomentLater() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let holder = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        let taker = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(taker) }
        try #require(holder >= 0 && taker >= 0)
        try #require(flock(holder, LOCK_EX | LOCK_NB) == 0)
        let started = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            started.signal()
            usleep(20_000)
            close(holder)
        }
        started.wait()
        try #require(flock(taker, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)
        #expect(ExclusiveLock.take(taker, waits: Array(repeating: 5_000, count: 1_000)) == 0)
    }

    @Test("a directory's lock held throughout is refused with EWOULDBLOCK, after the retries")
    func heldThroughout() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let held = try DirectoryLock(directory.path)
        let error = #expect(throws: DurableFileError.self) { try DirectoryLock(directory.path) }
        #expect(error?.isLockHeld == true)
        #expect(held.path == directory.path)
    }
}
