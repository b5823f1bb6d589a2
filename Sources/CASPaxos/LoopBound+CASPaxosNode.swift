import EventCore

extension LoopBound where Value == CASPaxosNode {
    /// Changes `key`'s value with `change` on the node's loop and returns
    /// the new value. Callable from any task.
    ///
    /// - Throws: ``CASPaxosError`` (see ``CASPaxosNode/propose(key:change:completion:)``);
    ///   `.notAvailable` if the loop has stopped, or shuts down before the
    ///   proposal ends.
    public func propose(key: [UInt8], change: @escaping CASPaxosChange) async throws(CASPaxosError) -> [UInt8]? {
        try await perform { node, completion in node.propose(key: key, change: change, completion: completion) }
    }

    /// Runs `start` on the loop and waits for the completion it is given.
    private func perform(
        _ start: @escaping @Sendable (CASPaxosNode, @escaping (Result<[UInt8]?, CASPaxosError>) -> Void) -> Void
    ) async throws(CASPaxosError) -> [UInt8]? {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<[UInt8]?, CASPaxosError>, Never>) in
            let accepted = loop.execute {
                start(self.value) { continuation.resume(returning: $0) }
            }
            if !accepted {
                continuation.resume(returning: .failure(CASPaxosError(.notAvailable, detail: "the event loop has stopped")))
            }
        }
        return try result.get()
    }

    /// Reads `key` on the node's loop (see ``CASPaxosNode/read(key:completion:)``).
    /// Callable from any task.
    ///
    /// - Throws: ``CASPaxosError``; `.notAvailable` if the loop has stopped.
    public func read(key: [UInt8]) async throws(CASPaxosError) -> [UInt8]? {
        try await perform { node, completion in node.read(key: key, completion: completion) }
    }
}
