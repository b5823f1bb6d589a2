/// A snapshot of what a ``CASPaxosNode`` has done.
public struct CASPaxosNodeCounters: Hashable, Sendable {
    /// The proposer role's counters (zero if the node is not a proposer).
    public var proposer: ProposerCounters
    /// The acceptor role's counters (zero if the node is not an acceptor).
    public var acceptor: AcceptorCounters
    /// Frames dropped because they did not decode (bad frame, bad checksum,
    /// another protocol, malformed or over-limit body).
    public var malformedFramesDropped: Int
    /// Messages the transport refused or that did not fit a message.
    public var sendFailures: Int
    /// Store syncs done (each may cover the writes of several requests).
    public var syncs: Int
    /// 1 once the node's store (acceptor or configuration store) failed:
    /// the acceptor role ended and the proposer no longer acknowledges the
    /// configurations it adopts, so no membership change can finish
    /// without this node until it restarts on a working store.
    public var storeFailures: Int
    /// Messages sent, and the frames that carried them (a frame carries
    /// the messages of a loop turn to one destination, up to the limits).
    public var messagesSent: Int
    public var framesSent: Int
    /// Messages between the node's own proposer and acceptor, handed over
    /// without the network to a role the node still plays (not in
    /// ``messagesSent``).
    public var messagesDeliveredLocally: Int

    /// Creates counters.
    public init(
        proposer: ProposerCounters, acceptor: AcceptorCounters, malformedFramesDropped: Int, sendFailures: Int,
        syncs: Int, storeFailures: Int = 0, messagesSent: Int = 0, framesSent: Int = 0,
        messagesDeliveredLocally: Int = 0
    ) {
        self.proposer = proposer
        self.acceptor = acceptor
        self.malformedFramesDropped = malformedFramesDropped
        self.sendFailures = sendFailures
        self.syncs = syncs
        self.storeFailures = storeFailures
        self.messagesSent = messagesSent
        self.framesSent = framesSent
        self.messagesDeliveredLocally = messagesDeliveredLocally
    }
}
