import EventCore

/// Why a ``FileRaftStorage`` could not open, read or write its files. Every
/// error names the file and, for bad data, the byte offset in it where the
/// problem was found.
public struct RaftStorageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Hashable, Sendable {
        /// A system call failed (`open`, `write`, `fdatasync`, `rename`,
        /// ...), leaving `errno`.
        case io(call: String, errno: Int32)
        /// The data is damaged where a torn write cannot be (a checksum that
        /// fails before valid data, a header that does not parse, a record
        /// that does not fit the log): recovering would drop acknowledged
        /// state, so the store refuses to open and drops nothing.
        case corrupt
        /// A segment or snapshot of a format version this build does not
        /// read.
        case unsupportedVersion(UInt32)
        /// Entries are missing: a segment starts past the end of the log
        /// the earlier ones hold (and past the snapshot), or there are no
        /// segments at all beside a snapshot.
        case missingSegment
        /// A restart (``FileRaftStorage/Opening/existing``) found no log:
        /// the directory is missing or holds no log segment. Either the
        /// path is wrong or the replica's state is lost. Do not start it on
        /// a new log in its place: a replica that forgets its vote can vote
        /// twice in a term, and one that forgets entries it acknowledged
        /// can help elect a leader without a committed entry.
        case missingLog
        /// A first start (``FileRaftStorage/Opening/new``) found a log
        /// holding state: the replica has run before. Open it as
        /// ``FileRaftStorage/Opening/existing``.
        case existingLog
        /// Another ``FileRaftStorage`` holds the directory's lock: a
        /// replica in another process runs on it, or a store opened on it in
        /// this process has not been closed or released. Two stores writing one log
        /// would corrupt it.
        case locked
        /// The store was closed (``FileRaftStorage/close()``) and writes
        /// nothing more.
        case closed
        /// A write the storage protocol does not allow: entries not numbered
        /// one after another, appended past `lastIndex + 1` or into the
        /// compacted part, a record too large for the format, or a
        /// snapshot not above the one held.
        case invalidArgument
    }

    /// What went wrong.
    public var code: Code
    /// The path of the file (or directory) concerned.
    public var file: String
    /// The byte offset in ``file`` where bad data was found, if the error
    /// is about data.
    public var offset: Int?
    /// Details for people.
    public var detail: String

    /// Creates an error.
    public init(_ code: Code, file: String, offset: Int? = nil, detail: String) {
        self.code = code
        self.file = file
        self.offset = offset
        self.detail = detail
    }

    /// Throws `.invalidArgument` unless `snapshot` is above `previous`, the
    /// snapshot a storage holds (``RaftStorage/saveSnapshot(_:)``'s rule).
    static func checkFollows(_ snapshot: RaftSnapshot, _ previous: RaftSnapshot?, file: String) throws(RaftStorageError) {
        guard let previous, snapshot.index <= previous.index else { return }
        throw RaftStorageError(
            .invalidArgument, file: file,
            detail: "a snapshot at index \(snapshot.index) does not follow the one held, at index \(previous.index)")
    }

    /// An `.io` error for a failed system call.
    init(_ failure: DurableFileError) {
        self.init(.io(call: failure.call, errno: failure.errno), file: failure.path, detail: failure.description)
    }

    /// The code, the file, the offset and the detail, on one line.
    public var description: String {
        let place = offset.map { "\(file) at offset \($0)" } ?? file
        return "\(code) in \(place): \(detail)"
    }
}
