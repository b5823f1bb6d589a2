import CASPaxos
import EventCore
import UDPTransport

/// The nodes of one loop of a ``CASPaxosLoopbackRun`` and the clients of
/// its proposers: each client proposes an increment of its key, and the
/// next as soon as one ends, until the group's operations are done.
/// Loop-confined.
final class ClosedLoopClients {
    private let loop: EventLoop
    /// Every node on the loop; those with a proposer first get clients.
    private var nodes: [CASPaxosNode]
    /// The key of each client of each proposing node, in node order.
    private let keys: [[String]]
    /// Draw each write's key from this many instead (0: the clients' own).
    private let randomKeys: Int
    private var random: SeededRandomGenerator
    private let operations: Int
    private let deadlineSlack = Duration.milliseconds(50)
    private var issued = 0
    private var tally: ClosedLoopTally
    private var done: ((CASPaxosRunOutcome) -> Void)?

    /// - Parameters:
    ///   - nodes: the loop's nodes, acceptors or proposers or both.
    ///   - keys: for each node with a proposer, in order, the keys of its
    ///     clients (one client each).
    ///   - randomKeys: above 0, each write goes to a key drawn from this
    ///     many (`key-0` ...), shared by every client, instead.
    ///   - operations: the proposals this group completes.
    ///   - seed: seeds the draws of keys.
    init(nodes: [CASPaxosNode], keys: [[String]], randomKeys: Int, operations: Int, loop: EventLoop, seed: UInt64) {
        self.nodes = nodes
        self.keys = keys
        self.randomKeys = randomKeys
        random = SeededRandomGenerator(seed: seed)
        self.operations = operations
        self.loop = loop
        tally = ClosedLoopTally(operations: operations, startingAt: .zero)
    }

    /// Starts every client; `done` gets the group's outcome once its
    /// operations have completed (at once if it has none).
    func start(_ done: @escaping (CASPaxosRunOutcome) -> Void) {
        self.done = done
        tally = ClosedLoopTally(operations: operations, startingAt: loop.now)
        guard operations > 0 else { return finish() }
        let proposers = nodes.filter { $0.proposer != nil }
        for (node, keys) in zip(proposers, keys) {
            for key in keys { issue(on: node, key: Array(key.utf8)) }
        }
    }

    private func issue(on node: CASPaxosNode, key: [UInt8]) {
        guard issued < operations else { return }
        issued += 1
        let key = randomKeys > 0 ? Array("key-\(Int.random(in: 0..<randomKeys, using: &random))".utf8) : key
        let began = loop.now
        let increment: CASPaxosChange = { current in
            let value = (current ?? []).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } &+ 1
            return (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
        }
        let deadline = began + node.configuration.proposalTimeout + deadlineSlack
        node.propose(key: key, change: increment) { [unowned self] result in
            let now = loop.now
            if now > deadline { tally.countOverrun() }
            let succeeded = if case .success = result { true } else { false }
            if tally.end(succeeded: succeeded, began: began, now: now) {
                finish()
            } else {
                issue(on: node, key: key)
            }
        }
    }

    private func finish() {
        done?(tally.outcome)
        done = nil
    }

    /// Stops the nodes and closes their sockets; returns what they did.
    func close() -> NodeFigures {
        let figures = NodeFigures(nodes)
        for node in nodes {
            node.stop()
            (node.transport as? UDPSocketTransport)?.close()
        }
        nodes = []
        return figures
    }
}
