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
        try loop.start()
        defer { loop.shutdown() }
        let (node, store) = try await loop.submit {
            let transport = try UDPSocketTransport.bind(to: try Endpoint(parsing: "127.0.0.1:0"), on: loop)
            let store = KeyValueStateMachine()
            let node = try RaftNode(
                id: NodeID(1), group: 7, peers: [:],  // a real group lists its other members here
                storage: InMemoryRaftStorage(), stateMachine: store, transport: transport, scheduler: loop)
            return (LoopBound(node, on: loop), LoopBound(store, on: loop))
        }
        // The README waits for `leader` to be known (here, this node).
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            node.value.leader != nil
        })
        #expect(try await loop.submit { node.value.leader == node.value.id })
        // As the README: the async propose, from this task.
        let bytes = try await node.propose(KeyValueCommand.put(key: "x", value: Array("1".utf8)).encoded)
        #expect(try KeyValueStateMachine.decodeResult(bytes) == nil, "no previous value")
        #expect(try await loop.submit { store.value.values["x"] } == Array("1".utf8))
        try await loop.submit { node.value.stop() }
    }
}

/// The README's counter state machine, as printed there.
final class Counter: RaftStateMachine {
    private(set) var total: UInt64 = 0

    func apply(_ command: [UInt8], at index: UInt64) -> [UInt8] {
        total += UInt64(command.first ?? 0)
        return withUnsafeBytes(of: total.littleEndian) { Array($0) }
    }

    func snapshot() -> [UInt8] { withUnsafeBytes(of: total.littleEndian) { Array($0) } }

    func restore(from snapshot: [UInt8]) throws {
        guard snapshot.count == 8 else { throw CounterError.badSnapshot }
        total = snapshot.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }
}
enum CounterError: Error { case badSnapshot }

@Suite("Raft README counter example")
struct ReadmeCounterTests {
    @Test("the README counter on FileRaftStorage: totals survive a restart through a snapshot and the log after it")
    func counterSurvivesRestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        var configuration = RaftConfiguration()
        configuration.snapshotInterval = 4
        configuration.entriesKeptAfterSnapshot = 1
        let settings = configuration
        func start(_ opening: FileRaftStorage.Opening) async throws
            -> (LoopBound<RaftNode>, LoopBound<Counter>, LoopBound<UDPSocketTransport>)
        {
            try await loop.submit {
                let transport = try UDPSocketTransport.bind(to: try Endpoint(parsing: "127.0.0.1:0"), on: loop)
                let counter = Counter()
                let node = try RaftNode(
                    id: NodeID(1), group: 8, peers: [:],
                    storage: try FileRaftStorage(directory: directory.path, opening: opening),
                    stateMachine: counter, transport: transport, scheduler: loop, configuration: settings)
                return (LoopBound(node, on: loop), LoopBound(counter, on: loop), LoopBound(transport, on: loop))
            }
        }
        let (node, counter, transport) = try await start(.new)
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { node.value.leader != nil })
        try await loop.submit { for step in 1...10 { node.value.propose([UInt8(step)]) { _ in } } }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { counter.value.total == 55 })
        try await loop.submit {
            #expect(node.value.snapshotIndex >= 4, "a snapshot was taken")
            node.value.stop()
            (node.value.storage as? FileRaftStorage)?.close()
            transport.value.close()
        }
        let (restarted, restored, second) = try await start(.existing)
        #expect(try await loop.submit { restored.value.total } == 55, "snapshot restored, later entries applied")
        // The README's read, once the restarted node leads again.
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { restarted.value.role == .leader })
        #expect(try await restarted.read { node in (node.stateMachine as? Counter)?.total } == 55)
        try await loop.submit {
            restarted.value.stop()
            second.value.close()
        }
    }
}
