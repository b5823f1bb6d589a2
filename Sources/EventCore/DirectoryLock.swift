#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a directory, held while this object lives:
/// `flock(2)` on the directory, opened read-only. A durable store takes
/// one on the directory it writes (as etcd locks the files of its
/// write-ahead log, and Kafka its log directories), so that two stores, in
/// two processes or in one, never write one directory at once. The kernel
/// releases the lock when the descriptor closes: when this object is
/// released, or when the process ends, however it ends. For local file
/// systems: on NFS, `flock` is emulated with byte-range locks that need a
/// descriptor open for writing, and the lock fails (or, mounted with
/// `local_lock`, excludes nothing beyond this machine).
package final class DirectoryLock {
    /// The locked directory.
    package let path: String
    private let descriptor: Int32

    /// Locks `path`, waiting at most a moment (see ``ExclusiveLock``).
    ///
    /// - Throws: ``DurableFileError`` for `open`, or for `flock` with
    ///   `EWOULDBLOCK` if another descriptor holds the lock.
    package init(_ path: String) throws(DurableFileError) {
        let descriptor = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DurableFileError(call: "open", path: path, errno: errno) }
        let locking = ExclusiveLock.take(descriptor)
        guard locking == 0 else {
            let failure = DurableFileError(call: "flock", path: path, errno: locking)
            _ = Glibc.close(descriptor)
            throw failure
        }
        self.path = path
        self.descriptor = descriptor
    }

    deinit {
        _ = Glibc.close(descriptor)
    }
}
