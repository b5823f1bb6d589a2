import Chorus
import EventCore
import Foundation
import Raft
import TestSupport
import Testing
import UDPTransport

@testable import ChorusCLI

/// `chorus node`'s machine over real UDP: ``NodeSession``s on 127.0.0.1
/// with ports from the kernel, on one EventLoop, each with a data directory
/// of its own; waits poll with a deadline, no timing is asserted.
@Suite("chorus node", .timeLimit(.minutes(2)))
struct NodeSessionTests {
    /// The machines of one test. Loop-only.
    final class Machines {
        var sessions: [NodeSession?] = []
        var output: [[String]] = []
        /// What each machine's ``NodeSession/onFailure`` was told.
        var failures: [[String]] = []
        let directories: [TemporaryDirectory]
        let policy: RaftMembershipPolicy
        /// A 1 s election timeout (etcd's default), where the default
        /// 150 ms let a loaded CI machine's stalls change the leader, and
        /// with it the policy's observations, again and again.
        let raft: RaftConfiguration

        init(directories: [TemporaryDirectory]) {
            self.directories = directories
            var policy = RaftMembershipPolicy()
            policy.failedMemberGrace = .seconds(1)
            policy.stabilization = .milliseconds(200)
            policy.interval = .milliseconds(50)
            self.policy = policy
            var raft = RaftConfiguration()
            raft.electionTimeout = .seconds(1)
            raft.heartbeatInterval = .milliseconds(100)
            self.raft = raft
            output = directories.map { _ in [] }
            failures = output
            sessions = directories.map { _ in nil }
        }

        /// Starts machine `index` on `transport`, or on a socket bound to
        /// `bind` (through the first machine's endpoint, unless it is the
        /// first).
        func start(
            _ index: Int, bind: Endpoint = .loopbackV4(), on transport: UDPSocketTransport? = nil,
            bootstrap: [Endpoint]?, loop: EventLoop
        ) throws {
            let seeds = index == 0 ? [] : [try #require(sessions[0]).transport.localEndpoint]
            sessions[index] = try NodeSession(
                transport: try transport ?? UDPSocketTransport.bind(to: bind, on: loop), seeds: seeds,
                dataDirectory: directories[index].path + "/data", bootstrap: bootstrap, policy: policy, raft: raft,
                on: loop
            ) { [unowned self] line in output[index].append(line) }
            sessions[index]?.onFailure = { [unowned self] reason in failures[index].append(reason) }
        }

        /// Each running machine's `status` and its last lines of output,
        /// for a failure's message.
        var views: String {
            sessions.indices.compactMap { index in
                sessions[index].map { "machine \(index): \($0.status)\n  " + output[index].suffix(10).joined(separator: "\n  ") }
            }.joined(separator: "\n")
        }

        /// The voters the group's leader knows, once there is one.
        var leaderVoters: [NodeID]? {
            sessions.compactMap { $0?.replica }.first { !$0.stopped && $0.role == .leader }?.membership.ids
        }
    }

    /// `count` sockets on 127.0.0.1, ports from the kernel, bound before
    /// the machines start: the `bootstrap` lists name their endpoints.
    static func sockets(
        _ count: Int, on loop: EventLoop
    ) async throws -> (sockets: [LoopBound<UDPSocketTransport>], endpoints: [Endpoint]) {
        try await loop.submit {
            let sockets = try (0..<count).map { _ in try UDPSocketTransport.bind(to: .loopbackV4(), on: loop) }
            return (sockets.map { LoopBound($0, on: loop) }, sockets.map(\.localEndpoint))
        }
    }

    /// The answer of machine `index` to `line`.
    static func command(_ line: String, at index: Int, of machines: LoopBound<Machines>) async throws -> String {
        let loop = machines.loop
        return try await withCheckedThrowingContinuation { answered in
            loop.execute {
                guard let session = machines.value.sessions[index] else {
                    return answered.resume(throwing: CancellationError())
                }
                session.handle(line) { answered.resume(returning: $0) }
            }
        }
    }

    @Test("three machines bootstrap the group, a machine that joins meanwhile is not counted, writes and reads go through any of them, a crashed machine restarts from its data directory with its data, and on its port only, one whose directory was lost joins as a new machine, not with its --bootstrap line")
    func bootstrapWriteRestartJoin() async throws {
        let directories = try (0..<4).map { _ in try TemporaryDirectory() }
        defer { for directory in directories { directory.remove() } }
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        // Machine 4, without --bootstrap, reaches SWIM before machines 2
        // and 3, and so does a machine that bootstraps another list: the
        // first three still bootstrap on themselves, and the fourth joins
        // once they run the group.
        let (sockets, first) = try await Self.sockets(4, on: loop)
        let bootstrap = Array(first[0..<3])
        let stranger = try TemporaryDirectory()
        defer { stranger.remove() }
        let machines = try await loop.submit { () -> LoopBound<Machines> in
            let machines = Machines(directories: directories + [stranger])
            try machines.start(0, on: sockets[0].value, bootstrap: bootstrap, loop: loop)
            try machines.start(3, bootstrap: nil, loop: loop)
            try machines.start(4, on: sockets[3].value, bootstrap: [first[0], first[3]], loop: loop)
            return LoopBound(machines, on: loop)
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(5)) {
            machines.value.sessions[0]?.node.member.memberCount(.alive) == 3
        })
        try await loop.submit {
            for index in 1..<3 { try machines.value.start(index, on: sockets[index].value, bootstrap: bootstrap, loop: loop) }
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(15)) { machines.value.leaderVoters?.count == 4 })
        let (ids, outputs) = try await loop.submit {
            (machines.value.sessions.map { $0?.node.member.id }, machines.value.output)
        }
        let firstThree = ids[0..<3].compactMap { $0 }.sorted()
        let group = try #require(firstThree.first)
        let members = firstThree.map { "\($0)" }.joined(separator: ", ")
        for index in 0..<3 {
            #expect(outputs[index].contains("raft: group \(group.rawValue) bootstrapped, members \(members)"), "\(outputs[index])")
        }
        #expect(outputs[3].contains { $0.hasPrefix("raft: group \(group.rawValue) joining, members") }, "\(outputs[3])")
        #expect(!outputs[4].contains { $0.hasPrefix("raft:") }, "the stranger waits for its own list: \(outputs[4])")
        try await loop.submit {
            machines.value.sessions[4]?.stop()
            machines.value.sessions[4] = nil
        }

        #expect(try await Self.command("put greeting hello, world", at: 1, of: machines) == "ok")
        #expect(try await Self.command("get greeting", at: 2, of: machines) == "hello, world")
        #expect(try await Self.command("get greeting", at: 3, of: machines) == "hello, world")
        #expect(try await Self.command("get nothing", at: 0, of: machines) == "(not set)")
        #expect(try await Self.command("frobnicate", at: 0, of: machines).hasPrefix("error: not a command"))
        #expect(try await Self.command("put onlykey", at: 0, of: machines).hasPrefix("error: put takes a key and a value"))
        #expect(try await Self.command("get", at: 0, of: machines) == "error: get takes one key: get KEY")
        #expect(try await Self.command("status now", at: 0, of: machines) == "error: status takes nothing after it")
        #expect(try await Self.command("status", at: 0, of: machines).contains("voters"))

        // Machine 1 stops as if crashed, then restarts from its data
        // directory: elsewhere it is refused (the group reaches it where it
        // was), on its port it comes back with the same ID and its log.
        let (id, endpoint) = try await loop.submit { () -> (NodeID, Endpoint) in
            let session = try #require(machines.value.sessions[0])
            session.stop()
            machines.value.sessions[0] = nil
            return (session.node.member.id, session.transport.localEndpoint)
        }
        // A put forwarded to the stopped machine while it led ends
        // unknown (its forward went unanswered), as the user would see it;
        // the user puts again, once the others have elected a leader.
        var afterCrash = try await Self.command("put after crash", at: 2, of: machines)
        for _ in 0..<5
        where afterCrash.hasPrefix("error: whether the proposal committed is unknown")
            || afterCrash.hasPrefix("error: no answer within")
        {
            afterCrash = try await Self.command("put after crash", at: 2, of: machines)
        }
        #expect(afterCrash == "ok")
        let elsewhere = await #expect(throws: NodeDataError.self) {
            try await loop.submit { try machines.value.start(0, bootstrap: bootstrap, loop: loop) }
        }
        #expect(elsewhere?.problem.contains("bind there") == true)
        try await loop.submit { try machines.value.start(0, bind: endpoint, bootstrap: nil, loop: loop) }
        #expect(try await loop.submit { machines.value.sessions[0]?.node.member.id } == id)
        #expect(try await Self.command("get greeting", at: 0, of: machines) == "hello, world")
        #expect(try await Self.command("get after", at: 0, of: machines) == "crash")
        #expect(try await loop.submit {
            machines.value.output[0].contains { $0.hasPrefix("raft: group \(group.rawValue) restarted from its log") }
        })
        #expect(try await Self.command("delete greeting", at: 3, of: machines) == "ok")
        #expect(try await Self.command("get greeting", at: 0, of: machines) == "(not set)")

        // Machine 3's data directory is lost. Restarted with its old
        // --bootstrap line it would start a second group (a new ID, the
        // others' first membership differs): refused. Restarted without,
        // it joins as a new machine, and the old one is removed.
        let (lostID, lostEndpoint) = try await loop.submit { () -> (NodeID, Endpoint) in
            let session = try #require(machines.value.sessions[2])
            session.stop()
            machines.value.sessions[2] = nil
            return (session.node.member.id, session.transport.localEndpoint)
        }
        try FileManager.default.removeItem(atPath: directories[2].path + "/data")
        try await loop.submit { try machines.value.start(2, bind: lostEndpoint, bootstrap: bootstrap, loop: loop) }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            machines.value.output[2].contains { $0.contains("started the group on other machines") }
        })
        #expect(try await loop.submit { machines.value.sessions[2]?.replica == nil })
        #expect(try await loop.submit { machines.value.failures[2].count { $0.contains("started the group on other machines") } } == 1)
        try await loop.submit {
            machines.value.sessions[2]?.stop()
            machines.value.sessions[2] = nil
        }
        try FileManager.default.removeItem(atPath: directories[2].path + "/data")
        try await loop.submit { try machines.value.start(2, bind: lostEndpoint, bootstrap: nil, loop: loop) }
        let replacement = try #require(try await loop.submit { machines.value.sessions[2]?.node.member.id })
        #expect(replacement != lostID)
        // Up to 40 s: under a loaded CI machine the policy's leader may
        // change (each new leader observes SWIM afresh) before it acts.
        let replaced = try await LoopPolling.eventually(on: loop, within: .seconds(40)) {
            let voters = machines.value.leaderVoters ?? []
            return voters.contains(replacement) && !voters.contains(lostID)
        }
        let views = replaced ? "" : try await loop.submit { machines.value.views }
        #expect(replaced, "lost \(lostID), replacement \(replacement):\n\(views)")
        #expect(try await Self.command("get after", at: 2, of: machines) == "crash")

        // The data directory is locked while its machine runs.
        let twice = await #expect(throws: NodeDataError.self) {
            try await loop.submit {
                _ = try NodeSession(
                    bind: .loopbackV4(), seeds: [], dataDirectory: directories[1].path + "/data", bootstrap: nil, on: loop
                ) { _ in }
            }
        }
        #expect(twice?.problem == "another process runs this machine")
        try await loop.submit { for session in machines.value.sessions { session?.stop() } }
    }

    @Test("two clusters in one SWIM view (a machine joined through both): each group keeps its members, the machine joins neither and says why")
    func twoClusters() async throws {
        let directories = try (0..<3).map { _ in try TemporaryDirectory() }
        defer { for directory in directories { directory.remove() } }
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let (sockets, endpoints) = try await Self.sockets(2, on: loop)
        let machines = try await loop.submit { () -> LoopBound<Machines> in
            let machines = Machines(directories: directories)
            try machines.start(0, on: sockets[0].value, bootstrap: [endpoints[0]], loop: loop)
            try machines.start(1, on: sockets[1].value, bootstrap: [endpoints[1]], loop: loop)
            return LoopBound(machines, on: loop)
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            machines.value.sessions[0..<2].allSatisfy { $0?.replica?.role == .leader }
        })
        try await loop.submit {
            let value = machines.value
            value.sessions[2] = try NodeSession(
                bind: .loopbackV4(), seeds: endpoints, dataDirectory: directories[2].path + "/data", bootstrap: nil,
                policy: value.policy, raft: value.raft, on: loop
            ) { line in value.output[2].append(line) }
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            machines.value.output[2].contains { $0.hasPrefix("error: SWIM sees the machines of several clusters") }
        })
        #expect(try await Self.command("status", at: 2, of: machines).contains("several clusters"))
        // Once the two see each other, and five of their policies' passes
        // later, neither leader has taken in the other's machine.
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            machines.value.sessions[0..<2].allSatisfy { $0?.node.member.memberCount(.alive) == 3 }
        })
        try await withCheckedThrowingContinuation { (waited: CheckedContinuation<Void, Error>) in
            loop.execute { _ = loop.schedule(at: loop.now + machines.value.policy.interval * 5) { waited.resume() } }
        }
        let voters = try await loop.submit { machines.value.sessions.map { $0?.replica?.membership.ids } }
        let ids = try await loop.submit { machines.value.sessions.map { $0?.node.member.id } }
        #expect(voters[0] == [ids[0]].compactMap { $0 } && voters[1] == [ids[1]].compactMap { $0 } && voters[2] == nil)
        try await loop.submit { for session in machines.value.sessions { session?.stop() } }
    }

    @Test("a machine without --bootstrap waits to join, and says so; commands before the group starts are refused")
    func waitsToJoin() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let machines = try await loop.submit { () -> LoopBound<Machines> in
            let machines = Machines(directories: [directory])
            try machines.start(0, bootstrap: nil, loop: loop)
            return LoopBound(machines, on: loop)
        }
        #expect(try await Self.command("get a", at: 0, of: machines).hasPrefix("error: the Raft group does not run here"))
        #expect(try await Self.command("status", at: 0, of: machines).contains("waiting for a machine that runs the group"))
        try await loop.submit { machines.value.sessions[0]?.stop() }
    }

    @Test("a command waiting for a leader when the machine stops is answered as it stops: the outcome is unknown")
    func stopAnswersWaitingCommands() async throws {
        let directories = try (0..<3).map { _ in try TemporaryDirectory() }
        defer { for directory in directories { directory.remove() } }
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let (sockets, endpoints) = try await Self.sockets(3, on: loop)
        let machines = try await loop.submit { () -> LoopBound<Machines> in
            let machines = Machines(directories: directories)
            for index in 0..<3 { try machines.start(index, on: sockets[index].value, bootstrap: endpoints, loop: loop) }
            return LoopBound(machines, on: loop)
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(15)) { machines.value.leaderVoters?.count == 3 })
        // Two of three crash: the third soon knows no leader, and a
        // command waits for one (`NodeSession.leaderWait`).
        try await loop.submit {
            for index in 1..<3 {
                machines.value.sessions[index]?.stop()
                machines.value.sessions[index] = nil
            }
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(15)) {
            machines.value.sessions[0]?.replica.map { $0.leader == nil } == true
        })
        let answer = try await loop.submit { () -> String? in
            let session = try #require(machines.value.sessions[0])
            var answer: String?
            session.handle("put waiting 1") { answer = $0 }
            if let answer { return "answered before the stop: \(answer)" }
            session.stop()
            return answer
        }
        #expect(answer == "error: the machine stopped before the answer came: the outcome is unknown")
    }

    @Test("a crash between creating the log and saving the first membership bootstraps again; a log without a first membership (its file lost) is reported once, not started afresh")
    func firstStartCrashWindows() async throws {
        let directories = try (0..<2).map { _ in try TemporaryDirectory() }
        defer { for directory in directories { directory.remove() } }
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let (sockets, alone) = try await Self.sockets(1, on: loop)
        // The crash window: the identity saved, then the log created,
        // empty; no first membership yet.
        do {
            let data = try NodeDataDirectory(path: directories[0].path + "/data")
            try data.save(NodeDataDirectory.Identity(id: NodeID(0x5EED), endpoint: alone[0]))
            try FileRaftStorage(directory: data.raftPath, opening: .new).close()
        }
        let machines = try await loop.submit { () -> LoopBound<Machines> in
            let machines = Machines(directories: directories)
            try machines.start(0, on: sockets[0].value, bootstrap: alone, loop: loop)
            return LoopBound(machines, on: loop)
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { machines.value.leaderVoters?.count == 1 })
        #expect(try await Self.command("put k v", at: 0, of: machines) == "ok")

        // The same log restarted without its first membership: a fresh
        // start would vote again in terms it voted in, so it is refused.
        let endpoint = try await loop.submit { () -> Endpoint in
            let session = try #require(machines.value.sessions[0])
            session.stop()
            machines.value.sessions[0] = nil
            return session.transport.localEndpoint
        }
        try FileManager.default.removeItem(atPath: directories[0].path + "/data/first-membership")
        try await loop.submit { try machines.value.start(0, bind: endpoint, bootstrap: alone, loop: loop) }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(5)) {
            machines.value.output[0].contains { $0.hasPrefix("error: the Raft group could not start") }
        })
        // Five more polls of the session: still one report.
        let reports = try await withCheckedThrowingContinuation { (counted: CheckedContinuation<Int, Error>) in
            loop.execute {
                _ = loop.schedule(at: loop.now + NodeSession.pollInterval * 5) {
                    counted.resume(returning: machines.value.output[0].count { $0.hasPrefix("error: the Raft group could not start") })
                }
            }
        }
        #expect(reports == 1)
        #expect(try await loop.submit { machines.value.failures[0].count } == 1)
        #expect(try await Self.command("status", at: 0, of: machines).contains("could not start"))
        #expect(try await Self.command("get k", at: 0, of: machines).hasPrefix("error: the Raft group does not run here"))

        // The identity lost, the log kept: under a new ID the log would be
        // another replica's, so the machine does not start.
        try await loop.submit {
            machines.value.sessions[0]?.stop()
            machines.value.sessions[0] = nil
        }
        try FileManager.default.removeItem(atPath: directories[0].path + "/data/identity")
        let lost = await #expect(throws: NodeDataError.self) {
            try await loop.submit { try machines.value.start(0, bind: endpoint, bootstrap: alone, loop: loop) }
        }
        #expect(lost?.problem.contains("identity is lost") == true)
    }

    @Test("the data directory: the identity and the first membership round trip; a damaged file is a clear error")
    func dataDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let data = try NodeDataDirectory(path: directory.path + "/node")
        #expect(try data.identity() == nil)
        let identity = NodeDataDirectory.Identity(id: NodeID(0xABC), endpoint: try Endpoint(parsing: "127.0.0.1:7961"))
        try data.save(identity)
        #expect(try data.identity() == identity)

        #expect(try data.firstMembership() == nil)
        let first = NodeDataDirectory.FirstMembership(
            group: 0xABC, joining: true,
            members: [identity, .init(id: NodeID(0xFFFF_FFFF_FFFF_FFFF), endpoint: try Endpoint(parsing: "[::1]:7962"))])
        try data.save(first)
        #expect(try data.firstMembership() == first)

        for damaged in [
            "joining abc 1@nowhere", "joining abc", "joining 1@127.0.0.1:1", "bootstrap 0 1@127.0.0.1:1",
            "bootstrap abc 1@127.0.0.1:1 junk", "founding abc 1@127.0.0.1:1",
        ] {
            try directory.write(Array((damaged + "\n").utf8), to: directory.path + "/node/first-membership")
            #expect(throws: NodeDataError.self, "\(damaged)") { try data.firstMembership() }
        }
        for damaged in ["zz@127.0.0.1:1", "0@127.0.0.1:1", "1", ""] {
            try directory.write(Array(damaged.utf8), to: directory.path + "/node/identity")
            #expect(throws: NodeDataError.self, "\(damaged)") { try data.identity() }
        }
        try directory.write([0xFF, 0xFE], to: directory.path + "/node/identity")
        #expect(throws: NodeDataError.self) { try data.identity() }
    }

    @Test("the data directory's files survive a power cut after any system call whole or not at all, and whole once saved")
    func dataDirectoryPowerLoss() throws {
        let identity = NodeDataDirectory.Identity(id: NodeID(7), endpoint: try Endpoint(parsing: "127.0.0.1:7961"))
        let first = NodeDataDirectory.FirstMembership(group: 7, joining: false, members: [identity])
        for cut in 1...16 {
            for seed: UInt64 in 1...3 {
                let temporary = try TemporaryDirectory()
                defer { temporary.remove() }
                let path = temporary.path + "/node"
                let journal = try PowerLossJournal(root: temporary.path, cutAfter: cut)
                var saved = (identity: false, first: false)
                do {
                    let data = try NodeDataDirectory(path: path)
                    try data.save(identity)
                    saved.identity = !journal.isCut
                    try data.save(first)
                    saved.first = !journal.isCut
                } catch {
                    #expect(journal.isCut, "cut \(cut): \(error)")
                }
                try journal.restore(seed: seed)
                guard FileManager.default.fileExists(atPath: path) else {
                    #expect(!saved.identity, "cut \(cut), seed \(seed): the directory is gone")
                    continue
                }
                let data = try NodeDataDirectory(path: path)
                let found = (identity: try data.identity(), first: try data.firstMembership())
                #expect(found.identity == nil || found.identity == identity, "cut \(cut), seed \(seed)")
                #expect(found.first == nil || found.first == first, "cut \(cut), seed \(seed)")
                if saved.identity { #expect(found.identity == identity, "cut \(cut), seed \(seed)") }
                if saved.first { #expect(found.first == first, "cut \(cut), seed \(seed)") }
            }
        }
    }

    @Test("a bad command line is a usage error naming the problem")
    func usageErrors() throws {
        func parse(_ arguments: [String]) throws -> NodeCommand {
            try NodeCommand(
                options: try CommandOptions(
                    arguments[...], valued: NodeCommand.valuedOptions, switches: NodeCommand.switches, environment: [:]))
        }
        #expect(throws: UsageError.self) { try parse(["--data-dir", "/tmp/x"]) }
        #expect(throws: UsageError.self) { try parse(["--bind", "127.0.0.1:7961"]) }
        #expect(throws: UsageError.self) { try parse(["--bind", "0.0.0.0:7961", "--data-dir", "/tmp/x"]) }
        #expect(throws: UsageError.self) { try parse(["--bind", "127.0.0.1:0", "--data-dir", "/tmp/x"]) }
        let bind = ["--bind", "127.0.0.1:7961", "--data-dir", "/tmp/x"]
        for bootstrap in [
            "3", "127.0.0.1:7962,127.0.0.1:7963", "127.0.0.1:7961,127.0.0.1:7961", "127.0.0.1:7961,0.0.0.0:7962",
            "127.0.0.1:7961,127.0.0.1:0", "127.0.0.1:7961,[::1]:7962",
        ] {
            #expect(throws: UsageError.self, "\(bootstrap)") { try parse(bind + ["--bootstrap", bootstrap]) }
        }
        #expect(throws: UsageError.self, "a group of one with --join") {
            try parse(bind + ["--bootstrap", "127.0.0.1:7961", "--join", "127.0.0.1:7962"])
        }
        let command = try parse(bind + ["--bootstrap", "127.0.0.1:7961,127.0.0.1:7962", "--bootstrap", "127.0.0.1:7963"])
        #expect(command.bootstrap?.map(\.port) == [7961, 7962, 7963])
        #expect(command.seeds.isEmpty && command.policy.failedMemberGrace == .seconds(30))
    }
}
