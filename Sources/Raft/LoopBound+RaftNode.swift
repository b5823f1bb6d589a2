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
    ///   when it had: the proposal goes on and may still commit (see
    ///   ``RaftNode/propose(_:completion:)`` for how long a node cut off
    ///   from its leader waits for its outcome).
    public func propose(_ command: [UInt8]) async throws(RaftError) -> [UInt8] {
        try await awaitCompletion(stopped: .failure(.stopped), cancelled: { .failure($0 ? .cancelled : .withdrawn) }) {
            node, completion in
            node.propose(command, completion: completion)
        }.get()
    }

    /// Adds or removes one member of the group on the node's loop (see
    /// ``RaftNode/changeMembership(_:completion:)``) and returns once the
    /// change is committed and applied on this node. Callable from any
    /// task.
    ///
    /// - Throws: ``RaftError``, as ``RaftNode/changeMembership(_:completion:)``
    ///   reports it; ``RaftError/stopped``, ``RaftError/withdrawn`` and
    ///   ``RaftError/cancelled`` as for ``propose(_:)``.
    public func changeMembership(_ change: RaftMembershipChange) async throws(RaftError) {
        try await awaitCompletion(stopped: .failure(.stopped), cancelled: { .failure($0 ? .cancelled : .withdrawn) }) {
            node, completion in
            node.changeMembership(change, completion: completion)
        }.get()
    }

    /// Waits until the node may serve a linearizable read (see
    /// ``RaftNode/read(completion:)``), then runs `body` with the node on
    /// its loop and returns what it returns: read the state machine there
    /// (``RaftNode/stateMachine``, or your reference to it). Callable from
    /// any task.
    ///
    /// ```swift
    /// let value = try await node.read { _ in map.values["k"] }
    /// ```
    ///
    /// - Throws: ``RaftError``, as ``RaftNode/read(completion:)`` reports
    ///   it; ``RaftError/stopped`` if the node or its loop stops first;
    ///   ``RaftError/withdrawn`` or ``RaftError/cancelled`` if the task is
    ///   cancelled first (before or after the node took the read: either
    ///   way it had no effect).
    public func read<Output: Sendable>(_ body: @escaping @Sendable (RaftNode) -> Output) async throws(RaftError)
        -> Output
    {
        try await awaitCompletion(stopped: .failure(.stopped), cancelled: { .failure($0 ? .cancelled : .withdrawn) }) {
            node, completion in
            node.read { result in completion(result.map { body(node) }) }
        }.get()
    }
}
