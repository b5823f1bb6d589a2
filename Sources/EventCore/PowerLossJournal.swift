#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A model of what a power loss could leave of the files under one
/// directory, fed by every ``DurableFile`` call on them, for the tests of
/// the durable stores: they cut the power after any call, write one state
/// the disk could then hold (``restore(seed:)``), and check that the store
/// recovers every write it acknowledged. A sync a store leaves out, or
/// makes in the wrong order, shows there as a lost write.
///
/// The model promises what Linux file systems promise, and no more:
/// - a file's data and size are durable at its ``DurableFile/synchronizeData()``.
///   Of what it was given since, a crash keeps the changes in order up to
///   a point, the last write there perhaps in part, and any 512-byte
///   sector of the bytes written since may read as zeros (written back
///   out of order, or never: the size reached the disk, the data not);
/// - a directory's entries (a file created, renamed, unlinked, a directory
///   made) are durable at the directory's ``DurableFile/synchronizeDirectory(_:)``.
///   A crash keeps the changes since in order up to a point (ext4 and XFS
///   commit their metadata journal in order); a rename is one change.
///
/// A journal covers the files under `root`, taking what it holds when it
/// starts as durable: ``DurableFile`` records its calls on them from then
/// on, and nothing else (several journals, on disjoint roots, may run at
/// once).
/// The power is cut after the `cutAfter`-th recorded call: the calls after
/// it still run, on the real files, but the model no longer sees them, and
/// ``restore(seed:)`` replaces the files with a state of the model. A call
/// that fails is not recorded (the stores stop at a failed sync). Before
/// the cut, the process may die and start again, the power on
/// (``crashProcess(afterCall:)``): what a store recovers then, from the
/// page cache, must be made durable before it is answered from.
package final class PowerLossJournal: Sendable {
    /// One file's contents: what was synced, and the changes since.
    private struct FileModel {
        enum Change {
            case append([UInt8])
            case truncate(Int)
        }

        var synced: [UInt8] = []
        var changes: [Change] = []
    }

    /// What a directory entry names: a file (its index in
    /// ``Model/files``) or a directory (its path in ``Model/directories``).
    private enum Entry: Equatable {
        case file(Int)
        case directory
    }

    private struct DirectoryModel {
        var synced: [String: Entry] = [:]
        var current: [String: Entry] = [:]
        /// The entry changes since the sync, each made at once (a rename
        /// changes two names): nil removes the name.
        var changes: [[(name: String, entry: Entry?)]] = []

        mutating func change(_ change: [(name: String, entry: Entry?)]) {
            for (name, entry) in change { current[name] = entry }
            changes.append(change)
        }

        /// The directory's fsync: its entries are durable as they are.
        mutating func synchronize() {
            synced = current
            changes = []
        }
    }

    private struct Model {
        var files: [FileModel] = []
        var directories: [String: DirectoryModel] = [:]
        var recorded = 0
        var cutAfter: Int
        var isCut: Bool { recorded >= cutAfter }
        /// The process dies after this call (see ``crashProcess(afterCall:)``).
        var processCrashAfter: Int?
        var hasProcessCrashed = false
        var refusedCalls = 0

        /// Counts a call, if the power is still on: whether to record it.
        mutating func admit() -> Bool {
            guard !isCut else { return false }
            recorded += 1
            if recorded == processCrashAfter { hasProcessCrashed = true }
            return true
        }
    }

    /// The directory whose files the journal covers.
    package let root: String
    private let model: Mutex<Model>

    private static let active = Mutex<[PowerLossJournal]>([])
    /// How many journals run: the calls of a process that runs none take
    /// no lock.
    private static let activeCount = Atomic<Int>(0)

    /// Starts recording the calls on the files under `root` (an absolute
    /// path without a trailing slash, under no other journal's root), and
    /// cuts the power after the `cutAfter`-th. What `root` holds already
    /// is taken as durable: a journal may start on what another left
    /// (``restore(seed:)``), to cut the power again during the recovery.
    ///
    /// - Throws: ``DurableFileError`` if `root` cannot be read.
    package init(root: String, cutAfter: Int) throws(DurableFileError) {
        precondition(root.hasPrefix("/") && !root.hasSuffix("/"), "an absolute root without a trailing slash")
        self.root = root
        var model = Model(cutAfter: cutAfter)
        try Self.adopt(root, into: &model)
        self.model = Mutex(model)
        let overlaps = Self.active.withLock { journals in
            let overlaps = journals.contains { other in
                other.root == root || other.root.hasPrefix(root + "/") || root.hasPrefix(other.root + "/")
            }
            if !overlaps { journals.append(self) }
            return overlaps
        }
        precondition(!overlaps, "two journals on one directory tree")
        Self.activeCount.add(1, ordering: .sequentiallyConsistent)
    }

    /// Records the directory `path` and everything in it as durable.
    private static func adopt(_ path: String, into model: inout Model) throws(DurableFileError) {
        var directory = DirectoryModel()
        model.directories[path] = directory
        for name in try DurableFile.contents(ofDirectory: path).sorted() {
            let child = path + "/" + name
            if let file = try? DurableFile(path: child, creating: false) {
                model.files.append(FileModel(synced: try file.readAll()))
                directory.synced[name] = .file(model.files.count - 1)
            } else {
                try adopt(child, into: &model)
                directory.synced[name] = .directory
            }
        }
        directory.current = directory.synced
        model.directories[path] = directory
    }

    /// Stops recording (the journal's ``DurableFile`` calls run unrecorded
    /// from now on); ``restore(seed:)`` does it first. Idempotent.
    package func stop() {
        let removed = Self.active.withLock { journals in
            guard let index = journals.firstIndex(where: { $0 === self }) else { return false }
            journals.remove(at: index)
            return true
        }
        if removed { Self.activeCount.subtract(1, ordering: .sequentiallyConsistent) }
    }

    /// Whether the power was cut (every recorded call was made before it).
    package var isCut: Bool { model.withLock { $0.isCut } }

    /// Kills the process that writes the files after the `call`-th
    /// recorded call, the power still on: every call after it fails with
    /// `EIO` unmade, as if the process had died there, until
    /// ``restartProcess()``. What it wrote stays as it was (in the page
    /// cache, not on the disk).
    package func crashProcess(afterCall call: Int) {
        model.withLock { $0.processCrashAfter = call }
    }

    /// Whether the process died (``crashProcess(afterCall:)``).
    package var hasProcessCrashed: Bool { model.withLock { $0.hasProcessCrashed } }

    /// How many calls a dead process had refused (each with `EIO`).
    package var refusedCalls: Int { model.withLock { $0.refusedCalls } }

    /// Lets calls run again: the process that died is started again (release
    /// its stores first).
    package func restartProcess() {
        model.withLock { model in
            model.hasProcessCrashed = false
            model.processCrashAfter = nil
        }
    }

    /// How many calls were recorded.
    package var recordedCalls: Int { model.withLock { $0.recorded } }

    /// The journal covering `path`, if one runs.
    static func covering(_ path: String) -> PowerLossJournal? {
        guard activeCount.load(ordering: .sequentiallyConsistent) > 0 else { return nil }
        return active.withLock { journals in journals.first { path == $0.root || path.hasPrefix($0.root + "/") } }
    }

    // MARK: Recording (DurableFile's calls, once they succeeded)

    /// Throws `EIO` for `call` on `path` if the process died
    /// (``crashProcess(afterCall:)``): the call must not be made.
    func checkProcess(_ call: String, _ path: String) throws(DurableFileError) {
        let refused = model.withLock { model in
            if model.hasProcessCrashed { model.refusedCalls += 1 }
            return model.hasProcessCrashed
        }
        if refused { throw DurableFileError(call: call, path: path, errno: EIO) }
    }

    /// `path` was opened; returns its file's index, nil once the power is
    /// cut (or for a file the model does not hold: one made before the
    /// journal started, or after the cut).
    func opened(_ path: String, creating: Bool, truncating: Bool) -> Int? {
        model.withLock { model in
            let (directory, name) = Self.split(path)
            guard model.admit(), let entries = model.directories[directory]?.current else { return nil }
            var index: Int
            if case .file(let existing) = entries[name] {
                index = existing
            } else {
                guard creating else { return nil }
                index = model.files.count
                model.files.append(FileModel())
                model.directories[directory]?.change([(name, .file(index))])
            }
            if truncating { model.files[index].changes.append(.truncate(0)) }
            return index
        }
    }

    func appended(_ bytes: [UInt8], to file: Int) {
        model.withLock { model in
            if model.admit() { model.files[file].changes.append(.append(bytes)) }
        }
    }

    func truncated(_ file: Int, to size: Int) {
        model.withLock { model in
            if model.admit() { model.files[file].changes.append(.truncate(size)) }
        }
    }

    func synchronized(_ file: Int) {
        model.withLock { model in
            guard model.admit() else { return }
            model.files[file].synced = Self.apply(model.files[file].changes, to: model.files[file].synced)
            model.files[file].changes = []
        }
    }

    func renamed(_ path: String, to newPath: String) {
        model.withLock { model in
            guard model.admit() else { return }
            let (from, oldName) = Self.split(path)
            let (to, newName) = Self.split(newPath)
            // Each directory's changes are kept in order, not the order
            // across directories: a rename from one to another could come
            // back under both names, or neither. The stores rename within
            // one directory.
            precondition(from == to, "PowerLossJournal models renames within one directory")
            guard let entry = model.directories[from]?.current[oldName] else { return }
            model.directories[from]?.change([(oldName, nil), (newName, entry)])
        }
    }

    func removed(_ path: String) {
        model.withLock { model in
            guard model.admit() else { return }
            let (directory, name) = Self.split(path)
            if model.directories[directory]?.current[name] != nil {
                model.directories[directory]?.change([(name, nil)])
            }
        }
    }

    func madeDirectory(_ path: String) {
        model.withLock { model in
            guard model.admit() else { return }
            let (parent, name) = Self.split(path)
            guard model.directories[parent] != nil else { return }
            model.directories[parent]?.change([(name, .directory)])
            model.directories[path] = DirectoryModel()
        }
    }

    func synchronizedDirectory(_ path: String) {
        model.withLock { model in
            guard model.admit() else { return }
            model.directories[path]?.synchronize()
        }
    }

    // MARK: The state after the power loss

    /// Stops recording, and replaces everything under ``root`` with one
    /// state the disk could hold after the power was cut, chosen by `seed`.
    /// Release the stores that wrote there first.
    ///
    /// - Throws: ``DurableFileError`` for the calls that remove and write
    ///   the files.
    package func restore(seed: UInt64) throws(DurableFileError) {
        stop()
        var random = SeededRandomGenerator(seed: seed)
        let state = model.withLock { model in Self.crashState(of: model, root: root, using: &random) }
        try Self.removeContents(of: root)
        for (path, contents) in state {
            guard let contents else {
                guard mkdir(path, 0o755) == 0 else { throw DurableFileError(call: "mkdir", path: path, errno: errno) }
                continue
            }
            let file = try DurableFile(path: path, creating: true, truncating: true)
            try file.append(contents)
        }
    }

    /// The paths under `root` after a crash, parents first, with each
    /// file's contents (nil for a directory).
    private static func crashState(
        of model: Model, root: String, using random: inout SeededRandomGenerator
    ) -> [(path: String, contents: [UInt8]?)] {
        var state: [(path: String, contents: [UInt8]?)] = []
        var files: [Int: [UInt8]] = [:]
        func visit(_ path: String) {
            guard let directory = model.directories[path] else { return }
            var entries = directory.synced
            for change in directory.changes.prefix(Int.random(in: 0...directory.changes.count, using: &random)) {
                for (name, entry) in change { entries[name] = entry }
            }
            for (name, entry) in entries.sorted(by: { $0.key < $1.key }) {
                let child = path + "/" + name
                switch entry {
                case .directory:
                    state.append((child, nil))
                    visit(child)
                case .file(let index):
                    if files[index] == nil { files[index] = crashContents(of: model.files[index], using: &random) }
                    state.append((child, files[index]))
                }
            }
        }
        visit(root)
        return state
    }

    /// What a crash may leave of `file`: its synced contents with its
    /// changes since up to a point, the next write perhaps in part, and
    /// perhaps some 512-byte sectors of the bytes written since as zeros.
    private static func crashContents(of file: FileModel, using random: inout SeededRandomGenerator) -> [UInt8] {
        let kept = Int.random(in: 0...file.changes.count, using: &random)
        var bytes = file.synced
        // Bytes below this are the synced ones, untouched since.
        var untouched = bytes.count
        for change in file.changes.prefix(kept) {
            bytes = apply([change], to: bytes)
            if case .truncate(let size) = change { untouched = min(untouched, size) }
        }
        if kept < file.changes.count, case .append(let more) = file.changes[kept], Bool.random(using: &random) {
            bytes += more.prefix(Int.random(in: 1...more.count, using: &random))
        }
        if bytes.count > untouched, Bool.random(using: &random) {
            // Some of the sectors written since: pages written back out of
            // order, or never (the size reached the disk, the data not).
            let sector = 512
            let sectors = untouched / sector...(bytes.count - 1) / sector
            for chosen in sectors where Int.random(in: 0..<4, using: &random) == 0 {
                for offset in max(untouched, chosen * sector)..<min(bytes.count, (chosen + 1) * sector) {
                    bytes[offset] = 0
                }
            }
        }
        return bytes
    }

    private static func apply(_ changes: [FileModel.Change], to bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        for change in changes {
            switch change {
            case .append(let more): bytes += more
            case .truncate(let size):
                if size < bytes.count {
                    bytes.removeSubrange(size...)
                } else {
                    bytes += [UInt8](repeating: 0, count: size - bytes.count)
                }
            }
        }
        return bytes
    }

    /// Removes everything in the directory `path`, not the directory.
    private static func removeContents(of path: String) throws(DurableFileError) {
        for name in try DurableFile.contents(ofDirectory: path) {
            let child = path + "/" + name
            if unlink(child) == 0 { continue }
            guard errno == EISDIR else { throw DurableFileError(call: "unlink", path: child, errno: errno) }
            try removeContents(of: child)
            guard rmdir(child) == 0 else { throw DurableFileError(call: "rmdir", path: child, errno: errno) }
        }
    }

    /// A path's directory and last component.
    private static func split(_ path: String) -> (directory: String, name: String) {
        let directory = DurableFile.directory(of: path)
        var name = Substring(path)
        while name.count > 1, name.hasSuffix("/") { name = name.dropLast() }
        if let slash = name.lastIndex(of: "/") { name = name[name.index(after: slash)...] }
        return (directory, String(name))
    }
}
