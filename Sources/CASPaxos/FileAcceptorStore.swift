#if canImport(Glibc)
import Glibc
#endif
import EventCore
import WireCodec

/// A durable ``AcceptorStore``: an append-only log of CRC32C-checksummed
/// batches of records in one file, rewritten (compacted) when it grows well
/// past the live state.
///
/// - The file starts with a 20-byte header: the magic `CASPXLOG`, the
///   format version (u32, little-endian) and a random salt (u64) that
///   every batch's checksum covers (see ``AcceptorLogBatch``), so that no
///   user value can pass for a batch.
/// - Format versions: this store creates logs in version 6 and reads 2 ...
///   6. Each version marks a log that may hold a record the builds before
///   it cannot read: version 3 the proposer's configuration
///   (``AcceptorWrite/proposerConfiguration(_:)``), version 4 a membership
///   change's fence (``AcceptorWrite/minimumVersion(_:)``), version 5 a
///   fence with its configuration's digest (a fence read from a version-4
///   log has none until a fence of its version with a digest arrives),
///   version 6 a register whose value names its parent
///   (``RegisterState/parent``; once a log holds one it stays at 6). An
///   older log
///   stays in its version (through compactions too) until the first
///   record it cannot hold: that sync rewrites the whole log in the
///   version the live state needs (a compaction) instead of appending, so
///   the older builds refuse it with
///   ``AcceptorStoreError/Code/unsupportedVersion(_:)``, not as corrupt.
///   (The few builds that introduced the configuration record wrote it
///   into version-2 logs.) Version 1, without the salt, is refused the
///   same way.
/// - ``apply(_:)`` encodes a record into a memory buffer; ``sync()`` appends
///   the buffer as one ``AcceptorLogBatch`` with `write(2)` and calls
///   `fdatasync(2)`, so the writes of several requests share one sync. A
///   buffer past 64 MiB (``maximumBatchPayload``; a batch's length field is
///   32 bits) is sealed into a batch of its own, each synced in turn.
/// - ``load()`` replays the file. Each batch is synced before the next is
///   written, so a crash can tear only the last one. A bad batch (cut
///   short, or failing its checksum) is that torn tail when nothing valid
///   follows it (its header claims to reach the end of the file or beyond,
///   and no whole batch starts anywhere after it) and it bears the marks
///   of a write cut short, as etcd's WAL asks of a torn entry: the file
///   ends inside it, or a piece of it between two 512-byte boundaries of
///   the file (a disk sector) is all zeros. Such a tail was never synced,
///   so never acknowledged: the file is truncated there and
///   ``truncatedBytes`` says how much went (a ``CASPaxosNode`` that loads
///   the store logs it as a warning). Any other bad batch (a whole
///   last batch failing its checksum with no sector of zeros was written,
///   perhaps synced and answered from, and damaged since), or a record
///   that does not parse inside a batch whose checksum matches, is
///   damage: ``load()`` throws ``AcceptorStoreError/Code/corrupt`` naming
///   the offset and drops nothing.
/// - Compaction (in ``sync()``, once the file passes
///   ``compactionThreshold`` and twice its size after the last compaction)
///   writes the live state, in batches of at most ``maximumBatchPayload``
///   bytes (and one record), to `<path>.compact`, syncs it,
///   renames it over the log and syncs the directory, so a crash at any
///   point leaves either the old log or the new one. ``load()`` syncs the
///   directory too, for a crash between the rename and that sync.
/// - Whether a log is expected is said when the store is opened
///   (``Opening``), and checked there: a new acceptor creates its log, a
///   restart must find it. An acceptor restarted on a new log in place of
///   a lost one would have forgotten its promises, and could let a lower
///   ballot overwrite a value it acknowledged; so a missing log is an
///   error (``AcceptorStoreError/Code/missingLog``), never a fresh start.
///   A log cut short before its header was synced (part of the header, or
///   zeros) never acknowledged anything: a first start creates the log
///   again over it, a restart refuses it as missing. A log holding only
///   its header acknowledged nothing either: both open it (and sync it and
///   its directory again), so a first start that ended before anything
///   was written may run again.
///
/// - One store per log: the store holds an exclusive `flock(2)` on its
///   log file from the initializer until ``close()`` or its release (a
///   compaction's new file is locked before it takes the log's name), so
///   a second store on the log, in another process or in this one, is
///   refused with ``AcceptorStoreError/Code/locked`` before it reads (one
///   that opened the log just before a compaction replaced it finds the
///   file it locked is no longer the log, and opens it again). On local
///   file systems only: `flock` does not exclude across NFS clients.
/// - A failed system call on the log (a read, write, sync, truncation or
///   rename) stops the store: every ``load()`` and ``sync()`` after it
///   throws that failure again, unmade. A compaction that cannot be
///   written does not (it leaves the log as it was; see ``sync()``). A sync tried
///   again after a failed one could succeed (Linux reports a failed
///   write-back once, then marks the pages clean) with the failed batches'
///   records missing from the log: it would acknowledge writes a restart
///   no longer has. Reopen the store instead.
/// - After a failed sync (the acceptor stops), Linux may keep the
///   unsynced batches in its page cache, marked clean: a restart before
///   the host restarts reads them as if they were on disk, and answers a
///   repeated prepare or accept from them with no sync of its own.
///   Restart the host, or drop its page cache, before restarting an
///   acceptor whose sync failed (PostgreSQL's "fsyncgate" rule).
///
/// Confined like the node that uses it: one thread at a time.
public final class FileAcceptorStore: AcceptorStore {
    /// Whether the acceptor (or the proposer's configuration) has a log at
    /// the path, as the operator knows and the file alone cannot say: a
    /// lost log and a first start look the same. ZooKeeper's `initialize`
    /// file and etcd's `--initial-cluster-state` answer the same question.
    ///
    /// Say it from what the operator knows (a flag given at the cluster's
    /// bootstrap and when an acceptor is added, a provisioning step), never
    /// from whether the file exists: that would start a lost log afresh,
    /// which is what this guards against.
    public enum Opening: Sendable {
        /// A first start: the cluster's bootstrap, or an acceptor that a
        /// membership change is adding. ``FileAcceptorStore/load()``
        /// creates the log; opening a file that holds more than a log's
        /// header throws ``AcceptorStoreError/Code/existingLog``.
        case new
        /// A restart: the log must be there. Opening a missing file, an
        /// empty one or one holding part of a header throws
        /// ``AcceptorStoreError/Code/missingLog``.
        case existing
    }

    /// What a file holds, as far as opening it goes.
    private enum Contents {
        /// No whole header, nothing acknowledged: an empty file, part of a
        /// header, or zeros (a creation cut short before its sync).
        case unstarted
        /// A log's header alone: created, never written to.
        case headerOnly
        /// More than a header: a log, or another file.
        case written
    }

    /// The log file's path.
    public let path: String
    /// The file size, in bytes, below which the log is never compacted.
    public let compactionThreshold: Int
    /// Bytes cut off the end of the file by the last ``load()``.
    public private(set) var truncatedBytes = 0
    /// Compactions done since the store was opened.
    public private(set) var compactionCount = 0
    /// Compactions that failed before the rewrite took the log's name
    /// (no room for a second copy of the state, say): the log stays as it
    /// was, whole, and the next try waits until it has doubled again.
    public private(set) var compactionFailures = 0
    /// After a failed compaction, the log size below which no other is
    /// tried (twice the size it failed at).
    private var compactionDeferredBelow = 0
    /// Syncs done since the store was opened: `fdatasync` of the log (or
    /// of a rewrite) and `fsync` of its directory, each counting one.
    public private(set) var syncCount = 0
    /// The log's current size in bytes (synced records only).
    public private(set) var fileSize = 0
    /// The payload past which buffered records are sealed into a batch of
    /// their own: 64 MiB, so that no batch nears the 4 GiB its length field
    /// can say (a record, a key and a value, is far smaller).
    let maximumBatchPayload: Int

    /// The file's first 8 bytes, then the format version, then the salt.
    private static let magic: [UInt8] = Array("CASPXLOG".utf8)
    /// The format version of the logs this store creates.
    static let formatVersion: UInt32 = 6
    /// The format versions it reads.
    static let readableVersions: ClosedRange<UInt32> = 2...6
    static let headerSize = 20
    /// The log, locked (``DurableFile/lock()``) until ``close()`` or the
    /// store's release.
    private var file: DurableFile
    private var isClosed = false
    /// The first system call that failed: the store writes nothing more.
    private var failure: AcceptorStoreError?
    /// Whether ``load()`` creates the log (``Opening/new``, until it has).
    private var opening: Opening
    /// The file's bytes as the initializer read them, for the first
    /// ``load()``.
    private var openedBytes: [UInt8]?
    private var state = AcceptorSnapshot()
    /// The records applied since the last sync, in batches salted with the
    /// log's salt (known once the log is loaded or created).
    private var pending: AcceptorLogBatch.Writer
    private var sizeAfterCompaction = 0
    /// The format version of the log in use.
    private var logVersion = formatVersion
    /// The oldest format version that can hold the live state (see the
    /// type's doc): that of the records a compaction writes beside the
    /// registers.
    private var neededVersion: UInt32 {
        var version: UInt32 = 2
        if let quorums = state.proposerConfiguration {
            version = max(version, AcceptorRecord.formatVersion(of: .proposerConfiguration(quorums)))
        }
        if state.minimumVersion != .zero {
            version = max(version, AcceptorRecord.formatVersion(of: .minimumVersion(state.minimumVersion)))
        }
        return holdsParents ? max(version, 6) : version
    }
    /// Whether a register with a parent was applied since the store opened
    /// (not cleared when that register goes: scanning the registers at
    /// every sync would cost more than keeping version 6). A log read in
    /// version 6 keeps it through ``logVersion``.
    private var holdsParents = false
    /// The oldest format version that can hold the records buffered since
    /// the last sync (a fence with a digest needs 5 even once a later
    /// fence without one replaced it in the live state).
    private var pendingVersion: UInt32 = 2
    /// Whether the live state or a buffered record holds what the log's
    /// version cannot (a configuration in a version-2 log, a fence in a
    /// version-3 one, a fence's digest in a version-4 one): the next sync
    /// rewrites the log (the live state, in the version it needs) instead
    /// of appending.
    private var needsNewerVersion: Bool { logVersion < max(neededVersion, pendingVersion) }

    /// Opens the log at `path`: a new one (``Opening/new``, created by
    /// ``load()``) or the one the acceptor left (``Opening/existing``), and
    /// checks that the file holds what `opening` says. Call ``load()``
    /// before the first write.
    ///
    /// A new store creates the log's directory and any missing parent
    /// (mode 0755, as Raft's `FileRaftStorage` does), and syncs the parent of
    /// each directory it created and the log directory's own parent; a
    /// restart creates no directory.
    ///
    /// - Parameter compactionThreshold: bytes, default 4 MiB.
    /// - Throws: ``AcceptorStoreError``: `.missingLog` if `opening` is
    ///   `.existing` and the file is missing, empty or holds no more than
    ///   part of a header; `.existingLog` if `opening` is `.new` and the
    ///   file holds more than a header; `.locked` if another store holds
    ///   the log's lock; `.io` if the file cannot be opened or read.
    public convenience init(path: String, opening: Opening, compactionThreshold: Int = 4 << 20)
        throws(AcceptorStoreError)
    {
        try self.init(
            path: path, opening: opening, compactionThreshold: compactionThreshold, maximumBatchPayload: 64 << 20)
    }

    /// ``init(path:opening:compactionThreshold:)`` with another batch size
    /// (tests).
    init(path: String, opening: Opening, compactionThreshold: Int, maximumBatchPayload: Int)
        throws(AcceptorStoreError)
    {
        self.path = path
        self.opening = opening
        self.compactionThreshold = compactionThreshold
        self.maximumBatchPayload = maximumBatchPayload
        pending = AcceptorLogBatch.Writer(maximumPayload: maximumBatchPayload, capacity: 4_096, salt: 0)
        let bytes: [UInt8]
        var parentSyncs = 0
        do throws(DurableFileError) {
            if opening == .new {
                // The log's directory, and every directory made on the way
                // to it, are made durable before the log is written to:
                // each one's parent is synced, the log's directory's own
                // too (it may have been made just before, by someone else,
                // as FileRaftStorage assumes). The log's directory is
                // synced when ``load()`` creates the log.
                parentSyncs = try DurableFile.makeDirectoryDurably(DurableFile.directory(of: path))
            }
            // A store compacting the log renames a new file over it, locked
            // first: one opened just before may get its lock only once it
            // is no longer the log. Opened again, the log is the store's
            // new file, and the lock is refused.
            var opened: DurableFile
            var attempts = 0
            repeat {
                guard attempts < 3 else { throw DurableFileError.lockHeld(path) }
                opened = try DurableFile(path: path, creating: opening == .new)
                attempts += 1
            } while try !opened.lock()
            file = opened
            bytes = try file.readAll()
        } catch {
            if error.errno == ENOENT, opening == .existing {
                throw Self.missingLog(at: path, "there is no file")
            }
            if error.isLockHeld {
                throw AcceptorStoreError(
                    .locked,
                    detail: "another store holds the lock of \(path): an acceptor in another process runs on it, or "
                        + "a store opened on it in this process is still in use (a store's lock is released with "
                        + "the store, or by close())")
            }
            throw AcceptorStoreError(error)
        }
        try check(Self.contents(of: bytes), size: bytes.count)
        openedBytes = bytes
        syncCount = parentSyncs
    }

    /// What `bytes`, a whole file, hold.
    private static func contents(of bytes: [UInt8]) -> Contents {
        if bytes.count <= headerSize && bytes.allSatisfy({ $0 == 0 })
            || bytes.count < headerSize
                && readableVersions.contains(where: { version in
                    zip(bytes, header(version: version, salt: 0).dropLast(8)).allSatisfy(==)
                })
        {
            return .unstarted
        }
        return bytes.count == headerSize && bytes.starts(with: magic) ? .headerOnly : .written
    }

    /// Refuses a file of `size` bytes holding `contents` that ``opening``
    /// cannot open (see ``Opening``).
    private func check(_ contents: Contents, size: Int) throws(AcceptorStoreError) {
        switch (opening, contents) {
        case (.new, .written):
            throw AcceptorStoreError(
                .existingLog,
                detail: "\(path) holds \(size) bytes, more than a new log's header: the acceptor has run before, so open its log as existing, or the path names another file")
        case (.existing, .unstarted):
            throw Self.missingLog(
                at: path, size == 0 ? "the file is empty" : "the file holds \(size) bytes of a header cut short")
        case (.new, _), (.existing, _):
            break
        }
    }

    /// The error of a restart that finds no log at `path`, and why.
    private static func missingLog(at path: String, _ reason: String) -> AcceptorStoreError {
        AcceptorStoreError(
            .missingLog,
            detail: "no log at \(path) (\(reason)). If this acceptor's log was lost, do not start it on a new one in its place: remove it by a membership change, then add it back on a new log. (A proposer's lost configuration store may start on a new log with the cluster's current configuration.)")
    }

    /// Creates the log (``Opening/new``) or replays it (truncating a torn
    /// tail), and returns the state.
    ///
    /// - Throws: ``AcceptorStoreError``: `.io` if the file cannot be read,
    ///   written or truncated; `.missingLog` or `.existingLog` as the
    ///   initializer, if the file changed since; `.corrupt` (naming the
    ///   offset) if the file does not start with the store's magic or is
    ///   damaged before its tail; `.unsupportedVersion` for another format
    ///   version.
    public func load() throws(AcceptorStoreError) -> AcceptorSnapshot {
        try checkOpen()
        let bytes: [UInt8]
        if let opened = openedBytes {
            bytes = opened
            openedBytes = nil
        } else {
            bytes = try io { () throws(DurableFileError) in try file.readAll() }
        }
        state = AcceptorSnapshot()
        truncatedBytes = 0
        let contents = Self.contents(of: bytes)
        try check(contents, size: bytes.count)
        if contents == .unstarted {
            let salt = UInt64.random(in: .min ... .max)
            let header = Self.header(version: Self.formatVersion, salt: salt)
            // Its directory entry is made durable too, or a power loss could
            // take the whole file, and every promise it is about to hold,
            // with it.
            try io { () throws(DurableFileError) in
                if !bytes.isEmpty { try file.truncate(to: 0) }
                try file.append(header)
                try file.synchronizeData()
                try DurableFile.synchronizeDirectory(of: path)
            }
            syncCount += 2
            startLog(size: header.count, version: Self.formatVersion, salt: salt)
            opening = .existing
            return state
        }
        guard bytes.count >= Self.headerSize, bytes.starts(with: Self.magic) else {
            throw AcceptorStoreError(.corrupt, detail: "\(path) is not a CASPaxos acceptor log (offset 0)")
        }
        var version = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
        // Version 1 had no version field: its first batch's marker stood here.
        if version == AcceptorLogBatch.marker { version = 1 }
        guard Self.readableVersions.contains(version) else {
            throw AcceptorStoreError(
                .unsupportedVersion(version),
                detail: "\(path) is in format version \(version); this store reads \(Self.readableVersions) (offset 8)")
        }
        let salt = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 12, as: UInt64.self)) }
        let end = try bytes.withUnsafeBytes { raw in
            Result { () throws(AcceptorStoreError) in try replay(raw, salt: salt) }
        }.get()
        truncatedBytes = bytes.count - end
        try io { () throws(DurableFileError) in
            if end < bytes.count { try file.truncate(to: end) }
            // The log is synced before the acceptor answers from it, even
            // with nothing cut: a process that crashed between writing a
            // batch and syncing it left the batch in the page cache, where
            // this replay read it, and a repeated prepare or accept changes
            // nothing, so it is answered with no sync of its own; a power
            // loss could then take a promise or a value already answered
            // for. (Likewise a log created by a start that ended before its
            // syncs.)
            try file.synchronizeData()
            // A crash between a compaction's rename and the directory sync
            // after it leaves the log's name not yet durable: synced before
            // the acceptor answers from the log, or a power loss could bring
            // back the log from before the compaction without the promises
            // made since.
            try DurableFile.synchronizeDirectory(of: path)
        }
        syncCount += 2
        startLog(size: end, version: version, salt: salt)
        // Created or found, the log is there for the next load.
        opening = .existing
        return state
    }

    /// A log's header, in format `version`, with `salt` (package-visible
    /// for the log fuzz target).
    package static func header(version: UInt32, salt: UInt64) -> [UInt8] {
        var writer = WireWriter(capacity: headerSize)
        magic.withUnsafeBytes { writer.writeRawBytes($0) }
        writer.writeUInt32(version)
        writer.writeUInt64(salt)
        return writer.takeBytes()
    }

    /// The log in use is `size` bytes long, in format `version`, salted
    /// with `salt`.
    private func startLog(size: Int, version: UInt32, salt: UInt64) {
        fileSize = size
        sizeAfterCompaction = size
        compactionDeferredBelow = 0
        logVersion = version
        pending = AcceptorLogBatch.Writer(maximumPayload: maximumBatchPayload, capacity: 4_096, salt: salt)
        pendingVersion = 2
    }

    /// Applies every whole batch of `log` to ``state``; returns where the
    /// valid log ends (the start of a torn tail, or the end of the file).
    private func replay(_ log: UnsafeRawBufferPointer, salt: UInt64) throws(AcceptorStoreError) -> Int {
        var offset = Self.headerSize
        while offset < log.count {
            let rest = UnsafeRawBufferPointer(rebasing: log[offset...])
            switch AcceptorLogBatch.check(rest, salt: salt) {
            case .valid(let payload, let length):
                var reader = WireReader(UnsafeRawBufferPointer(rebasing: rest[payload]), limits: AcceptorRecord.replayLimits)
                do throws(WireError) {
                    while !reader.isAtEnd { try AcceptorRecord.read(from: &reader, into: &state) }
                } catch {
                    throw AcceptorStoreError(
                        .corrupt, detail: "\(path): a checksummed batch at offset \(offset) does not parse: \(error)")
                }
                offset += length
            case .bad(let claimedEnd):
                if let next = AcceptorLogBatch.firstValid(after: rest, salt: salt) {
                    throw AcceptorStoreError(
                        .corrupt,
                        detail: "\(path): the batch at offset \(offset) is bad and a valid one follows at offset \(offset + next)")
                }
                // A write a crash cut short ends the file inside the batch,
                // or left zeros where its data never reached the disk (its
                // length field among them, perhaps: then it claims to end
                // early). A batch that bears neither mark (or bytes with no
                // marker and no zeros) was written and damaged since: it
                // may hold a promise an answer relied on.
                let end = min(claimedEnd ?? rest.count, rest.count)
                let isTorn =
                    rest.count < AcceptorLogBatch.headerSize || claimedEnd ?? 0 > rest.count
                    || DurableFile.holdsZeroSector(UnsafeRawBufferPointer(rebasing: rest[..<end]), at: offset)
                guard isTorn else {
                    let what = end < rest.count
                        ? "the batch at offset \(offset) fails its checksum and \(rest.count - end) bytes follow it"
                        : "the last \(rest.count) bytes, from offset \(offset), fail the batch checksum with no mark of a torn write (cut short, or a sector of zeros): damaged after they were written, or not written by this store"
                    throw AcceptorStoreError(.corrupt, detail: "\(path): \(what)")
                }
                return offset
            }
        }
        return offset
    }

    /// Buffers the record of `write`; durable after the next ``sync()``.
    public func apply(_ write: AcceptorWrite) {
        state.apply(write)
        pending.append(write)
        let version = AcceptorRecord.formatVersion(of: write)
        pendingVersion = max(pendingVersion, version)
        if version == 6 { holdsParents = true }
    }

    /// Writes the buffered records and syncs them to disk; compacts the log
    /// when it has grown enough.
    ///
    /// - Throws: ``AcceptorStoreError`` with code `.io` if a write, a sync
    ///   or the compaction's rename fails.
    public func sync() throws(AcceptorStoreError) {
        try checkOpen()
        if needsNewerVersion {
            // The live state holds the pending records: the rewrite, in the
            // version the live state needs, carries them.
            return try io { () throws(DurableFileError) in try install(try writeRewrite()) }
        }
        let batches = pending.takeBatches()
        pendingVersion = 2
        guard !batches.isEmpty else { return }
        // One sync per batch: only the last batch of the log can be torn.
        for batch in batches {
            try io { () throws(DurableFileError) in
                try file.append(batch)
                try file.synchronizeData()
            }
            syncCount += 1
            fileSize += batch.count
        }
        if fileSize > compactionThreshold, fileSize > 2 * sizeAfterCompaction, fileSize > compactionDeferredBelow {
            // Best effort: the batches are durable in the log as it is, so
            // a rewrite that cannot be made does not fail the sync (nor stop
            // the acceptor); it is tried again once the log has doubled
            // once more.
            if try rewriteLog() != nil { compactionDeferredBelow = 2 * fileSize }
        }
    }

    /// Syncs the records buffered, then rewrites the log to the live state
    /// at once, whatever its size, as a sync does once the log has doubled
    /// since its last compaction: for instance after garbage collection
    /// removed many keys, whose removals only lengthen the log until then
    /// (and a restart counts the doubling from the size it loaded). Call
    /// it where the node calls the store (on its loop).
    ///
    /// - Throws: ``AcceptorStoreError`` with code `.io` if the buffered
    ///   records cannot be synced (the store then stops, as for a failed
    ///   ``sync()``), or if the rewrite cannot be written or take the
    ///   log's name: then the log in use stays the old one, whole, and the
    ///   store goes on (counted in ``compactionFailures``); `.closed`.
    public func compact() throws(AcceptorStoreError) {
        let compactions = compactionCount
        try sync()
        guard compactionCount == compactions else { return }
        if let failure = try rewriteLog() { throw AcceptorStoreError(failure) }
    }

    /// Writes the live state to a new log and gives it the log's name.
    /// Returns nil once it is in use, or the error of a rewrite that could
    /// not be written or renamed: counted in ``compactionFailures``, the
    /// log in use staying the old one. Throws (stopping the store) only if
    /// the directory cannot be synced after the rename (``adopt(_:)``).
    private func rewriteLog() throws(AcceptorStoreError) -> DurableFileError? {
        let rewrite: Rewrite
        do throws(DurableFileError) {
            rewrite = try writeRewrite()
            try rename(rewrite)
        } catch {
            compactionFailures += 1
            return error
        }
        try io { () throws(DurableFileError) in try adopt(rewrite) }
        return nil
    }

    /// Releases the log's lock, so that a new store may open the log in
    /// this process (an acceptor restarted in place); the store then
    /// writes nothing more: ``load()`` and ``sync()`` throw
    /// ``AcceptorStoreError/Code/closed``. Releasing the store releases the
    /// lock too; a process that ends releases it however it ends. Stop the
    /// node that uses the store first.
    public func close() {
        file.unlock()
        isClosed = true
    }

    private func checkOpen() throws(AcceptorStoreError) {
        guard !isClosed else { throw AcceptorStoreError(.closed, detail: "the store of \(path) was closed") }
        if let failure {
            throw AcceptorStoreError(
                failure.code, detail: "an earlier call failed and the store writes nothing more (reopen it): \(failure.detail)")
        }
    }

    /// The live state written and synced to a new file beside the log (its
    /// name with `.compact`), with a new salt, for ``install(_:)``. Each
    /// batch goes to the file as it is sealed, so the rewrite holds one
    /// batch in memory beside the state, not an encoded copy of the state.
    private func writeRewrite() throws(DurableFileError) -> Rewrite {
        let salt = UInt64.random(in: .min ... .max)
        // A newer version only for a log that needs it (see the type's doc).
        let version = max(logVersion, neededVersion)
        let rewritePath = path + ".compact"
        do throws(DurableFileError) {
            let fresh = try DurableFile(path: rewritePath, truncating: true)
            // Locked before it takes the log's name, so no other store can
            // open the log unlocked.
            guard try fresh.lock() else { throw DurableFileError.lockHeld(fresh.path) }
            var size = 0
            func write(_ batches: [[UInt8]]) throws(DurableFileError) {
                for batch in batches {
                    try fresh.append(batch)
                    size += batch.count
                }
            }
            try write([Self.header(version: version, salt: salt)])
            var writer = AcceptorLogBatch.Writer(
                maximumPayload: maximumBatchPayload, capacity: min(sizeAfterCompaction, maximumBatchPayload),
                salt: salt)
            // The floor alone, for the removals that raised it.
            writer.append(.removalFloor(state.removalFloor))
            if let quorums = state.proposerConfiguration { writer.append(.proposerConfiguration(quorums)) }
            if state.minimumVersion != .zero { writer.append(.minimumVersion(state.minimumVersion)) }
            for (proposer, age) in state.minimumAges { writer.append(.minimumAge(proposer: proposer, age: age)) }
            for (key, register) in state.table {
                writer.append(.register(key: key.bytes, state: register))
                try write(writer.takeSealedBatches())
            }
            try write(writer.takeBatches())
            // A batch of its own after the state, repeating the floor: until
            // the next append the state would be the log's last batch, and
            // damage to it would read as a torn tail, cut off with every
            // promise in it; followed by a valid batch, it reads as
            // corruption, refused.
            writer.append(.removalFloor(state.removalFloor))
            try write(writer.takeBatches())
            try fresh.synchronizeData()
            syncCount += 1
            return Rewrite(file: fresh, size: size, version: version, salt: salt)
        } catch {
            // What it wrote would keep the room it took (on a full disk the
            // next append would fail too).
            try? DurableFile.remove(rewritePath)
            throw error
        }
    }

    /// A rewrite of the log by ``writeRewrite()``, synced, not yet in use.
    private struct Rewrite {
        var file: DurableFile
        var size: Int
        var version: UInt32
        var salt: UInt64
    }

    /// Renames `rewrite` over the log (``rename(_:)``), then uses it
    /// (``adopt(_:)``).
    private func install(_ rewrite: Rewrite) throws(DurableFileError) {
        try rename(rewrite)
        try adopt(rewrite)
    }

    /// Gives `rewrite` the log's name; removes it if that fails (the old
    /// log stays in use).
    private func rename(_ rewrite: Rewrite) throws(DurableFileError) {
        do throws(DurableFileError) {
            try rewrite.file.rename(to: path)
        } catch {
            try? DurableFile.remove(rewrite.file.path)
            throw error
        }
    }

    /// Uses `rewrite`, renamed over the log, from now on, and syncs the
    /// directory. A failure of the directory sync leaves the new log in use
    /// but its name perhaps not durable: it fails the sync, and the acceptor
    /// stops rather than answer from it.
    private func adopt(_ rewrite: Rewrite) throws(DurableFileError) {
        file = rewrite.file
        startLog(size: rewrite.size, version: rewrite.version, salt: rewrite.salt)
        compactionCount += 1
        try DurableFile.synchronizeDirectory(of: path)
        syncCount += 1
    }

    /// Runs `body`, turning a failed system call into an `.io` error, which
    /// stops the store (``checkOpen()``).
    private func io<Value>(_ body: () throws(DurableFileError) -> Value) throws(AcceptorStoreError) -> Value {
        do throws(DurableFileError) {
            return try body()
        } catch {
            let failure = AcceptorStoreError(error)
            self.failure = failure
            throw failure
        }
    }
}

extension AcceptorStoreError {
    /// An `.io` error for a failed system call: the call, the path and
    /// `errno`.
    init(_ failure: DurableFileError) {
        self.init(.io, detail: failure.description)
    }
}
