import EventCore

/// Records a concurrent history as a test runs it: call ``invoke(client:key:input:at:)``
/// when a client starts an operation and ``complete(_:with:at:)`` when it
/// ends. Operations never completed count as ``OperationOutcome/unknown``.
/// Feed ``operations`` to ``LinearizabilityChecker/check(_:)``.
public final class HistoryRecorder<Key: Hashable, Input, Output> {
    /// The operations recorded so far, in invocation order.
    public private(set) var operations: [HistoryOperation<Key, Input, Output>] = []
    /// Events recorded so far (the last sequence number given).
    private var events: UInt64 = 0

    /// Creates an empty recorder.
    public init() {}

    /// Records the invocation of an operation; returns its number, for
    /// ``complete(_:with:at:)``.
    public func invoke(client: Int, key: Key, input: Input, at instant: Instant) -> Int {
        events += 1
        operations.append(
            HistoryOperation(
                client: client, key: key, input: input, invoked: instant, completed: instant, outcome: .unknown,
                invocationSequence: events))
        return operations.count - 1
    }

    /// The operations completed more than once, by number, in the order
    /// of their repeated completions: a system that reports an operation's
    /// end twice (success, then an error) is wrong, and the second report
    /// would hide what the first said. Check that it stays empty.
    public private(set) var repeatedCompletions: [Int] = []
    private var completed: Set<Int> = []

    /// Records how operation `number` ended. Ignored for a number
    /// ``invoke(client:key:input:at:)`` did not return; a second completion
    /// keeps the first and is listed in ``repeatedCompletions``.
    public func complete(_ number: Int, with outcome: OperationOutcome<Output>, at instant: Instant) {
        guard operations.indices.contains(number) else { return }
        guard completed.insert(number).inserted else {
            repeatedCompletions.append(number)
            return
        }
        events += 1
        operations[number].outcome = outcome
        operations[number].completed = instant
        operations[number].completionSequence = events
    }
}
