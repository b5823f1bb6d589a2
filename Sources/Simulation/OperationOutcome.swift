/// How one operation of a concurrent history ended, as its client saw it.
public enum OperationOutcome<Output> {
    /// It completed and returned this output: it took effect exactly once,
    /// between its invocation and its completion.
    case ok(Output)
    /// It definitely did not take effect (for example it was refused before
    /// anything was sent). The checker ignores it.
    case failed
    /// Its client does not know (it timed out, or the history ended first):
    /// it may have taken effect at any time after its invocation, or never,
    /// and its output is unconstrained.
    case unknown
}

extension OperationOutcome: Equatable where Output: Equatable {}
extension OperationOutcome: Hashable where Output: Hashable {}
extension OperationOutcome: Sendable where Output: Sendable {}
