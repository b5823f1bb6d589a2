#if canImport(Glibc)
import Glibc
#endif
import EventCore

/// A durable ``RaftStorage``: a write-ahead log in segment files and
/// snapshot files in one directory, with the live entries kept in memory
/// for reads (as etcd's WAL and `MemoryStorage` do together).
///
/// **Writes.** ``persist(_:hardState:)`` appends one record (the entries
/// and the hard state) with one `write(2)` and syncs it with one
/// `fdatasync(2)`: a ready carries every proposal made since the last one,
/// so they share the sync (group commit). A persist that changes only the
/// hard state's commit index writes nothing: the next record carries it
/// (the commit index can be learnt again from the leader, and a node
/// alone commits its log again when it is elected). Every record is
/// synced, so only the last can be torn. (Written unsynced, as etcd writes
/// it, such a record is made durable by the next record's sync when both
/// are in one file; but the next record may start a new segment, and a
/// power loss could then keep that segment and tear the record at the end
/// of the one before, which recovery refuses: damage in a segment that is
/// not the last.) Entries starting at or below
/// ``lastIndex`` replace the log from there, on disk as in memory.
///
/// **Segments.** `wal-<sequence>-<first index>.log`, both numbers in 20
/// decimal digits. The sequence number orders the segments as they were
/// created, which is the order they replay in (by first index alone, a
/// segment that replaced entries of earlier ones could not be ordered). A
/// segment is a 40-byte header, little-endian (magic `CHORUSWL`, format
/// version u32 = 2, the first index it holds u64, the term of the entry
/// before it u64, a random salt u64, CRC32C of those u32), then records
/// `[payload length u32][CRC32C of the salt, type and payload u32][type u8
/// = 1][payload]` (the salt, never sent anywhere, keeps a command from
/// passing for a record), the payload
/// an optional hard state (term, vote, commit index) and a count of
/// entries (term and index varints, kind byte, length-prefixed command).
/// Once a segment passes ``Options/segmentSize``, or when entries replace
/// ones below the current segment's first index, the next record starts a
/// new segment: the header and the record (which then carries the full
/// hard state, so that every segment starts with it) are written under a
/// temporary name, synced, renamed, and the directory synced; the segments
/// it supersedes (all starting at or after its first index) are removed,
/// newest first, so that a crash between two removals leaves the oldest,
/// which the log still replays past.
///
/// **Snapshots.** `snapshot-<index>-<term>.snap`: magic `CHORUSSN`, version
/// u32 = 1, index u64, term u64, data length u64, CRC32C (of index, term,
/// length and data) u32, data. ``saveSnapshot(_:)`` writes a temporary file,
/// syncs it, renames it, syncs the directory and removes the previous
/// snapshot. If the log does not hold the snapshot's last entry, it then
/// starts a segment at the snapshot's index + 1 (previous term: the
/// snapshot's) that restarts the log, and removes every older segment.
/// ``compact(through:)`` removes the segments whose entries are all at or
/// below both the index and the snapshot's; ``firstIndex`` becomes the first
/// remaining segment's first index, and its header keeps the term before it.
///
/// **Opening.** Whether the replica has a log in the directory is said
/// when the store is opened (``Opening``) and checked there: a new replica
/// creates its log, a restart must find it. A replica restarted on a new
/// log in place of a lost one would have forgotten its vote and the
/// entries it acknowledged: it could vote twice in one term (two leaders),
/// and help elect a leader that lacks an entry it had helped commit (a
/// committed entry lost). So a missing log is an error
/// (``RaftStorageError/Code/missingLog``), never a fresh start. A log that
/// holds no state yet (no term, vote, commit index, entry or snapshot: a
/// first segment with its initial record, and at most a torn tail)
/// acknowledged nothing, and opens both ways. A refused opening changes no
/// file. A directory holding a snapshot but no segment is refused both ways
/// as ``RaftStorageError/Code/missingSegment``.
///
/// **Recovery** (``init(directory:opening:options:)``): the newest snapshot
/// is loaded and the segments replayed in creation order (temporary files
/// are passed over, and removed at the end); then the directory is synced (when syncing), so that the name of
/// a segment created just before a crash is durable before the replica
/// acts on what it holds (a new store also syncs the directory's parent,
/// and the parent of every directory it created on the way).
/// A torn tail of the last segment (a bad record, not the segment's
/// first, which was synced before the segment got its name, with nothing
/// valid after it, and with the marks of a write cut short, as etcd's WAL
/// asks of a torn entry: the file ends inside it, or a piece of it between
/// two 512-byte boundaries of the file is all zeros; such a write was
/// never synced, so never acknowledged) is cut off and counted in
/// ``truncatedBytes``. Any other bad data (a whole last record failing its
/// checksum with no sector of zeros, damaged after it was written and
/// perhaps synced; a failing checksum before valid data or in an earlier
/// segment, a header that does not parse, an unknown version, a gap
/// between segments) throws a
/// ``RaftStorageError`` naming the file and the offset, and nothing is
/// dropped. A snapshot the log does not hold (a crash before the log was
/// restarted after it) restarts it then. The removal of segments a new one
/// supersedes (entries replaced below the active segment, or a log
/// restarted after a snapshot), when writing or at recovery, goes newest
/// first and is synced before anything else is done: a crash between two
/// removals leaves the oldest, which the log still replays past, and none
/// comes back once the segments below it are compacted away (the sync is
/// for file systems that may keep a later removal and lose an earlier
/// one; ext4 and XFS keep them in order). Other obsolete files (old
/// snapshots, compacted segments, temporary files) are removed unsynced:
/// one that a crash brings back replays to the same log.
///
/// **One store per directory.** The store holds an exclusive `flock(2)` on
/// its directory until ``close()`` or its release (as etcd locks its WAL
/// files): a second store on the directory, in another process or in this
/// one, is refused with ``RaftStorageError/Code/locked`` before it reads
/// anything. On local file systems only (see `DirectoryLock`): not on
/// NFS.
///
/// Reads come from memory and do not fail. After a write throws, the store
/// must not be used again (the driver stops its node), and after a failed
/// system call it refuses to be: every write throws that failure again,
/// unmade (a sync tried again could succeed with the failed write's
/// bytes missing, Linux reporting a failed write-back once). Reopening it
/// recovers what was made durable, with one exception: after a failed
/// sync, Linux may keep the unsynced pages in its cache, marked clean, and
/// a reopening before the host restarts reads them as if they were on
/// disk (restart the host, or drop its page cache, before reopening a
/// store whose sync failed). Confined like the node that uses it: one
/// thread at a time.
public final class FileRaftStorage: RaftStorage {
    /// Whether the replica has a log in the directory, as the operator
    /// knows and the directory alone cannot say: a lost log and a first
    /// start look the same. etcd's `--initial-cluster-state` and
    /// ZooKeeper's `initialize` file answer the same question.
    ///
    /// Say it from what the operator knows (a flag given when the group is
    /// bootstrapped, a provisioning step), never from whether the directory
    /// holds files: that would start a lost log afresh, which is what this
    /// guards against.
    public enum Opening: Sendable {
        /// A first start, when the group is bootstrapped: the store creates
        /// the directory if needed and the log in it. A directory whose log
        /// holds state (a term, a vote, a commit index, an entry or a
        /// snapshot) throws
        /// ``RaftStorageError/Code/existingLog``.
        case new
        /// A restart: the log must be there. A missing directory, or one
        /// without a log segment, throws
        /// ``RaftStorageError/Code/missingLog``.
        case existing
    }

    /// How a ``FileRaftStorage`` writes.
    public struct Options: Hashable, Sendable {
        /// The size, in bytes, past which the next write starts a new
        /// segment. Default 64 MiB. Any value is accepted; a value below a
        /// record's size starts a segment at every write.
        public var segmentSize: Int
        /// Whether writes are synced to disk (`fdatasync`, and `fsync` of
        /// the directory). Default true. False makes nothing durable against
        /// a machine crash or power loss (only against the process ending):
        /// it is for tests and benchmarks that measure without the cost of
        /// syncing, never for a real node.
        public var sync: Bool

        /// Creates options; every argument has the default described on its
        /// property.
        public init(segmentSize: Int = 64 << 20, sync: Bool = true) {
            self.segmentSize = segmentSize
            self.sync = sync
        }
    }

    /// The segment being appended to.
    private struct ActiveSegment {
        var segment: WALSegment
        var file: DurableFile
        /// Bytes in the file.
        var size: Int
    }

    /// The directory holding the files.
    public let directory: String
    /// How the store writes.
    public let options: Options
    /// The latest hard state: its term and vote are durable; its commit
    /// index may be ahead of the one on disk (a change of it alone waits
    /// for the next record).
    public private(set) var hardState: RaftHardState
    /// The latest snapshot saved.
    public private(set) var snapshot: RaftSnapshot?
    /// Syncs done since the store was opened: `fdatasync` of a segment or
    /// snapshot and `fsync` of the directory, each counting one.
    public private(set) var syncCount: Int
    /// Bytes written to files since the store was opened (records, segment
    /// headers, snapshots).
    public private(set) var bytesWritten = 0
    /// Bytes of a torn tail that opening the store cut off the last segment.
    public let truncatedBytes: Int

    private var stored: StoredEntries
    /// The segments before the active one, in creation order, their first
    /// indices rising.
    private var closedSegments: [WALSegment]
    private var active: ActiveSegment
    /// Held until ``close()`` or the store's release: no other store
    /// writes the directory meanwhile.
    private var lock: DirectoryLock?
    /// The first system call that failed: the store writes nothing more.
    private var failure: RaftStorageError?

    /// Opens the store in `directory`, checks that it holds what `opening`
    /// says, and recovers its state (see the type's comment). A new store
    /// creates the directory if needed; a restart creates no directory. The
    /// check comes before recovery writes anything (the cut of a torn
    /// tail, a new segment, removals), so a refused opening changes
    /// nothing.
    ///
    /// - Throws: ``RaftStorageError``: `.missingLog` if `opening` is
    ///   `.existing` and the directory is missing or holds no log segment;
    ///   `.existingLog` if `opening` is `.new` and the log holds state;
    ///   `.locked` if another store holds the directory's lock;
    ///   `.io` if a file cannot be created, read, written or synced;
    ///   `.corrupt`, `.unsupportedVersion` or `.missingSegment` for bad
    ///   data, naming the file and the offset.
    public init(directory: String, opening: Opening, options: Options = Options()) throws(RaftStorageError) {
        self.directory = directory
        self.options = options
        var parentSyncs = 0
        if opening == .new {
            do throws(DurableFileError) {
                // So that a power loss cannot take the directory away once
                // the replica has answered from the log in it: its parent
                // is synced (it may have been created just before, by
                // someone else), and so is the parent of every directory
                // created on the way to it.
                if options.sync {
                    parentSyncs = try DurableFile.makeDirectoryDurably(directory)
                } else {
                    try DurableFile.makeDirectory(directory)
                }
            } catch {
                throw RaftStorageError(error)
            }
        }
        do throws(DurableFileError) {
            lock = try DirectoryLock(directory)
        } catch {
            if opening == .existing, error.errno == ENOENT {
                throw Self.missingLog(in: directory, "there is no directory")
            }
            if error.isLockHeld {
                throw RaftStorageError(
                    .locked, file: directory,
                    detail: "another store holds the directory's lock: a replica in another process runs on it, "
                        + "or a store opened on it in this process is still in use (a store's lock is released "
                        + "with the store)")
            }
            throw RaftStorageError(error)
        }
        // Reading changes nothing: a refused opening leaves every file as
        // it was.
        let recovery = try WALRecovery(directory: directory)
        try Self.check(recovery, opening: opening)
        hardState = recovery.hardState
        snapshot = recovery.snapshot
        stored = recovery.stored
        truncatedBytes = recovery.truncatedBytes
        syncCount = parentSyncs
        if let last = recovery.segments.last, let file = recovery.lastSegmentFile {
            closedSegments = recovery.segments.dropLast()
            active = ActiveSegment(segment: last, file: file, size: recovery.lastSegmentSize)
            try io { () throws(DurableFileError) in
                if truncatedBytes > 0 { try file.truncate(to: recovery.lastSegmentSize) }
                // The last segment is synced before the replica acts on it,
                // even with nothing cut: a process that crashed between
                // writing a record and syncing it left the record in the
                // page cache, where recovery read it, and the replica would
                // answer from it (a repeated vote request for the candidate
                // it names changes nothing, so it is granted with no sync of
                // its own) while a power loss could still take it: two
                // votes in one term.
                if options.sync {
                    try file.synchronizeData()
                    syncCount += 1
                }
                // A crash between a segment's rename and the directory sync
                // after it leaves a segment whose name may not be durable:
                // synced now, before the replica acts on what the log holds
                // and writes more to it.
                if options.sync {
                    try DurableFile.synchronizeDirectory(directory)
                    syncCount += 1
                }
            }
        } else {
            let segment = WALSegment(sequence: 1, header: WALSegment.Header(firstIndex: 1, previousTerm: 0))
            let first = WALRecord(entries: [], hardState: recovery.hardState)
            let contents = segment.header.bytes + (try Self.frame(first, salt: segment.header.salt, in: directory))
            closedSegments = []
            do throws(DurableFileError) {
                active = try Self.createSegment(segment, contents: contents, in: directory, sync: options.sync)
            } catch {
                throw RaftStorageError(error)
            }
            bytesWritten = contents.count
            syncCount += options.sync ? 2 : 0
        }
        if let snapshot, stored.term(at: snapshot.index) != snapshot.term {
            // A crash between saving the snapshot and restarting the log.
            try restartLog(after: snapshot)
        }
        try removeFiles(recovery.obsoleteFiles + recovery.supersededSegments)
        // Superseded segments stay gone, as after startSegment(_:record:restartsLog:).
        if options.sync, !recovery.supersededSegments.isEmpty {
            try io { () throws(DurableFileError) in try DurableFile.synchronizeDirectory(directory) }
            syncCount += 1
        }
    }

    /// Refuses a `recovery` that `opening` cannot open (see ``Opening``).
    private static func check(_ recovery: WALRecovery, opening: Opening) throws(RaftStorageError) {
        switch opening {
        case .new where recovery.holdsState:
            throw RaftStorageError(
                .existingLog, file: recovery.directory,
                detail: "the log there holds state (term \(recovery.hardState.term), entries through "
                    + "\(recovery.stored.lastIndex)\(recovery.snapshot == nil ? "" : ", a snapshot")): the replica has "
                    + "run before, so open its log as existing, or the directory belongs to another replica")
        case .existing where recovery.segments.isEmpty:
            throw missingLog(in: recovery.directory, "the directory holds no log segment")
        case .new, .existing:
            break
        }
    }

    /// The error of a restart that finds no log in `directory`, and why.
    private static func missingLog(in directory: String, _ reason: String) -> RaftStorageError {
        RaftStorageError(
            .missingLog, file: directory,
            detail: "no Raft log (\(reason)). If this replica's log was lost, do not start it on a new one in its "
                + "place: it could vote twice in a term and help lose a committed entry. Bring its files back if "
                + "they were moved (an older copy of them is no better: its vote may be stale), or keep the "
                + "replica down: the group runs on while a majority of it is up")
    }

    // MARK: Reads

    /// The first entry held.
    public var firstIndex: UInt64 { stored.firstIndex }

    /// The index of the last entry (`firstIndex - 1` when empty).
    public var lastIndex: UInt64 { stored.lastIndex }

    /// The term at `index`, for `firstIndex - 1 ... lastIndex`.
    public func term(at index: UInt64) -> UInt64? { stored.term(at: index) }

    /// The entries `start ... end` clamped to what is held, at least one,
    /// then as many as fit in `maximumBytes`.
    public func entries(from start: UInt64, through end: UInt64, maximumBytes: Int) -> [RaftEntry] {
        stored.entries(from: start, through: end, maximumBytes: maximumBytes)
    }

    // MARK: Writes

    /// Appends one record of `entries` and `hardState`, and syncs it;
    /// replaces the entries from the first one's index on. A change of the
    /// commit index alone is kept for the next record (see above).
    ///
    /// - Throws: ``RaftStorageError``: `.invalidArgument` for entries not
    ///   numbered one after another, starting past `lastIndex + 1` or at or
    ///   below `firstIndex - 1`, or too large for one record; `.io` if a
    ///   write or sync fails (the store must then not be used again).
    public func persist(_ entries: [RaftEntry], hardState: RaftHardState?) throws(RaftStorageError) {
        try checkOpen()
        guard stored.accepts(entries) else {
            throw RaftStorageError(
                .invalidArgument, file: directory,
                detail: "entries from \(entries.first?.index ?? 0) not numbered one after another "
                    + "from \(firstIndex) ... \(lastIndex + 1)")
        }
        guard !entries.isEmpty || hardState != nil else { return }
        let updated = hardState ?? self.hardState
        // A change of the commit index alone waits for the next record
        // (see above), even when the segment is full.
        guard !entries.isEmpty || updated.term != self.hardState.term || updated.votedFor != self.hardState.votedFor
        else {
            self.hardState = updated
            return
        }
        let first = entries.first?.index ?? lastIndex + 1
        if active.size >= options.segmentSize || first < active.segment.header.firstIndex {
            let header = WALSegment.Header(firstIndex: first, previousTerm: stored.term(at: first - 1) ?? 0)
            try startSegment(header, record: WALRecord(entries: entries, hardState: updated), restartsLog: false)
        } else {
            let record = try Self.frame(
                WALRecord(entries: entries, hardState: updated), salt: active.segment.header.salt, in: directory)
            try io { () throws(DurableFileError) in
                try active.file.append(record)
                active.size += record.count
                bytesWritten += record.count
                try synchronizeActive()
            }
        }
        stored.replaceSuffix(with: entries)
        self.hardState = updated
    }

    /// Writes `snapshot` atomically and removes the previous one; restarts
    /// the log after it if the log does not hold its last entry.
    ///
    /// - Throws: ``RaftStorageError`` `.io` if a write, sync, rename or
    ///   removal fails (the store must then not be used again).
    public func saveSnapshot(_ snapshot: RaftSnapshot) throws(RaftStorageError) {
        try checkOpen()
        let previous = self.snapshot
        try RaftStorageError.checkFollows(snapshot, previous, file: directory)
        let name = StorageFileName.snapshot(index: snapshot.index, term: snapshot.term)
        let contents = SnapshotFile.encode(snapshot)
        try io { () throws(DurableFileError) in
            let file = try DurableFile(path: path(name + StorageFileName.temporarySuffix), truncating: true)
            try file.append(contents)
            bytesWritten += contents.count
            if options.sync { try file.synchronizeData() }
            try file.rename(to: path(name))
            if options.sync { try DurableFile.synchronizeDirectory(directory) }
            syncCount += options.sync ? 2 : 0
        }
        self.snapshot = snapshot
        if let previous, StorageFileName.snapshot(index: previous.index, term: previous.term) != name {
            try removeFiles([StorageFileName.snapshot(index: previous.index, term: previous.term)])
        }
        if stored.term(at: snapshot.index) != snapshot.term {
            try restartLog(after: snapshot)
        }
    }

    /// Removes the segments whose entries are all at or below `index` and
    /// the snapshot's index (never the segment being appended to).
    ///
    /// - Throws: ``RaftStorageError`` `.io` if a removal fails.
    public func compact(through index: UInt64) throws(RaftStorageError) {
        try checkOpen()
        let limit = min(index, snapshot?.index ?? 0, lastIndex)
        var removable = 0
        while removable < closedSegments.count {
            let next = removable + 1 < closedSegments.count ? closedSegments[removable + 1] : active.segment
            guard next.header.firstIndex - 1 <= limit else { break }
            removable += 1
        }
        guard removable > 0 else { return }
        let removed = closedSegments.prefix(removable).map(\.name)
        closedSegments.removeFirst(removable)
        stored.removePrefix(through: (closedSegments.first ?? active.segment).header.firstIndex - 1)
        try removeFiles(removed)
    }

    /// Releases the directory's lock, so that a new store may open the
    /// directory in this process (a replica restarted in place); the store
    /// then writes nothing more: ``persist(_:hardState:)``,
    /// ``saveSnapshot(_:)`` and ``compact(through:)`` throw
    /// ``RaftStorageError/Code/closed``. Reads go on answering from memory.
    /// Releasing the store releases the lock too; a process that ends
    /// releases it however it ends. Stop the node that uses the store
    /// first.
    public func close() {
        lock = nil
    }

    private func checkOpen() throws(RaftStorageError) {
        guard lock != nil else {
            throw RaftStorageError(.closed, file: directory, detail: "the store was closed and writes nothing more")
        }
        if let failure {
            throw RaftStorageError(
                failure.code, file: failure.file,
                detail: "an earlier call failed and the store writes nothing more (reopen it): \(failure.detail)")
        }
    }

    // MARK: Segments

    /// Starts a segment at the snapshot's index + 1 whose first record
    /// carries the hard state alone, and drops every entry.
    private func restartLog(after snapshot: RaftSnapshot) throws(RaftStorageError) {
        let header = WALSegment.Header(firstIndex: snapshot.index + 1, previousTerm: snapshot.term)
        try startSegment(header, record: WALRecord(entries: [], hardState: hardState), restartsLog: true)
        stored.reset(after: snapshot.index, term: snapshot.term)
    }

    /// Makes a segment with `header` and `record` the active one. It
    /// supersedes every segment if it `restartsLog`, else those starting at
    /// or after its first index; they are removed.
    private func startSegment(_ header: WALSegment.Header, record: WALRecord, restartsLog: Bool) throws(RaftStorageError) {
        let segment = WALSegment(sequence: active.segment.sequence + 1, header: header)
        let contents = header.bytes + (try Self.frame(record, salt: header.salt, in: directory))
        let previous = active.segment
        try io { () throws(DurableFileError) in
            active = try Self.createSegment(segment, contents: contents, in: directory, sync: options.sync)
        }
        bytesWritten += contents.count
        syncCount += options.sync ? 2 : 0
        var superseded: [String] = []
        closedSegments = (closedSegments + [previous]).filter { old in
            let kept = !restartsLog && old.header.firstIndex < header.firstIndex
            if !kept { superseded.append(old.name) }
            return kept
        }
        guard !superseded.isEmpty else { return }
        // Newest first: a crash between two removals leaves the oldest
        // superseded segments, which the log still replays past (removed
        // oldest first, the next one left would start after a gap, and
        // the log would not open).
        try removeFiles(superseded.reversed())
        // Superseded segments must stay gone before a compaction removes
        // the ones below them: one brought back by a crash that kept the
        // later removals would start after a gap, and the log would not
        // open (.missingSegment).
        if options.sync {
            try io { () throws(DurableFileError) in try DurableFile.synchronizeDirectory(directory) }
            syncCount += 1
        }
    }

    /// Writes `contents` (a header and a record) to a temporary file, syncs
    /// it (when `sync`), renames it to `segment`'s name and syncs the
    /// directory (when `sync`).
    private static func createSegment(
        _ segment: WALSegment, contents: [UInt8], in directory: String, sync: Bool
    ) throws(DurableFileError) -> ActiveSegment {
        let path = directory + "/" + segment.name
        let file = try DurableFile(path: path + StorageFileName.temporarySuffix, truncating: true)
        try file.append(contents)
        if sync { try file.synchronizeData() }
        try file.rename(to: path)
        if sync { try DurableFile.synchronizeDirectory(directory) }
        return ActiveSegment(segment: segment, file: file, size: contents.count)
    }

    /// `fdatasync` of the active segment, when syncing.
    private func synchronizeActive() throws(DurableFileError) {
        guard options.sync else { return }
        try active.file.synchronizeData()
        syncCount += 1
    }

    // MARK: Helpers

    private func path(_ name: String) -> String { directory + "/" + name }

    private func removeFiles(_ names: [String]) throws(RaftStorageError) {
        try io { () throws(DurableFileError) in
            for name in names { try DurableFile.remove(path(name)) }
        }
    }

    /// Runs `body`, turning a failed system call into an `.io` error, which
    /// stops the store (``checkOpen()``).
    private func io<Value>(_ body: () throws(DurableFileError) -> Value) throws(RaftStorageError) -> Value {
        do throws(DurableFileError) {
            return try body()
        } catch {
            let failure = RaftStorageError(error)
            self.failure = failure
            throw failure
        }
    }

    /// `record`'s bytes, for a segment with `salt`.
    ///
    /// - Throws: ``RaftStorageError`` `.invalidArgument` if it is too large.
    private static func frame(_ record: WALRecord, salt: UInt64, in directory: String) throws(RaftStorageError) -> [UInt8] {
        guard let bytes = record.framed(salt: salt) else {
            throw RaftStorageError(
                .invalidArgument, file: directory,
                detail: "\(record.entries.count) entries exceed the \(WALRecord.maximumPayloadSize)-byte record limit")
        }
        return bytes
    }
}
