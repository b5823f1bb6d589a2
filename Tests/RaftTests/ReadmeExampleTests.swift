import EventCore
import Raft
import TestSupport
import Testing
import UDPTransport

/// The README's Raft example, kept compiling and working: it must not rot.
@Suite("Raft README example")
struct ReadmeExampleTests {
    @Test("the README example runs: a one-node group on 127.0.0.1 elects itself and applies a put")
    func readmeExample() async throws {
        let loop = try EventLoop()
        loop.start()
        defer { loop.shutdown() }
        let (node, store) = try await loop.submit {
            let transport = try UDPSocketTransport.bind(to: try Endpoint(parsing: "127.0.0.1:0"), on: loop)
            let store = KeyValueStateMachine()
            let node = try RaftNode(
                id: NodeID(1), group: 7, peers: [:],  // a real group lists its other members here
                storage: InMemoryRaftStorage(), stateMachine: store, transport: transport, scheduler: loop)
            return (LoopBound(node, on: loop), LoopBound(store, on: loop))
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            node.value.role == .leader
        })
        let outcome = try await loop.submit { () -> LoopBound<[Result<[UInt8]?, RaftError>]> in
            let outcome = LoopBound([Result<[UInt8]?, RaftError>](), on: loop)
            node.value.propose(KeyValueCommand.put(key: "x", value: Array("1".utf8)).encoded) { result in
                // On a follower: .failure(.notLeader(leaderHint:)): send it to the hinted leader.
                outcome.value.append(result.map { try? KeyValueStateMachine.decodeResult($0) })
            }
            return outcome
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { !outcome.value.isEmpty })
        let results = try await loop.submit { outcome.value }
        #expect(results.count == 1)
        #expect(try results.first?.get() == .some(nil), "no previous value")
        #expect(try await loop.submit { store.value.values["x"] } == Array("1".utf8))
        try await loop.submit { node.value.stop() }
    }
}
