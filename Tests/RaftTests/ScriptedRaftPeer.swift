import EventCore
@testable import Raft
import Simulation
import WireCodec

/// A peer of one real ``RaftNode`` played by a test: it keeps what the
/// node sends it and sends what the test writes, so that an execution is
/// exactly the one the test draws.
final class ScriptedRaftPeer {
    let id: NodeID
    /// The real node's ID, which the peer's messages are addressed to.
    let target: NodeID
    let host: SimulatedNode
    var inbox: [RaftMessage] = []

    init(_ id: UInt64, on network: SimulatedNetwork, target: NodeID = NodeID(1)) {
        self.id = NodeID(id)
        self.target = target
        host = network.addNode()
        host.setReceiveHandler { [unowned self] bytes, _, _ in
            guard let body = try? Frame.decodeBody(bytes, of: .raft, limits: RaftMessage.decodingLimits),
                let message = try? RaftMessage(decoding: body, limits: RaftMessage.decodingLimits)
            else { return }
            inbox.append(message)
        }
    }

    func send(_ body: RaftMessage.Body, term: UInt64, to node: Endpoint) throws {
        var writer = WireWriter()
        try RaftMessage(group: 1, from: id, to: target, term: term, body: body).encodeFrame(into: &writer)
        try host.send(writer.bytes, to: node)
    }

    func take() -> [RaftMessage] {
        defer { inbox = [] }
        return inbox
    }
}
