import EventCore

extension LoopBound where Value == CASPaxosNode {
    /// Changes `key`'s value with `change` on the node's loop and returns
    /// the new value. Callable from any task.
    ///
    /// - Throws: ``CASPaxosError`` (see ``CASPaxosNode/propose(key:change:completion:)``);
    ///   `.notAvailable` if the loop has stopped, or shuts down before the
    ///   proposal ends; `.cancelled` if the task is cancelled first (the
    ///   proposal goes on, and may still take effect).
    public func propose(key: [UInt8], change: @escaping CASPaxosChange) async throws(CASPaxosError) -> [UInt8]? {
        try await perform { node, completion in node.propose(key: key, change: change, completion: completion) }
    }

    /// Runs `start` on the loop and waits for the completion it is given,
    /// or for the task's cancellation.
    private func perform(
        _ start: @escaping @Sendable (CASPaxosNode, @escaping (Result<[UInt8]?, CASPaxosError>) -> Void) -> Void
    ) async throws(CASPaxosError) -> [UInt8]? {
        try await awaitCompletion(
            stopped: .failure(CASPaxosError(.notAvailable, detail: "the event loop has stopped")),
            cancelled: { .failure(CASPaxosError(.cancelled, detail: "the awaiting task was cancelled")) },
            start
        ).get()
    }

    /// Reads `key` on the node's loop (see ``CASPaxosNode/read(key:completion:)``).
    /// Callable from any task.
    ///
    /// - Throws: ``CASPaxosError``; `.notAvailable` if the loop has stopped;
    ///   `.cancelled` if the task is cancelled first.
    public func read(key: [UInt8]) async throws(CASPaxosError) -> [UInt8]? {
        try await perform { node, completion in node.read(key: key, completion: completion) }
    }
}
