#if canImport(Glibc)
import Glibc
#endif

/// One open file of a durable store (the Raft write-ahead log and
/// snapshots, the CASPaxos acceptor log), with the few system calls such
/// stores are built from: read it whole, append with `write(2)` until every
/// byte is written, `fdatasync(2)`, truncate, rename; and, as static
/// functions, `fsync(2)` of a directory (which makes a create, rename or
/// unlink in it durable), unlink, create a directory, list one.
///
/// The atomic replacement of a file is the sequence write a temporary file,
/// ``synchronizeData()``, ``rename(to:)``, ``synchronizeDirectory(of:)``:
/// after a crash at any point the final name holds either the old contents
/// or the new ones, whole.
///
/// Under a ``PowerLossJournal``'s root (tests), every call that changes a
/// file or a directory (open, which may create or truncate; write;
/// fdatasync; truncate; rename; fsync of a directory; unlink; mkdir) is
/// recorded there once it succeeded, and refused, with the reads, while
/// the journal plays a dead process. Listing a directory and locks are
/// neither.
///
/// Every failure is a ``DurableFileError`` naming the call and the path.
/// The descriptor is closed when the file is released. Confined like the
/// store that owns it: one thread at a time.
package final class DurableFile {
    /// The file's path (its new name after ``rename(to:)``).
    package private(set) var path: String
    private let descriptor: Int32
    /// The power-loss journal recording the calls on this file, and the
    /// file's index in it (tests; see ``PowerLossJournal``).
    private let journal: (recorder: PowerLossJournal, file: Int)?

    /// Opens `path` for reading and appending, creating it (mode 0644) if
    /// it does not exist and `creating` is set; with `truncating`, an
    /// existing file is emptied.
    ///
    /// - Throws: ``DurableFileError`` for `open` (`ENOENT` for a missing
    ///   file opened without `creating`).
    package init(path: String, creating: Bool = true, truncating: Bool = false) throws(DurableFileError) {
        let recorder = PowerLossJournal.covering(path)
        try recorder?.checkProcess("open", path)
        let flags = O_RDWR | O_APPEND | O_CLOEXEC | (creating ? O_CREAT : 0) | (truncating ? O_TRUNC : 0)
        let descriptor = Self.retryingInterrupted { Glibc.open(path, flags, 0o644) }
        guard descriptor >= 0 else { throw DurableFileError(call: "open", path: path, errno: errno) }
        self.path = path
        self.descriptor = descriptor
        journal = recorder.flatMap { recorder in
            recorder.opened(path, creating: creating, truncating: truncating).map { (recorder, $0) }
        }
    }

    deinit {
        _ = Glibc.close(descriptor)
    }

    /// Every byte of the file.
    ///
    /// - Throws: ``DurableFileError`` for `pread`.
    package func readAll() throws(DurableFileError) -> [UInt8] {
        try journal?.recorder.checkProcess("pread", path)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        var offset: off_t = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("pread")
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<count])
            offset += off_t(count)
        }
    }

    /// Appends `bytes` at the end of the file, calling `write(2)` again
    /// after a short write or an interruption until all are written.
    ///
    /// - Throws: ``DurableFileError`` for `write` (`EIO` if it wrote
    ///   nothing without an error, which would otherwise repeat for ever);
    ///   part of `bytes` may then have been written.
    package func append(_ bytes: [UInt8]) throws(DurableFileError) {
        try journal?.recorder.checkProcess("write", path)
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { raw in
                Glibc.write(descriptor, raw.baseAddress! + written, raw.count - written)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("write")
            }
            guard count > 0 else { throw DurableFileError(call: "write", path: path, errno: EIO) }
            written += count
        }
        if let journal { journal.recorder.appended(bytes, to: journal.file) }
    }

    /// Makes the file's data (and the metadata needed to read it, such as
    /// its size) durable: `fdatasync(2)`, again if interrupted.
    ///
    /// - Throws: ``DurableFileError`` for `fdatasync`.
    package func synchronizeData() throws(DurableFileError) {
        try journal?.recorder.checkProcess("fdatasync", path)
        guard Self.retryingInterrupted({ fdatasync(descriptor) }) == 0 else { throw failure("fdatasync") }
        if let journal { journal.recorder.synchronized(journal.file) }
    }

    /// Cuts the file to its first `size` bytes.
    ///
    /// - Throws: ``DurableFileError`` for `ftruncate`.
    package func truncate(to size: Int) throws(DurableFileError) {
        try journal?.recorder.checkProcess("ftruncate", path)
        guard Self.retryingInterrupted({ ftruncate(descriptor, off_t(size)) }) == 0 else { throw failure("ftruncate") }
        if let journal { journal.recorder.truncated(journal.file, to: size) }
    }

    /// Whether `bytes`, read at `fileOffset` of a file, hold a piece between
    /// two 512-byte boundaries of the file (a disk sector; the first and
    /// last pieces may be partial) that is all zeros. That is what a write
    /// a crash cut short leaves where its data never reached the disk
    /// (etcd's WAL tells a torn entry by the same sign): a store may take a
    /// bad record at the end of its log for a torn write when it has such
    /// a piece, or reaches past the end of the file; a whole record
    /// without one was written and damaged since, and may have been
    /// acknowledged.
    package static func holdsZeroSector(_ bytes: UnsafeRawBufferPointer, at fileOffset: Int) -> Bool {
        let sector = 512
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + sector - (fileOffset + start) % sector)
            if bytes[start..<end].allSatisfy({ $0 == 0 }) { return true }
            start = end
        }
        return false
    }

    /// Calls `body` (a system call returning -1 with `errno` set on
    /// failure) again while it fails with `EINTR`.
    private static func retryingInterrupted(_ body: () -> Int32) -> Int32 {
        var result: Int32
        repeat { result = body() } while result < 0 && errno == EINTR
        return result
    }

    /// Renames the file to `newPath`, replacing any file there. Durable
    /// only after ``synchronizeDirectory(of:)``.
    ///
    /// - Throws: ``DurableFileError`` for `rename`.
    package func rename(to newPath: String) throws(DurableFileError) {
        let recorder = PowerLossJournal.covering(path)
        try recorder?.checkProcess("rename", path)
        guard Glibc.rename(path, newPath) == 0 else { throw failure("rename") }
        recorder?.renamed(path, to: newPath)
        path = newPath
    }

    /// Takes an exclusive `flock(2)` on the file, waiting at most a moment
    /// (see ``ExclusiveLock``): no other descriptor (another store, in
    /// another process or in this one) can take it until ``unlock()`` or
    /// the file's release. The lock is
    /// on the file opened, which a rename may have replaced at ``path``
    /// since (a store's compaction): returns false, and holds no lock,
    /// when the file at ``path`` is no longer this one.
    ///
    /// - Throws: ``DurableFileError`` for `flock` (`EWOULDBLOCK` if another
    ///   descriptor holds the lock) or `fstat`.
    package func lock() throws(DurableFileError) -> Bool {
        let locking = ExclusiveLock.take(descriptor)
        guard locking == 0 else { throw DurableFileError(call: "flock", path: path, errno: locking) }
        var opened = stat()
        guard fstat(descriptor, &opened) == 0 else { throw failure("fstat") }
        var named = stat()
        if stat(path, &named) == 0, named.st_dev == opened.st_dev, named.st_ino == opened.st_ino { return true }
        unlock()
        return false
    }

    /// Releases the lock taken by ``lock()``.
    package func unlock() {
        _ = flock(descriptor, LOCK_UN)
    }

    private func failure(_ call: String) -> DurableFileError {
        DurableFileError(call: call, path: path, errno: errno)
    }

    // MARK: Directories

    /// The directory holding `path` (`"."` for a bare name); trailing
    /// slashes are not a level (`"a/b/"` is in `"a"`).
    package static func directory(of path: String) -> String {
        var path = Substring(path)
        while path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    /// Makes the creations, renames and removals of files in the directory
    /// holding `path` durable: `fsync(2)` of the directory.
    ///
    /// - Throws: ``DurableFileError`` for `open` or `fsync`.
    package static func synchronizeDirectory(of path: String) throws(DurableFileError) {
        try synchronizeDirectory(directory(of: path))
    }

    /// `fsync(2)` of the directory `directory`.
    ///
    /// - Throws: ``DurableFileError`` for `open` or `fsync`.
    package static func synchronizeDirectory(_ directory: String) throws(DurableFileError) {
        let recorder = PowerLossJournal.covering(directory)
        try recorder?.checkProcess("fsync", directory)
        let descriptor = retryingInterrupted { Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard descriptor >= 0 else { throw DurableFileError(call: "open", path: directory, errno: errno) }
        defer { _ = Glibc.close(descriptor) }
        guard retryingInterrupted({ fsync(descriptor) }) == 0 else {
            throw DurableFileError(call: "fsync", path: directory, errno: errno)
        }
        recorder?.synchronizedDirectory(directory)
    }

    /// Removes the file at `path`; a file already gone is not an error.
    /// Durable only after ``synchronizeDirectory(of:)``.
    ///
    /// - Throws: ``DurableFileError`` for `unlink`.
    package static func remove(_ path: String) throws(DurableFileError) {
        let recorder = PowerLossJournal.covering(path)
        try recorder?.checkProcess("unlink", path)
        guard unlink(path) == 0 || errno == ENOENT else {
            throw DurableFileError(call: "unlink", path: path, errno: errno)
        }
        recorder?.removed(path)
    }

    /// Creates the directory `path` and any missing parent (mode 0755); an
    /// existing directory is not an error. Returns the directories it
    /// created, outermost first: each is durable only after
    /// ``synchronizeDirectory(of:)`` of it (its parent's `fsync(2)`).
    ///
    /// - Throws: ``DurableFileError`` for `mkdir`.
    @discardableResult
    package static func makeDirectory(_ path: String) throws(DurableFileError) -> [String] {
        var created: [String] = []
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            let recorder = PowerLossJournal.covering(prefix)
            try recorder?.checkProcess("mkdir", prefix)
            if mkdir(prefix, 0o755) == 0 {
                created.append(prefix)
                recorder?.madeDirectory(prefix)
            } else if errno != EEXIST {
                throw DurableFileError(call: "mkdir", path: prefix, errno: errno)
            }
            prefix += "/"
        }
        return created
    }

    /// Creates the directory `path` and any missing parent
    /// (``makeDirectory(_:)``), then syncs the parent of every directory it
    /// created and `path`'s own parent (it may have been created just
    /// before, by someone else), so that a power loss cannot take a
    /// directory away once something in it was made durable. Returns how
    /// many directories it synced.
    ///
    /// - Throws: ``DurableFileError`` for `mkdir` or `fsync`.
    package static func makeDirectoryDurably(_ path: String) throws(DurableFileError) -> Int {
        let created = try makeDirectory(path)
        let parents = Set(created.map(directory(of:)) + [directory(of: path)])
        for parent in parents { try synchronizeDirectory(parent) }
        return parents.count
    }

    /// The names of the entries of the directory `path` (without `.` and
    /// `..`), in no particular order.
    ///
    /// - Throws: ``DurableFileError`` for `opendir` or `readdir`.
    package static func contents(ofDirectory path: String) throws(DurableFileError) -> [String] {
        guard let directory = opendir(path) else { throw DurableFileError(call: "opendir", path: path, errno: errno) }
        defer { closedir(directory) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                if errno != 0 { throw DurableFileError(call: "readdir", path: path, errno: errno) }
                return names
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
    }
}
