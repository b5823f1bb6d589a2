import EventCore
import Simulation
import Testing
import WireCodec
@testable import Raft

/// Configuration validation, the in-memory storage and the key-value
/// state machine's commands, on their own.
@Suite("Configuration, storage and the key-value store")
struct ConfigurationAndStoreTests {
    static func changed(_ change: (inout RaftConfiguration) -> Void) -> RaftConfiguration {
        var configuration = RaftConfiguration()
        change(&configuration)
        return configuration
    }

    @Test("each invalid configuration field is named in the error", arguments: [
        ("electionTimeout", changed { $0.electionTimeout = .milliseconds(5) }),
        ("heartbeatInterval", changed { $0.heartbeatInterval = .milliseconds(500) }),
        ("maximumInflightMessages", changed { $0.maximumInflightMessages = 0 }),
        ("maximumAppendBytes", changed { $0.maximumAppendBytes = 10 }),
        ("maximumInflightBytes", changed { $0.maximumInflightBytes = 1_024 }),
        ("maximumCommandSize", changed { $0.maximumCommandSize = 0 }),
        ("maximumUncommittedBytes", changed { $0.maximumUncommittedBytes = 1 }),
    ])
    func invalidConfiguration(field: String, configuration: RaftConfiguration) {
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        do {
            try configuration.validate()
        } catch {
            #expect(error.field == field)
        }
    }

    @Test("a replica refuses itself or a duplicate among its peers")
    func invalidPeers() {
        #expect(throws: ConfigurationError.self) {
            try RaftReplica(id: NodeID(1), group: 1, peers: [NodeID(1), NodeID(2)], storage: InMemoryRaftStorage(),
                            seed: 1, now: .zero)
        }
        #expect(throws: ConfigurationError.self) {
            try RaftReplica(id: NodeID(1), group: 1, peers: [NodeID(2), NodeID(2)], storage: InMemoryRaftStorage(),
                            seed: 1, now: .zero)
        }
    }

    /// The default UDP transport sends up to 4 MiB and a frame header; a
    /// command of the 4 MiB the configuration allows, in its append, is
    /// longer, and used to be appended and never sent, blocking the log.
    @Test("a node refuses a transport that cannot send its largest frame, naming the setting; a command at the largest size it admits commits")
    func largestFrameFitsTransport() throws {
        let network = SimulatedNetwork(seed: 3)
        network.maximumMessageSize = 1 << 20
        var configuration = RaftConfiguration()
        configuration.maximumCommandSize = 1 << 20
        configuration.maximumUncommittedBytes = 4 << 20
        let host = network.addNode()
        do {
            _ = try RaftNode(
                id: NodeID(1), group: 1, peers: [NodeID(2): .loopbackV4(port: 2)], storage: InMemoryRaftStorage(),
                stateMachine: KeyValueStateMachine(), transport: host, scheduler: host, configuration: configuration)
            Issue.record("a node whose appends the transport refuses was made")
        } catch let error as ConfigurationError {
            #expect(error.field == "maximumCommandSize" && error.allowedRange.contains("\(1 << 20)"), "\(error)")
        }
        #expect(configuration.largestFrameLength > 1 << 20)

        // The largest command whose frame fits: proposed, it commits.
        configuration.maximumCommandSize = (1 << 20) - (configuration.largestFrameLength - (1 << 20))
        #expect(configuration.largestFrameLength == 1 << 20)
        let cluster = try RaftCluster(count: 3, seed: 3, configuration: configuration)
        cluster.network.maximumMessageSize = 1 << 20
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        guard let leader = cluster.leader else { return }
        var outcome: Result<[UInt8], RaftError>?
        cluster.rafts[leader]?.propose([UInt8](repeating: 7, count: configuration.maximumCommandSize)) { outcome = $0 }
        #expect(cluster.run(until: { outcome != nil }, limit: .seconds(5)))
        #expect((try? outcome?.get()) != nil, "\(String(describing: outcome))")
    }

    @Test("in-memory storage: appends replace the suffix, reads respect the byte budget but return at least one entry")
    func inMemoryStorage() throws {
        let storage = InMemoryRaftStorage()
        #expect(storage.firstIndex == 1 && storage.lastIndex == 0 && storage.term(at: 0) == 0)
        try storage.persist((1...5).map { RaftEntry(term: 1, index: UInt64($0), command: Array(repeating: 0, count: 10)) },
                            hardState: nil)
        try storage.persist([RaftEntry(term: 2, index: 4, command: [1])], hardState: nil)
        #expect(storage.lastIndex == 4)
        #expect(storage.allEntries.map(\.term) == [1, 1, 1, 2])
        #expect(storage.term(at: 5) == nil)
        #expect(storage.entries(from: 1, through: 4, maximumBytes: 25).count == 2)
        #expect(storage.entries(from: 1, through: 4, maximumBytes: 0).count == 1)
        #expect(storage.entries(from: 3, through: 9, maximumBytes: .max).map(\.index) == [3, 4])
    }

    @Test("key-value commands round-trip; a malformed command changes nothing and is counted")
    func keyValueCommands() throws {
        let store = KeyValueStateMachine()
        let commands: [KeyValueCommand] = [.put(key: "a", value: [1]), .put(key: "a", value: [2]), .get(key: "a"),
                                           .delete(key: "a"), .get(key: "a")]
        var results: [[UInt8]?] = []
        for (offset, command) in commands.enumerated() {
            let decoded = try command.encoded.withUnsafeBytes { try KeyValueCommand(decoding: $0) }
            #expect(decoded == command)
            results.append(try KeyValueStateMachine.decodeResult(store.apply(command.encoded, at: UInt64(offset + 1))))
        }
        #expect(results == [nil, [1], [2], [2], nil])
        #expect(store.apply([9, 9, 9], at: 6) == [])
        #expect(store.malformedCommands == 1)
        #expect(store.values.isEmpty)
        #expect(throws: WireError.self) { try KeyValueStateMachine.decodeResult([]) }
    }
}
