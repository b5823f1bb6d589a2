/// An operation on a register: what ``RegisterModel`` applies.
public enum RegisterOperation<Value: Hashable>: Hashable {
    /// Returns the value; changes nothing.
    case read
    /// Sets the value (nil: empties the register); returns it.
    case write(Value?)
    /// Sets the value to `new` if it is `expected`; returns the value after.
    case compareAndSet(expected: Value?, new: Value?)
}

extension RegisterOperation: Sendable where Value: Sendable {}

/// The sequential model of a register that may be empty (nil), read,
/// written and compare-and-set. Every operation returns the register's
/// value after it, as a CASPaxos proposal returns the new state.
public struct RegisterModel<Value: Hashable>: SequentialModel, Sendable {
    /// Creates the model of a register that starts empty.
    public init() {}

    /// The register starts empty.
    public var initialState: Value? { nil }

    /// Applies `input` to `state`; the output is the value after it.
    public func apply(_ input: RegisterOperation<Value>, to state: Value?) -> (state: Value?, output: Value?) {
        switch input {
        case .read: return (state, state)
        case .write(let value): return (value, value)
        case .compareAndSet(let expected, let new):
            let next = state == expected ? new : state
            return (next, next)
        }
    }
}
