#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call, and the `errno` it left.
public struct SystemError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The system call that failed (`"bind"`, `"epoll_ctl"`, ...).
    public var call: String
    /// The `errno` value after the call.
    public var errno: Int32

    /// Creates an error for `call` with the given `errno`.
    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// The call, the `strerror` text and the number, on one line.
    public var description: String {
        let message = strerror(errno).map { String(cString: $0) } ?? "errno \(errno)"
        return "\(call) failed: \(message) (errno \(errno))"
    }
}
