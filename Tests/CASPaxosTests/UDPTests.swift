import CASPaxos
import EventCore
import Testing
import UDPTransport

/// CASPaxos on real sockets: 3 acceptors and 2 proposers in one process on
/// 127.0.0.1 with kernel-chosen ports, driven through the async API.
@Suite("CASPaxos over real UDP")
struct UDPTests {
    @Test("two proposers increment one counter through three acceptors")
    func counter() async throws {
        let loop = try EventLoop()
        loop.start()
        defer { loop.shutdown() }
        let (proposers, acceptors) = try await loop.submit { () -> ([LoopBound<CASPaxosNode>], LoopBound<[CASPaxosNode]>) in
            var acceptorNodes: [CASPaxosNode] = []
            for _ in 0..<3 {
                let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
                acceptorNodes.append(
                    try CASPaxosNode(
                        transport: transport, scheduler: loop, quorums: nil, acceptorStore: InMemoryAcceptorStore()))
            }
            let quorums = AcceptorQuorums.majority(of: acceptorNodes.map(\.transport.localEndpoint))
            var nodes: [LoopBound<CASPaxosNode>] = []
            for index in 0..<2 {
                let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
                let node = try CASPaxosNode(
                    transport: transport, scheduler: loop, quorums: quorums, acceptorStore: nil, seed: UInt64(index + 1))
                nodes.append(LoopBound(node, on: loop))
            }
            return (nodes, LoopBound(acceptorNodes, on: loop))
        }
        let increment: CASPaxosChange = { current in [UInt8((current?.first ?? 0) &+ 1)] }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for proposer in proposers {
                group.addTask {
                    for _ in 0..<10 { _ = try await proposer.propose(key: Array("n".utf8), change: increment) }
                }
            }
            try await group.waitForAll()
        }
        let value = try await proposers[0].propose(key: Array("n".utf8)) { $0 }
        #expect(value == [20])
        // The acceptors answered every proposal; stop everything on the loop.
        try await loop.submit {
            for node in acceptors.value + proposers.map(\.value) { node.stop() }
        }
    }
}
