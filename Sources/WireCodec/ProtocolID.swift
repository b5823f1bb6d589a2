/// Which protocol a frame belongs to: the byte the facade demultiplexes one
/// socket by (frame header byte 3).
public enum ProtocolID: UInt8, Hashable, Sendable, CaseIterable {
    /// Epidemic gossip (dissemination and anti-entropy).
    case gossip = 1
    /// SWIM membership and failure detection.
    case swim = 2
    /// Raft consensus.
    case raft = 3
    /// CASPaxos.
    case casPaxos = 4
    /// Client requests to a node.
    case client = 5
}
