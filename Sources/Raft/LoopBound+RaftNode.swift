import EventCore

extension LoopBound where Value == RaftNode {
    /// Proposes `command` on the node's loop and returns the state
    /// machine's result once the command is committed and applied on this
    /// node (see ``RaftNode/propose(_:completion:)``). Callable from any
    /// task.
    ///
    /// - Throws: ``RaftError``, as ``RaftNode/propose(_:completion:)``
    ///   reports it (``RaftError/notLeader(leaderHint:)`` at once while the
    ///   group has no leader this node knows: wait for
    ///   ``RaftNode/leader`` and propose again); ``RaftError/stopped`` if
    ///   the node stops, or its loop has stopped or shuts down, before the
    ///   outcome is known. Cancelling the task does not end the wait: a
    ///   leader cut off from its group keeps the proposal pending until it
    ///   learns what was committed (see ``RaftNode/propose(_:completion:)``),
    ///   or until ``RaftNode/stop()``.
    public func propose(_ command: [UInt8]) async throws(RaftError) -> [UInt8] {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<[UInt8], RaftError>, Never>) in
            let accepted = loop.execute {
                self.value.propose(command) { continuation.resume(returning: $0) }
            }
            if !accepted { continuation.resume(returning: .failure(.stopped)) }
        }
        return try result.get()
    }
}
