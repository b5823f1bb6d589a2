/// An ``AcceptorStore`` in memory: writes are "durable" as soon as they are
/// applied, for as long as the store object lives. Tests keep one across a
/// simulated crash and restart of the node that uses it; it does not
/// survive the process.
///
/// Confined like the node that uses it (one thread at a time), and no
/// method calls out while it holds its state, so the state skips Swift's
/// dynamic exclusivity checks (a tenth of an apply's cost).
public final class InMemoryAcceptorStore: AcceptorStore {
    /// The state recorded so far.
    @exclusivity(unchecked) public private(set) var snapshot: AcceptorSnapshot
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
