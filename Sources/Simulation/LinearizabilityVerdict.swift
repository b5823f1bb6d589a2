/// What ``LinearizabilityChecker/check(_:)`` concluded about a history.
public enum LinearizabilityVerdict<Key: Hashable>: Equatable {
    /// Every key's operations have a linearization.
    case linearizable
    /// Some key's operations have none.
    case violation(LinearizabilityViolation<Key>)
    /// The search for `key` explored more states than the checker's budget
    /// allows without reaching a conclusion.
    case undecided(key: Key, statesExplored: Int)

    /// Whether the verdict is ``linearizable``.
    public var isLinearizable: Bool { self == .linearizable }
}

/// The witness of a violation: the longest linearization the search found
/// for one key, and the operation that could not be fitted after it.
public struct LinearizabilityViolation<Key: Hashable>: Equatable, CustomStringConvertible {
    /// The key whose history is not linearizable.
    public var key: Key
    /// Indices into the checked history: the longest sequence of this key's
    /// operations the search could linearize, in order.
    public var longestLinearization: [Int]
    /// The index of the operation that had to be linearized next (it
    /// completed before any other pending one could be placed) and could
    /// not be.
    public var blockingOperation: Int
    /// The operations of the witness, described for people.
    public var explanation: String

    /// Creates a witness.
    public init(key: Key, longestLinearization: [Int], blockingOperation: Int, explanation: String) {
        self.key = key
        self.longestLinearization = longestLinearization
        self.blockingOperation = blockingOperation
        self.explanation = explanation
    }

    /// The key, the witness and the blocking operation, for a failing test.
    public var description: String {
        "not linearizable at key \(key): \(explanation)"
    }
}
