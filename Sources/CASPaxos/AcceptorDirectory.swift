import EventCore

/// A proposer's acceptors (``AcceptorQuorums/allAcceptors``, prepare
/// acceptors first) by position, with the positions of each phase's set.
/// Built when the proposer adopts a configuration; an endpoint is found by
/// a linear search, over a handful of acceptors in practice (255 at most
/// per set).
struct AcceptorDirectory {
    /// Every acceptor of either phase, each once.
    let acceptors: [Endpoint]
    /// The positions of the prepare and of the accept acceptors.
    let prepare: AcceptorSet
    let accept: AcceptorSet

    init(_ quorums: AcceptorQuorums) {
        let acceptors = quorums.allAcceptors
        self.acceptors = acceptors
        var prepare = AcceptorSet()
        var accept = AcceptorSet()
        for (position, acceptor) in acceptors.enumerated() {
            if quorums.prepareAcceptors.contains(acceptor) { prepare.insert(position) }
            if quorums.acceptAcceptors.contains(acceptor) { accept.insert(position) }
        }
        self.prepare = prepare
        self.accept = accept
    }

    /// The position of `endpoint`, or nil if it is no acceptor of the
    /// configuration.
    func position(of endpoint: Endpoint) -> Int? {
        acceptors.firstIndex(of: endpoint)
    }
}
