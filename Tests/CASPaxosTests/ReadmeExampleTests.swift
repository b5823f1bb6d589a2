import CASPaxos
import EventCore
import Synchronization
import TestSupport
import Testing
import UDPTransport

/// The README's CASPaxos example, kept compiling and working: it must not
/// rot. The same code, on ports from the kernel and in a temporary
/// directory, with what it prints checked instead.
@Suite("CASPaxos README example")
struct ReadmeExampleTests {
    @Test("the README example runs: three acceptors with file stores, a proposer, a delete that is collected")
    func readmeExample() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }

        let (acceptorNodes, acceptors) = try await loop.submit {
            let nodes = try (1...3).map { index in
                let transport = try UDPSocketTransport.bind(to: try Endpoint(parsing: "127.0.0.1:0"), on: loop)
                let store = try FileAcceptorStore(path: "\(path)/acceptor-\(index).log", opening: .new)
                return try CASPaxosNode(transport: transport, scheduler: loop, quorums: nil, acceptorStore: store)
            }
            return (nodes.map { LoopBound($0, on: loop) }, nodes.map(\.transport.localEndpoint))
        }
        let proposer = try await loop.submit {
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            return LoopBound(
                try CASPaxosNode(
                    transport: transport, scheduler: loop, quorums: .majority(of: acceptors), acceptorStore: nil,
                    configurationStore: try FileAcceptorStore(path: "\(path)/proposer.log", opening: .new),
                    proposers: [transport.localEndpoint]),
                on: loop)
        }

        let key = Array("visits".utf8)
        let increment: CASPaxosChange = { current in
            let count = current.flatMap { UInt64(String(decoding: $0, as: UTF8.self)) } ?? 0
            return Array(String(count + 1).utf8)
        }
        let visits = try await proposer.propose(key: key, change: increment)
        let same = try await proposer.read(key: key)
        let owner = try await proposer.propose(key: Array("owner".utf8)) { $0 ?? Array("me".utf8) }
        #expect(visits == Array("1".utf8))
        #expect(same == visits)
        #expect(owner == Array("me".utf8))

        // The README's wait: until the collection ends (or the delete
        // failed definitely, when no collection follows).
        let outcomes = Mutex<(deleted: Result<Void, CASPaxosError>?, collected: Result<Void, CASPaxosError>?)>((nil, nil))
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            loop.execute {
                proposer.value.delete(
                    key: key,
                    completion: { result in
                        outcomes.withLock { $0.deleted = result.map { _ in } }
                        if case .failure(let error) = result, !error.isIndeterminate { done.resume() }
                    },
                    collected: { result in
                        outcomes.withLock { $0.collected = result }
                        done.resume()
                    })
            }
        }
        let (deleted, collected) = outcomes.withLock { ($0.deleted, $0.collected) }
        #expect(collected != nil, "the wait ended with the collection")
        #expect(throws: Never.self) { try deleted?.get() }
        #expect(throws: Never.self) { try collected?.get() }
        // Collected: no acceptor holds the key any more, and it reads as empty.
        let registers = try await loop.submit {
            acceptorNodes.map { $0.value.acceptor?.registerCount ?? -1 }
        }
        #expect(registers == [1, 1, 1], "only \"owner\" is left")
        #expect(try await proposer.read(key: key) == nil)

        try await loop.submit {
            proposer.value.stop()
            for node in acceptorNodes { node.value.stop() }
        }
    }

    @Test("the README's nodes with both roles: three on 127.0.0.1, a write on one read on another")
    func bothRoles() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        // Kernel ports: the transports are bound first, to learn the endpoints.
        let (transports, servers) = try await loop.submit {
            let transports = try (0..<3).map { _ in
                try UDPSocketTransport.bind(to: try Endpoint(parsing: "127.0.0.1:0"), on: loop)
            }
            return (LoopBound(transports, on: loop), transports.map(\.localEndpoint))
        }
        var nodes: [LoopBound<CASPaxosNode>] = []
        let opening = FileAcceptorStore.Opening.new
        for me in 0..<3 {
            let node = try await loop.submit {
                var configuration = CASPaxosConfiguration()
                configuration.proposalTimeout = .seconds(5)
                configuration.attemptTimeout = .milliseconds(50)
                configuration.resendInterval = .milliseconds(10)
                configuration.isOneRoundTripEnabled = true
                let transport = transports.value[me]
                return LoopBound(
                    try CASPaxosNode(
                        transport: transport, scheduler: loop, configuration: configuration,
                        quorums: .majority(of: servers),
                        acceptorStore: try FileAcceptorStore(path: "\(path)/acceptor-\(me).log", opening: opening),
                        proposers: servers),
                    on: loop)
            }
            nodes.append(node)
        }
        #expect(try await nodes[0].propose(key: Array("k".utf8)) { _ in Array("v".utf8) } == Array("v".utf8))
        #expect(try await nodes[2].read(key: Array("k".utf8)) == Array("v".utf8))
        let started = nodes
        let local = try await loop.submit { started.map { $0.value.counters.messagesDeliveredLocally } }
        #expect(local[0] > 0 && local[2] > 0, "each proposer reached its own acceptor without a datagram")
    }
}
