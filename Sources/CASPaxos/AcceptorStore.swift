/// Where an acceptor's promises and accepted values live.
///
/// The driver calls ``load()`` once when the acceptor starts, then
/// ``apply(_:)`` for every ``CASPaxosEffect/persist(_:)`` and ``sync()``
/// before it sends the replies that depend on them. An implementation may
/// buffer applied writes until `sync`, but after `sync` returns every write
/// applied before it must survive a crash: an acceptor that answered must
/// never forget what it promised or accepted. On a node with both roles
/// the proposer's configurations come through it too
/// (``AcceptorWrite/proposerConfiguration(_:)``): ``load()`` must return
/// the highest version applied and synced, as
/// ``AcceptorSnapshot/apply(_:)`` keeps it. A proposer-only node may be
/// given a store that receives only those (its `configurationStore`).
public protocol AcceptorStore: AnyObject {
    /// The state as of the last write that was synced (and possibly later
    /// ones).
    ///
    /// - Throws: ``AcceptorStoreError`` if the state cannot be read.
    func load() throws(AcceptorStoreError) -> AcceptorSnapshot

    /// Records a write; durable once ``sync()`` returns.
    ///
    /// - Throws: ``AcceptorStoreError`` if it cannot be recorded.
    func apply(_ write: AcceptorWrite) throws(AcceptorStoreError)

    /// Makes every applied write durable.
    ///
    /// - Throws: ``AcceptorStoreError`` if they cannot be made durable; the
    ///   driver then must not send the replies that depend on them.
    func sync() throws(AcceptorStoreError)
}

/// Why an ``AcceptorStore`` failed.
public struct AcceptorStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Hashable, Sendable {
        /// A system call failed (open, write, fsync, rename).
        case io
        /// The stored state is damaged where a torn write cannot be (before
        /// the tail of a log, or inside a checksummed batch): recovering
        /// would drop acknowledged state, so the store refuses to load.
        case corrupt
        /// The stored state is whole but in a format version this build
        /// does not read (``FileAcceptorStore`` reads versions 2 to 6;
        /// version 1 is the format before its checksums were salted). Do
        /// not delete it: its promises are what keep the registers
        /// linearizable. Move the acceptor to a new store with ``Proposer/changeMembership(to:proposers:now:into:)``
        /// instead (remove it, then add it back on a new log, which the
        /// change's re-scan fills).
        case unsupportedVersion(UInt32)
        /// A restart (``FileAcceptorStore/Opening/existing``) found no log:
        /// the file is missing, or holds no more than part of a header (a
        /// creation cut short). Either the path is wrong or the acceptor's
        /// state is lost. Do not start it on a new log in its place: an
        /// acceptor that forgets its promises lets a proposer with a lower
        /// ballot overwrite a value it acknowledged, which breaks
        /// linearizability. Remove it from the acceptors with ``Proposer/changeMembership(to:proposers:now:into:)``,
        /// then add it back on a new log. (A proposer's configuration store
        /// that was lost may start on a new log, given the cluster's
        /// current configuration.)
        case missingLog
        /// A first start (``FileAcceptorStore/Opening/new``) found a log:
        /// the acceptor has run before, and its log holds what it promised.
        /// Open it as ``FileAcceptorStore/Opening/existing``.
        case existingLog
        /// Another ``FileAcceptorStore`` holds the log's lock: an acceptor
        /// in another process runs on it, or a store opened on it in this
        /// process has not been closed or released. Two stores writing one log would
        /// corrupt it.
        case locked
        /// The store was closed (``FileAcceptorStore/close()``) and writes
        /// nothing more.
        case closed
    }

    /// What went wrong.
    public var code: Code
    /// Details for people: the file, the call, the offset.
    public var detail: String

    /// Creates an error.
    public init(_ code: Code, detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The code and the detail, on one line.
    public var description: String { "\(code): \(detail)" }
}
