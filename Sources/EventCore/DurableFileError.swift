#if canImport(Glibc)
import Glibc
#endif

/// A failed system call of a ``DurableFile``: which call, on which path,
/// and the `errno` it left. The durable stores turn it into their own
/// public error types.
package struct DurableFileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The system call that failed (`"open"`, `"write"`, `"fdatasync"`,
    /// `"rename"`, ...).
    package var call: String
    /// The path it was called on (for a rename, the source).
    package var path: String
    /// The `errno` value after the call.
    package var errno: Int32

    /// Creates an error for `call` on `path` with the given `errno`.
    package init(call: String, path: String, errno: Int32) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    /// The lock on `path` is held by another descriptor: what `flock(2)`
    /// without waiting reports then.
    package static func lockHeld(_ path: String) -> DurableFileError {
        DurableFileError(call: "flock", path: path, errno: EWOULDBLOCK)
    }

    /// Whether another descriptor holds the lock this failed to take
    /// (``DurableFile/lock()``, ``DirectoryLock``).
    package var isLockHeld: Bool { call == "flock" && errno == EWOULDBLOCK }

    /// The call, the path, the `strerror` text and the number, on one line.
    package var description: String {
        let message = strerror(errno).map { String(cString: $0) } ?? "errno \(errno)"
        return "\(call) \(path): \(message) (errno \(errno))"
    }
}
