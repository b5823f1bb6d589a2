#if canImport(Glibc)
import Glibc
#endif

/// Takes an exclusive `flock(2)` without blocking, as ``DirectoryLock`` and
/// ``DurableFile/lock()`` do, and tries again for a moment when the lock
/// is held.
///
/// A lock released a moment ago can still be held by a copy of its
/// descriptor: a child process that another thread of this process is
/// starting (`posix_spawn`, `fork`) has a copy of every descriptor from
/// its fork to its `exec`, which closes the copies (the descriptors are
/// opened with `O_CLOEXEC`). A store that closes and reopens its directory
/// while the process starts a program would otherwise be refused its own
/// lock. So a held lock is tried again a few times, about 60 ms in all,
/// before it is reported: a store that another process holds is refused
/// that much later.
enum ExclusiveLock {
    /// The waits before each retry, in microseconds.
    private static let retryWaits: [UInt32] = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000]

    /// Locks `descriptor`, waiting `waits` (in microseconds) before the
    /// retries; returns 0, or the `errno` of the last failed `flock`
    /// (`EWOULDBLOCK` if the lock stayed held).
    static func take(_ descriptor: Int32, waits: [UInt32] = retryWaits) -> Int32 {
        var waits = waits.makeIterator()
        while true {
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return 0 }
            let failure = errno
            if failure == EINTR { continue }
            guard failure == EWOULDBLOCK, let wait = waits.next() else { return failure }
            _ = usleep(wait)
        }
    }
}
