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
    ///   outcome is known; if the task is cancelled first, the wait ends
    ///   with ``RaftError/withdrawn`` when the node had not taken the
    ///   proposal yet (nothing was proposed), or ``RaftError/cancelled``
    ///   when it had: the proposal goes on and may still commit (a leader
    ///   cut off from its group keeps it pending until it learns what was
    ///   committed, or until ``RaftNode/stop()``; see
    ///   ``RaftNode/propose(_:completion:)``).
    public func propose(_ command: [UInt8]) async throws(RaftError) -> [UInt8] {
        try await awaitCompletion(stopped: .failure(.stopped), cancelled: { .failure($0 ? .cancelled : .withdrawn) }) {
            node, completion in
            node.propose(command, completion: completion)
        }.get()
    }
}
