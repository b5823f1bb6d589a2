import EventCore

/// One operation of a concurrent history: on which key, what, by whom,
/// when it was invoked and completed, and how it ended.
///
/// Operations on different keys are independent (the checker splits a
/// history by key, P-compositionality). Two operations are ordered in real
/// time when one completed before the other was invoked: at an earlier
/// instant, or at the same instant with a lower sequence number (a
/// ``HistoryRecorder`` numbers the events it records in the order they
/// happen, so a client's next call at the very instant its previous one
/// returned comes after it). Events without sequence numbers (0, as in
/// operations made by hand) that share an instant count as concurrent.
/// Check a history made by one recorder, or made by hand throughout: at a
/// shared instant, unnumbered events come before numbered ones.
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
    /// Where the invocation falls among the events of its history (a
    /// ``HistoryRecorder`` counts them from 1), ordering events that share
    /// an instant; 0 if not numbered.
    public var invocationSequence: UInt64
    /// Where the completion falls, as ``invocationSequence``.
    public var completionSequence: UInt64

    /// Creates an operation.
    public init(
        client: Int, key: Key, input: Input, invoked: Instant, completed: Instant,
        outcome: OperationOutcome<Output>, invocationSequence: UInt64 = 0, completionSequence: UInt64 = 0
    ) {
        self.client = client
        self.key = key
        self.input = input
        self.invoked = invoked
        self.completed = completed
        self.outcome = outcome
        self.invocationSequence = invocationSequence
        self.completionSequence = completionSequence
    }
}

extension HistoryOperation: Sendable where Key: Sendable, Input: Sendable, Output: Sendable {}
