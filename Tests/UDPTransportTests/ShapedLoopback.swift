#if canImport(Glibc)
import Glibc
#endif
import EventCore

/// Whether this process can give a thread a network namespace of its own
/// with a shaped loopback (``enterShapedLoopbackNamespace(rate:)``): root,
/// with iproute2's `ip` and `tc` installed.
let canShapeLoopback: Bool =
    geteuid() == 0 && access(ShapedLoopback.ip, X_OK) == 0 && access(ShapedLoopback.tc, X_OK) == 0

/// Moves the calling thread, and only it, into a new network namespace
/// whose loopback is up and sends through a token bucket of `rate` (tc's
/// `tbf`, holding up to 10 s of traffic). Sockets the thread opens from
/// then on live in that namespace. There, unlike on the host's loopback
/// (which hands a datagram straight to its receiver), datagrams wait in the
/// bucket's queue charged to their socket's send buffer, so a sender with
/// a small buffer really gets `EAGAIN`.
///
/// Call it on a loop's thread that nothing else shares (the thread stays
/// in the namespace): the transports that loop binds then talk through the
/// shaped loopback.
func enterShapedLoopbackNamespace(rate: String) throws {
    // Glibc as imported by Swift lacks unshare(2) (a _GNU_SOURCE
    // declaration) and CLONE_NEWNET (<linux/sched.h>).
    typealias Unshare = @convention(c) (Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "unshare") else {
        throw SystemError(call: "dlsym(unshare)", errno: ENOSYS)
    }
    let unshare = unsafeBitCast(symbol, to: Unshare.self)
    let newNetworkNamespace: Int32 = 0x4000_0000
    guard unshare(newNetworkNamespace) == 0 else { throw SystemError(call: "unshare(CLONE_NEWNET)", errno: errno) }
    // A child started from this thread starts in its namespace.
    try ShapedLoopback.run(ShapedLoopback.ip, "link", "set", "lo", "up")
    try ShapedLoopback.run(
        ShapedLoopback.tc, "qdisc", "add", "dev", "lo", "root", "tbf", "rate", rate, "burst", "16kb", "latency", "10s")
}

/// The iproute2 tools ``enterShapedLoopbackNamespace(rate:)`` runs.
private enum ShapedLoopback {
    static let ip = "/usr/sbin/ip"
    static let tc = "/usr/sbin/tc"

    /// Runs `path` with `arguments` and waits for it; throws if it cannot
    /// start or exits with a failure.
    static func run(_ path: String, _ arguments: String...) throws {
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var child: pid_t = 0
        let started = posix_spawn(&child, path, nil, nil, argv, environ)
        guard started == 0 else { throw SystemError(call: "posix_spawn(\(path))", errno: started) }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 {
            guard errno == EINTR else { throw SystemError(call: "waitpid", errno: errno) }
        }
        guard status == 0 else {
            throw SystemError(call: "\(path) \(arguments.joined(separator: " ")) (wait status \(status))", errno: 0)
        }
    }
}
