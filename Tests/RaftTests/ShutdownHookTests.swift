import EventCore
import Raft
import Testing
import UDPTransport

/// A RaftNode on an EventLoop adds one shutdown handler, and its own stop
/// removes it: a loop that starts and stops many nodes keeps none of theirs.
@Suite("Raft node shutdown handler")
struct ShutdownHookTests {
    @Test("a node adds one shutdown handler; stop removes it, and a second stop changes nothing")
    func stopRemovesHandler() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let counts = try await loop.submit { () -> [Int] in
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            let before = loop.shutdownHandlerCount
            var counts = [before]
            for _ in 0..<3 {
                let node = try RaftNode(
                    id: NodeID(1), group: 1, peers: [:], storage: InMemoryRaftStorage(),
                    stateMachine: KeyValueStateMachine(), transport: transport, scheduler: loop)
                counts.append(loop.shutdownHandlerCount - before)
                node.stop()
                counts.append(loop.shutdownHandlerCount - before)
                node.stop()
                counts.append(loop.shutdownHandlerCount - before)
            }
            transport.close()
            return counts
        }
        #expect(counts.dropFirst() == [1, 0, 0, 1, 0, 0, 1, 0, 0])
    }
}
