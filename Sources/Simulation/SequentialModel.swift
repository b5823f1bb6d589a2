/// The sequential specification of one object (one key) that
/// ``LinearizabilityChecker`` checks a concurrent history against: a state,
/// operations that move it, and the output each operation returns.
///
/// Implementations must be deterministic: `apply` is called many times on
/// the same state while the checker searches for a linearization.
/// ``RegisterModel`` is the model of a read/write/compare-and-set register;
/// other protocols supply their own (a log, a counter, a set).
public protocol SequentialModel {
    /// The object's state. Hashable so the checker can remember which
    /// (linearized operations, state) pairs it already explored.
    associatedtype State: Hashable
    /// An operation with its arguments.
    associatedtype Input
    /// What an operation returns, compared with what the history observed.
    associatedtype Output: Equatable

    /// The state before any operation.
    var initialState: State { get }

    /// Applies `input` to `state`: the state after it and the output it
    /// returns.
    func apply(_ input: Input, to state: State) -> (state: State, output: Output)
}
