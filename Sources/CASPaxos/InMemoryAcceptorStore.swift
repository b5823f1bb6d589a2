/// An ``AcceptorStore`` in memory: writes are "durable" as soon as they are
/// applied, for as long as the store object lives. Tests keep one across a
/// simulated crash and restart of the node that uses it; it does not
/// survive the process.
public final class InMemoryAcceptorStore: AcceptorStore {
    /// The state recorded so far.
    public private(set) var snapshot: AcceptorSnapshot
    /// How many times ``sync()`` was called.
    public private(set) var syncCount = 0

    /// Creates a store holding `snapshot` (by default, empty).
    public init(_ snapshot: AcceptorSnapshot = AcceptorSnapshot()) {
        self.snapshot = snapshot
    }

    /// The recorded state.
    public func load() -> AcceptorSnapshot { snapshot }

    /// Records `write`.
    public func apply(_ write: AcceptorWrite) { snapshot.apply(write) }

    /// Counts the call; there is nothing to flush.
    public func sync() { syncCount += 1 }
}
