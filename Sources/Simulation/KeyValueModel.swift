/// An operation on one key of a key-value map: what ``KeyValueModel``
/// applies.
public enum KeyValueOperation<Value: Hashable>: Hashable {
    /// Returns the key's value; changes nothing.
    case get
    /// Sets the key's value; returns the value it replaced (nil if absent).
    case put(Value)
    /// Removes the key; returns the value it had (nil if absent).
    case delete
}

extension KeyValueOperation: Sendable where Value: Sendable {}

/// The sequential model of one key of a key-value map (the checker
/// partitions a history by key): gets return the value, puts and deletes
/// the value they replaced, as Raft's `KeyValueStateMachine` does.
public struct KeyValueModel<Value: Hashable>: SequentialModel, Sendable {
    /// Creates the model of a key that starts absent.
    public init() {}

    /// The key starts absent.
    public var initialState: Value? { nil }

    /// Applies `input` to `state`; the output is the value seen.
    public func apply(_ input: KeyValueOperation<Value>, to state: Value?) -> (state: Value?, output: Value?) {
        switch input {
        case .get: (state, state)
        case .put(let value): (value, state)
        case .delete: (nil, state)
        }
    }
}
