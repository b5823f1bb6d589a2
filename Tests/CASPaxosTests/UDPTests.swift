import CASPaxos
import EventCore
import Synchronization
import TestSupport
import Testing
import UDPTransport

/// CASPaxos on real sockets: 3 acceptors and 2 proposers in one process on
/// 127.0.0.1 with kernel-chosen ports, driven through the async API.
@Suite("CASPaxos over real UDP")
struct UDPTests {
    /// Proposes `change` again while it ends indeterminate (it must apply
    /// at most once); throws any other failure, and a cancellation.
    static func proposeUntilKnown(
        _ proposer: LoopBound<CASPaxosNode>, key: [UInt8], _ change: @escaping CASPaxosChange
    ) async throws {
        while true {
            do {
                _ = try await proposer.propose(key: key, change: change)
                return
            } catch {
                guard error.isIndeterminate, error.code != .cancelled else { throw error }
            }
        }
    }

    /// Each of `proposers` increments the counter "n" `times` times, all
    /// at once. The value is the counter, then each proposer's last
    /// increment number: a retry after an indeterminate outcome
    /// (contention can leave one) applies at most once.
    static func incrementConcurrently(through proposers: [LoopBound<CASPaxosNode>], times: UInt8) async throws {
        let count = proposers.count
        @Sendable func increment(by client: Int, number: UInt8) -> CASPaxosChange {
            { current in
                var value = current ?? [UInt8](repeating: 0, count: 1 + count)
                guard value[1 + client] != number else { return value }
                value[0] &+= 1
                value[1 + client] = number
                return value
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (client, proposer) in proposers.enumerated() {
                group.addTask {
                    for number in UInt8(1)...times {
                        try await proposeUntilKnown(proposer, key: Array("n".utf8), increment(by: client, number: number))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Three acceptors (in-memory stores) and `count` proposers, each a
    /// node of its own on 127.0.0.1.
    static func cluster(
        proposers count: Int, on loop: EventLoop
    ) async throws -> (proposers: [LoopBound<CASPaxosNode>], acceptors: LoopBound<[CASPaxosNode]>) {
        try await loop.submit { () -> ([LoopBound<CASPaxosNode>], LoopBound<[CASPaxosNode]>) in
            var acceptors: [CASPaxosNode] = []
            for _ in 0..<3 {
                let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
                acceptors.append(
                    try CASPaxosNode(
                        transport: transport, scheduler: loop, quorums: nil, acceptorStore: InMemoryAcceptorStore()))
            }
            let quorums = AcceptorQuorums.majority(of: acceptors.map(\.transport.localEndpoint))
            let proposers = try (0..<count).map { index in
                let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
                return LoopBound(
                    try CASPaxosNode(
                        transport: transport, scheduler: loop, quorums: quorums, acceptorStore: nil,
                        seed: UInt64(index + 1)),
                    on: loop)
            }
            return (proposers, LoopBound(acceptors, on: loop))
        }
    }

    @Test("two proposers increment one counter through three acceptors")
    func counter() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let (proposers, acceptors) = try await Self.cluster(proposers: 2, on: loop)
        try await Self.incrementConcurrently(through: proposers, times: 10)
        let value = try await proposers[0].read(key: Array("n".utf8))
        #expect(value == [20, 10, 10])
        // The acceptors answered every proposal; stop everything on the
        // loop: each node removes its shutdown handler, the transports'
        // stay.
        try await loop.submit {
            let handlers = loop.shutdownHandlerCount
            for node in acceptors.value + proposers.map(\.value) { node.stop() }
            #expect(loop.shutdownHandlerCount == handlers - 5)
        }
    }

    @Test("three nodes with both roles increment one counter; each answers its own proposer without a datagram")
    func colocatedRoles() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let nodes = try await loop.submit { () -> [LoopBound<CASPaxosNode>] in
            let transports = try (0..<3).map { _ in try UDPSocketTransport.bind(to: .loopbackV4(), on: loop) }
            let quorums = AcceptorQuorums.majority(of: transports.map(\.localEndpoint))
            return try transports.enumerated().map { index, transport in
                LoopBound(
                    try CASPaxosNode(
                        transport: transport, scheduler: loop, quorums: quorums, acceptorStore: InMemoryAcceptorStore(),
                        seed: UInt64(index + 1)), on: loop)
            }
        }
        try await Self.incrementConcurrently(through: nodes, times: 10)
        let value = try await nodes[2].read(key: Array("n".utf8))
        #expect(value == [30, 10, 10, 10])
        try await loop.submit {
            for node in nodes.map(\.value) {
                let counters = node.counters
                // Of each round's 3 requests, the one to the node's own
                // acceptor and that acceptor's answer never became
                // datagrams (the last round's may still be on their way).
                let rounds = counters.proposer.requestsSent / 3
                #expect(rounds >= 10)
                #expect(counters.messagesDeliveredLocally >= 2 * rounds - 2)
                #expect(counters.messagesDeliveredLocally <= 2 * rounds)
                node.stop()
            }
        }
    }

    @Test("a node that is its own quorum on a real loop answers itself in the loop's next iteration, not at a timer tick")
    func ownQuorumOnEventLoop() async throws {
        // A 1-hour tick: a hand-over that waited for a timer would stall.
        let loop = try EventLoop(timerResolution: .seconds(3600))
        try loop.start()
        defer { loop.shutdown() }
        let writes = 20
        let done = Mutex(0)
        let node = try await loop.submit { () -> LoopBound<CASPaxosNode> in
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            let node = try CASPaxosNode(
                transport: transport, scheduler: loop, quorums: .majority(of: [transport.localEndpoint]),
                acceptorStore: InMemoryAcceptorStore())
            func write(_ number: Int) {
                node.propose(key: [1], change: { _ in [UInt8(number)] }) { result in
                    guard case .success = result else { return }
                    done.withLock { $0 += 1 }
                    if number < writes { write(number + 1) }
                }
            }
            write(1)
            return LoopBound(node, on: loop)
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { done.withLock { $0 } == writes })
        try await loop.submit {
            let counters = node.value.counters
            // The first write prepares and accepts, the others (1RTT) only
            // accept: a request and its answer per phase, none a datagram.
            #expect(counters.messagesDeliveredLocally == 4 + 2 * (writes - 1))
            #expect(counters.messagesSent == 0)
            node.value.stop()
        }
    }

    @Test("500 writes on distinct keys made together travel in batches of one datagram each, never fragmented")
    func batches() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let (proposers, acceptors) = try await Self.cluster(proposers: 1, on: loop)
        let proposer = proposers[0]
        let value = [UInt8](repeating: 0x5A, count: 100)
        let results = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[Bool], Error>) in
            let accepted = loop.execute {
                var outcomes: [Bool] = []
                for index in 0..<500 {
                    proposer.value.propose(key: Array("key-\(index)".utf8), change: { _ in value }) { result in
                        outcomes.append((try? result.get()) == value)
                        if outcomes.count == 500 { continuation.resume(returning: outcomes) }
                    }
                }
            }
            if !accepted { continuation.resume(throwing: CASPaxosError(.notAvailable, detail: "the loop stopped")) }
        }
        #expect(results.allSatisfy { $0 })
        let (counters, fragmented) = try await loop.submit {
            let transports = (acceptors.value + [proposer.value]).map(\.transport)
            let fragmented = transports.reduce(0) {
                $0 + (($1 as? UDPSocketTransport)?.counters.fragmentedMessagesSent ?? 1)
            }
            return (proposer.value.counters, fragmented)
        }
        // An accept of a 100-byte value takes about 135 bytes: ten or so fit
        // the default batch of 1,400 bytes (UDPTransport's datagram size).
        #expect(counters.messagesSent >= 2 * 3 * 500)
        #expect(counters.framesSent < counters.messagesSent / 8)
        #expect(fragmented == 0)
        try await loop.submit {
            for node in acceptors.value + [proposer.value] { node.stop() }
        }
    }

    /// A proposer whose acceptors nobody listens on, and whose proposals
    /// wait an hour: no answer will ever come.
    static func silentProposer(on loop: EventLoop) async throws -> LoopBound<CASPaxosNode> {
        try await loop.submit { () -> LoopBound<CASPaxosNode> in
            var configuration = CASPaxosConfiguration()
            configuration.proposalTimeout = .seconds(3_600)
            configuration.attemptTimeout = .seconds(3_600)
            let silent = (1...3).map { Endpoint.loopbackV4(port: UInt16(9 + $0)) }
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            return LoopBound(
                try CASPaxosNode(
                    transport: transport, scheduler: loop, configuration: configuration,
                    quorums: .majority(of: silent), acceptorStore: nil),
                on: loop)
        }
    }

    /// Proposes on `proposer` in a task of its own, and waits until the
    /// proposal is pending there (`pending` proposals in all).
    static func proposalInFlight(
        on proposer: LoopBound<CASPaxosNode>, pending: Int = 1
    ) async throws -> Task<Result<[UInt8]?, CASPaxosError>, Never> {
        let task = Task { () -> Result<[UInt8]?, CASPaxosError> in
            do throws(CASPaxosError) {
                return .success(try await proposer.propose(key: [1], change: { _ in [1] }))
            } catch {
                return .failure(error)
            }
        }
        while try await pendingCount(of: proposer) < pending { try await Task.sleep(for: .milliseconds(1)) }
        return task
    }

    /// The error `proposal` failed with; nil, recording an issue, if it
    /// succeeded.
    static func failure(of proposal: Task<Result<[UInt8]?, CASPaxosError>, Never>) async throws -> CASPaxosError? {
        guard case .failure(let error)? = try await BoundedWait.value(of: proposal) else {
            Issue.record("the proposal succeeded, or its wait did not end")
            return nil
        }
        return error
    }

    static func pendingCount(of proposer: LoopBound<CASPaxosNode>) async throws -> Int {
        try await proposer.loop.submit { proposer.value.proposer?.pendingCount ?? 0 }
    }

    @Test("an async proposal waiting on acceptors that never answer ends when its loop shuts down", .timeLimit(.minutes(2)))
    func shutdownEndsAsyncProposals() async throws {
        let loop = try EventLoop()
        try loop.start()
        let proposer = try await Self.silentProposer(on: loop)
        let outcome = try await Self.proposalInFlight(on: proposer)
        loop.shutdown()
        #expect(try await Self.failure(of: outcome)?.code == .notAvailable)
    }

    /// Before, cancelling the task did not end the wait: a caller with a
    /// deadline of its own could not leave before the proposal's (an hour
    /// here). A proposal that sent no accept is withdrawn: its change will
    /// never be written.
    @Test("cancelling its task withdraws an async proposal that sent no accept, queued or preparing: definite", .timeLimit(.minutes(2)))
    func cancellationWithdraws() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let proposer = try await Self.silentProposer(on: loop)
        let preparing = try await Self.proposalInFlight(on: proposer)
        let queued = try await Self.proposalInFlight(on: proposer, pending: 2)
        queued.cancel()
        let queuedError = try await Self.failure(of: queued)
        #expect(queuedError?.code == .withdrawn)
        #expect(queuedError?.isIndeterminate == false)
        #expect(try await Self.pendingCount(of: proposer) == 1)
        preparing.cancel()
        #expect(try await Self.failure(of: preparing)?.code == .withdrawn)
        #expect(try await Self.pendingCount(of: proposer) == 0)
        try await loop.submit { proposer.value.stop() }
    }

    /// Its first write cached the key's ballot, so the second goes
    /// straight to the accept phase, where the acceptors, stopped, leave
    /// it.
    @Test("cancelling its task ends an async proposal's wait after it sent an accept, as indeterminate; the proposal goes on", .timeLimit(.minutes(2)))
    func cancellationAfterAnAccept() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let (proposers, acceptors) = try await Self.cluster(proposers: 1, on: loop)
        let proposer = proposers[0]
        #expect(try await proposer.propose(key: [1], change: { _ in [0] }) == [0])
        try await loop.submit { for node in acceptors.value { node.stop() } }
        let accepting = try await Self.proposalInFlight(on: proposer)
        #expect(try await loop.submit { proposer.value.counters.proposer.oneRoundTripAttempts } == 1)
        accepting.cancel()
        let error = try await Self.failure(of: accepting)
        #expect(error?.code == .cancelled)
        #expect(error?.isIndeterminate == true)
        #expect(try await Self.pendingCount(of: proposer) == 1)
        try await loop.submit { proposer.value.stop() }
    }
}
