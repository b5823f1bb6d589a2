import EventCore

extension LoopBound where Value == CASPaxosNode {
    /// Changes `key`'s value with `change` on the node's loop and returns
    /// the new value. Callable from any task.
    ///
    /// Cancelling the task ends the wait. A proposal that has sent no
    /// accept (queued behind others on its key, backing off, preparing),
    /// or was not started yet, is withdrawn: `.withdrawn`, definite. One
    /// that sent an accept runs on, and may still take effect:
    /// `.cancelled`, indeterminate.
    ///
    /// - Throws: ``CASPaxosError`` (see ``CASPaxosNode/propose(key:change:completion:)``);
    ///   `.notAvailable` if the loop has stopped, or shuts down before the
    ///   proposal ends; `.withdrawn` or `.cancelled` if the task is
    ///   cancelled first.
    public func propose(key: [UInt8], change: @escaping CASPaxosChange) async throws(CASPaxosError) -> [UInt8]? {
        try await perform { node, completion in node.propose(key: key, change: change, completion: completion) }
    }

    /// Reads `key` on the node's loop (see ``CASPaxosNode/read(key:completion:)``).
    /// Callable from any task.
    ///
    /// - Throws: ``CASPaxosError``; `.notAvailable` if the loop has stopped;
    ///   `.withdrawn` or `.cancelled` if the task is cancelled first, as
    ///   for ``propose(key:change:)``.
    public func read(key: [UInt8]) async throws(CASPaxosError) -> [UInt8]? {
        try await perform { node, completion in node.read(key: key, completion: completion) }
    }

    /// Runs `start` on the loop and waits for the completion it is given;
    /// on the task's cancellation, withdraws the proposal `start` returned
    /// the ID of, if it can.
    private func perform(
        _ start: @escaping @Sendable (CASPaxosNode, @escaping (Result<[UInt8]?, CASPaxosError>) -> Void) -> UInt64?
    ) async throws(CASPaxosError) -> [UInt8]? {
        try await awaitCompletion(
            stopped: .failure(CASPaxosError(.notAvailable, detail: "the event loop has stopped")),
            cancelled: { started in
                started
                    ? .failure(
                        CASPaxosError(
                            .cancelled,
                            detail: "the awaiting task was cancelled; the proposal was not withdrawn (an accept it sent may have been taken, or its loop stopped)"))
                    : .failure(CASPaxosError(.withdrawn, detail: "the awaiting task was cancelled before the proposal started"))
            },
            withdraw: { node, proposalID in
                if let proposalID { node.withdraw(proposalID) }
            },
            start
        ).get()
    }
}
