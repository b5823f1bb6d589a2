import EventCore

/// One operation of a concurrent history: on which key, what, by whom,
/// when it was invoked and completed, and how it ended.
///
/// Operations on different keys are independent (the checker splits a
/// history by key, P-compositionality). Two operations are ordered in real
/// time only when one completed strictly before the other was invoked;
/// operations whose completion and invocation share an instant count as
/// concurrent.
public struct HistoryOperation<Key: Hashable, Input, Output> {
    /// The client that issued it (for descriptions only).
    public var client: Int
    /// The object it acted on.
    public var key: Key
    /// The operation and its arguments.
    public var input: Input
    /// When it was invoked.
    public var invoked: Instant
    /// When it completed; ignored for ``OperationOutcome/unknown`` outcomes
    /// (which may take effect at any later time) and for
    /// ``OperationOutcome/failed`` ones.
    public var completed: Instant
    /// How it ended.
    public var outcome: OperationOutcome<Output>

    /// Creates an operation.
    public init(
        client: Int, key: Key, input: Input, invoked: Instant, completed: Instant,
        outcome: OperationOutcome<Output>
    ) {
        self.client = client
        self.key = key
        self.input = input
        self.invoked = invoked
        self.completed = completed
        self.outcome = outcome
    }
}

extension HistoryOperation: Sendable where Key: Sendable, Input: Sendable, Output: Sendable {}
