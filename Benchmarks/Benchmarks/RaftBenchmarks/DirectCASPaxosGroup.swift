import CASPaxos
import EventCore
import WireCodec

/// What one run of a ``DirectCASPaxosGroup`` workload measured.
struct CASPaxosDirectOutcome {
    /// Proposals that succeeded, and those that failed.
    var succeeded = 0
    var failed = 0
    var seconds = 0.0
    var frames = 0
    var frameBytes = 0
    var rounds = 0
    /// Store syncs of the three acceptors (one per acceptor per round in
    /// which it wrote).
    var syncs = 0
    /// Request rounds (a prepare or an accept to every acceptor) per
    /// successful proposal.
    var roundTripsPerOp = 0.0
    /// Per-proposal latencies of a sequential run, in nanoseconds, sorted.
    var latencies: [Int64] = []

    var opsPerSecond: Double { seconds > 0 ? Double(succeeded) / seconds : 0 }

    func latency(_ percent: Int) -> Int64 {
        latencies.isEmpty ? 0 : latencies[(latencies.count - 1) * percent / 100]
    }
}

/// CASPaxos in the harness shape of ``DirectRaftGroup``: three
/// ``Acceptor``s with in-memory stores and one ``Proposer``, driven directly
/// in one thread; every message between nodes encoded into a frame and
/// decoded on the other side (`Frame.decodeBody` +
/// `CASPaxosMessage.decodeFrameBody(_:configuration:into:)`), coalesced
/// per destination as ``CASPaxosNode`` coalesces a loop turn's messages
/// (a ``CASPaxosOutbox`` per node, flushed once per round).
///
/// Two placements of the proposer:
/// - `colocated` (Raft's shape, whose leader is one of the three
///   replicas): the proposer runs on the first acceptor's node, and, as in
///   a ``CASPaxosNode`` with both roles, the messages between the two
///   never become frames: they wait for the node's sync and are handed
///   over in the next round;
/// - otherwise on a fourth node of its own, every message a frame.
///
/// The harness's own state is exempt from dynamic exclusivity checks, as
/// in ``DirectRaftGroup``.
///
/// The pump runs in rounds: each node with messages waiting handles all of
/// them, then performs the effects as ``CASPaxosNode`` does at the end of
/// a loop turn (an acceptor applies its writes to its store, syncs it
/// once, then sends its replies: one frame per destination, split only at
/// the frame limits). The clock stands still: no attempt times out and
/// nothing is retried.
///
/// Writes are uncontended: each key has one client, which writes a 64-byte
/// value and writes again as soon as the write completes (after the first
/// write of a key, the one-round-trip optimization takes each write
/// straight to the accept phase).
final class DirectCASPaxosGroup {
    private struct Inbox {
        var writer = WireWriter(capacity: 1 << 16)
        /// Where each frame ends, and the node that sent it.
        var frames: [(end: Int, from: Int)] = []
        /// Messages the node sent itself, covered by its last sync.
        var local: [CASPaxosMessage] = []
    }

    @exclusivity(unchecked) private var proposer: Proposer
    @exclusivity(unchecked) private var acceptors: [Acceptor]
    let stores: [any AcceptorStore]
    let configuration: CASPaxosConfiguration
    /// Nodes 0 ... 2 are the acceptors; the proposer is node 0 too
    /// (colocated) or node 3.
    private let endpoints: [Endpoint]
    private let proposerNode: Int
    @exclusivity(unchecked) private var inboxes: [Inbox]
    @exclusivity(unchecked) private var spare = Inbox()
    @exclusivity(unchecked) private var effects: [CASPaxosEffect] = []
    @exclusivity(unchecked) private var performing: [CASPaxosEffect] = []
    /// Each node's messages of the round, per destination.
    @exclusivity(unchecked) private var outboxes: [CASPaxosOutbox]
    /// Each node's messages to itself this round (before its sync).
    @exclusivity(unchecked) private var sentToSelf: [[CASPaxosMessage]]
    @exclusivity(unchecked) private var incoming: [CASPaxosMessage] = []
    private let now = Instant(nanoseconds: 1_000_000_000)
    private let keys: [[UInt8]]
    private let write: CASPaxosChange
    /// The key (its position in `keys`) of each running proposal.
    @exclusivity(unchecked) private var keyOfProposal: [UInt64: Int] = [:]
    /// Proposals still to start in the current run.
    @exclusivity(unchecked) private var remaining = 0
    @exclusivity(unchecked) private var outcome = CASPaxosDirectOutcome()

    /// - Parameters:
    ///   - keys: distinct keys, one client each.
    ///   - valueSize: the bytes each write stores.
    ///   - colocated: the proposer on the first acceptor's node.
    init(keys keyCount: Int, valueSize: Int = 64, oneRoundTrip: Bool = true, colocated: Bool = true) throws {
        var configuration = CASPaxosConfiguration()
        configuration.isOneRoundTripEnabled = oneRoundTrip
        configuration.maximumPendingProposals = max(4_096, keyCount)
        configuration.maximumCachedKeys = max(4_096, keyCount)
        // No datagrams here: batches as large as a message may be, as
        // Raft's appends are (the loopback setting; over UDP the default
        // keeps a batch to one 1,400-byte datagram).
        configuration.maximumBatchSize = configuration.maximumMessageSize
        self.configuration = configuration
        let nodeCount = colocated ? 3 : 4
        proposerNode = colocated ? 0 : 3
        endpoints = (1...nodeCount).map { Endpoint.loopbackV4(port: UInt16($0)) }
        stores = (0..<3).map { _ in InMemoryAcceptorStore() }
        acceptors = try stores.map { try Acceptor(recovering: try $0.load(), configuration: configuration) }
        proposer = try Proposer(
            id: NodeID(4), quorums: .majority(of: Array(endpoints[0..<3])), configuration: configuration, seed: 4)
        inboxes = Array(repeating: Inbox(), count: nodeCount)
        outboxes = Array(repeating: CASPaxosOutbox(configuration: configuration), count: nodeCount)
        sentToSelf = Array(repeating: [], count: nodeCount)
        keys = (0..<keyCount).map { Array("key-\($0)".utf8) }
        let value = [UInt8](repeating: 0x2A, count: valueSize)
        write = { _ in value }
    }

    /// Every key written once (both phases), so that the measured writes
    /// are the steady state (one round trip with the optimization on).
    func warmUp() throws {
        _ = try runClosedLoop(operations: keys.count)
    }

    /// Every key's client writes in a closed loop (one write in flight per
    /// key) until `operations` writes have completed.
    func runClosedLoop(operations: Int) throws -> CASPaxosDirectOutcome {
        outcome = CASPaxosDirectOutcome()
        let before = proposer.counters
        let clock = ContinuousClock()
        let started = clock.now
        remaining = operations
        for key in keys.indices where remaining > 0 { try propose(key) }
        try perform(proposerNode)
        pumpUntilIdle()
        outcome.seconds = (clock.now - started).seconds
        finish(since: before)
        guard outcome.succeeded + outcome.failed == operations else {
            throw BenchmarkSetupError("\(outcome.succeeded + outcome.failed) of \(operations) writes completed")
        }
        return outcome
    }

    /// One write at a time on the first key, `operations` times; each
    /// write's latency is from the proposal to its completion.
    func runSequential(operations: Int) throws -> CASPaxosDirectOutcome {
        outcome = CASPaxosDirectOutcome()
        outcome.latencies.reserveCapacity(operations)
        let before = proposer.counters
        let clock = ContinuousClock()
        let started = clock.now
        for _ in 0..<operations {
            let began = clock.now
            remaining = 1
            try propose(0)
            try perform(proposerNode)
            pumpUntilIdle()
            outcome.latencies.append((clock.now - began).nanoseconds)
        }
        outcome.seconds = (clock.now - started).seconds
        finish(since: before)
        outcome.latencies.sort()
        return outcome
    }

    private func finish(since before: ProposerCounters) {
        let requests = proposer.counters.requestsSent - before.requestsSent
        outcome.roundTripsPerOp = outcome.succeeded == 0 ? 0 : Double(requests) / 3 / Double(outcome.succeeded)
    }

    private func propose(_ key: Int) throws {
        remaining -= 1
        do throws(CASPaxosError) {
            let id = try proposer.propose(key: keys[key], change: write, now: now, into: &effects)
            keyOfProposal[id] = key
        } catch {
            throw BenchmarkSetupError("proposal refused: \(error)")
        }
    }

    // MARK: The pump

    func pumpUntilIdle() {
        while round() {}
    }

    /// Every node with messages waiting handles them and performs the
    /// effects. Returns whether anything happened.
    @discardableResult
    func round() -> Bool {
        var busy = false
        for node in inboxes.indices where !inboxes[node].frames.isEmpty || !inboxes[node].local.isEmpty {
            deliver(to: node)
            busy = true
        }
        if busy { outcome.rounds += 1 }
        return busy
    }

    private func deliver(to node: Int) {
        swap(&inboxes[node], &spare)
        Self.handOverEach(&spare.local) { route($0, to: node, from: endpoints[node]) }
        spare.local.removeAll(keepingCapacity: true)
        let configuration = configuration
        let limits = WireLimits(maximumFrameLength: configuration.maximumMessageSize)
        spare.writer.withUnsafeBytes { buffer in
            var start = 0
            for (end, from) in spare.frames {
                let frame = UnsafeRawBufferPointer(rebasing: buffer[start..<end])
                start = end
                do throws(WireError) {
                    let body = try Frame.decodeBody(frame, of: .casPaxos, limits: limits)
                    try CASPaxosMessage.decodeFrameBody(body, configuration: configuration, into: &incoming)
                } catch {
                    fatalError("a frame to node \(node) did not decode: \(error)")
                }
                Self.handOverEach(&incoming) { route($0, to: node, from: endpoints[from]) }
                incoming.removeAll(keepingCapacity: true)
            }
        }
        spare.writer.removeAll()
        spare.frames.removeAll(keepingCapacity: true)
        do {
            try perform(node)
        } catch {
            fatalError("node \(node): \(error)")
        }
    }

    /// Hands each message to `body`, moved out of the array (a
    /// `.accepted(requestID: 0)` left in its slot), as ``CASPaxosNode``
    /// hands over what it decoded: a copy of an accept costs about 300
    /// instructions.
    private static func handOverEach(_ messages: inout [CASPaxosMessage], _ body: (CASPaxosMessage) -> Void) {
        messages.withUnsafeMutableBufferPointer { messages in
            for index in messages.indices {
                let message = messages.moveElement(from: index)
                messages.initializeElement(at: index, to: .accepted(requestID: 0))
                body(message)
            }
        }
    }

    /// Hands `message` to the role of `node` it is for.
    private func route(_ message: CASPaxosMessage, to node: Int, from sender: Endpoint) {
        switch message {
        case .prepare, .readPrepare, .collectionPrepare, .accept, .acceptWithParent, .rewriteTombstone, .setMinimumAges,
            .removeTombstone, .listKeys, .setMinimumVersion:
            acceptors[node].receive(message, from: sender, into: &effects)
        case .promise, .promiseWithParent, .unrecordedPromise, .accepted, .conflict, .staleAge, .staleConfiguration,
            .registersFull, .invalidate, .invalidated, .acknowledged, .reconfigure, .configurationRefused, .keyList:
            proposer.receive(message, from: sender, now: now, into: &effects)
        }
    }

    /// `node`'s effects, as ``CASPaxosNode`` performs them: writes to its
    /// store, messages to its outbox (or, to itself, kept back), and
    /// completions (the client writes its key again, whose effects are
    /// performed in the same loop); then one sync if it wrote, and the
    /// round's frames leave (``flush(from:)``) with the messages to itself
    /// handed over next round.
    private func perform(_ node: Int) throws {
        var wrote = false
        let own = endpoints[node]
        while !effects.isEmpty {
            swap(&effects, &performing)
            for index in performing.indices {
                // Moved out, as ``CASPaxosNode`` performs its effects.
                var effect = CASPaxosEffect.maintenanceCompleted(id: 0, result: .success(()))
                swap(&effect, &performing[index])
                switch consume effect {
                case .persist(let write):
                    try stores[node].apply(write)
                    wrote = true
                case .send(let message, let destination):
                    if destination == own {
                        sentToSelf[node].append(message)
                    } else {
                        outboxes[node].append(message, to: destination)
                    }
                case .sendToEach(let message, let destinations):
                    if destinations.contains(own) {
                        sentToSelf[node].append(message)
                        outboxes[node].append(message, toEach: destinations, skipping: own)
                    } else {
                        outboxes[node].append(message, toEach: destinations)
                    }
                case .proposalCompleted(let id, let result):
                    switch result {
                    case .success: outcome.succeeded += 1
                    case .failure: outcome.failed += 1
                    }
                    if let key = keyOfProposal.removeValue(forKey: id), remaining > 0 { try propose(key) }
                case .maintenanceCompleted:
                    break
                }
            }
            performing.removeAll(keepingCapacity: true)
        }
        if wrote {
            try stores[node].sync()
            outcome.syncs += 1
        }
        flush(from: node)
        inboxes[node].local.append(contentsOf: sentToSelf[node])
        sentToSelf[node].removeAll(keepingCapacity: true)
    }

    /// Sends `node`'s messages of the round: one frame per destination
    /// (more only past the frame limits), into the destinations' inboxes.
    private func flush(from node: Int) {
        outboxes[node].flush { destination, encodeFrame in
            let target = Int(destination.port) - 1
            let before = inboxes[target].writer.count
            do throws(WireError) {
                try encodeFrame(&inboxes[target].writer)
            } catch {
                fatalError("cannot encode a frame to node \(target): \(error)")
            }
            inboxes[target].frames.append((inboxes[target].writer.count, node))
            outcome.frames += 1
            outcome.frameBytes += inboxes[target].writer.count - before
        }
    }
}
