import Chorus
import Dispatch
import EventCore
import Foundation
import Raft

/// `chorus node`: one machine of a replicated key-value store in this
/// process (a ``NodeSession``): SWIM finds the machines, a Raft group
/// whose membership SWIM drives replicates the map, a data directory keeps
/// it across restarts. Commands come from standard input.
struct NodeCommand {
    static let usage = """
        usage: chorus node --bind HOST:PORT --data-dir DIR [--join HOST:PORT ...]
                           [--bootstrap HOST:PORT,HOST:PORT,...] [options]

        Runs one machine of a replicated key-value map: a SWIM member and a Raft
        replica on one UDP socket bound to HOST:PORT (an address and port the others
        can reach: 127.0.0.1:7961, not 0.0.0.0 or port 0), its log and identity in
        DIR (created if missing; its ID is random at the first start). The group's
        first machines each start with --bootstrap and the list of their endpoints
        (the same list, its own --bind in it, as etcd's --initial-cluster; they are
        each other's seeds) and wait until SWIM sees one machine alive at each that
        bootstraps the same list, then start the group on them; a machine started without --bootstrap joins
        the group once a machine that runs it answers (its leader adds it as a
        learner, then promotes it once it has caught up). A machine that fails is removed from the group once SWIM has
        seen it dead for the grace; one that leaves is removed at once; never below
        3 voters. A restart with the same DIR and HOST:PORT (after Ctrl-C, SIGTERM
        or a crash) picks up where the machine stopped: its ID, its log, its place
        in the group. A machine whose DIR was lost starts again as a new machine,
        with --join and without --bootstrap (given its old list, it is refused).

        Commands, one per line on stdin (each answered with a line; group events,
        leader and members, print as they happen):
        \(NodeSession.commands.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        End of input stops reading commands; the machine serves until a signal.

        options (each also read from CHORUS_NODE_<NAME>; CHORUS_NODE_JOIN takes a
        comma list):
          --bind HOST:PORT              the endpoint to bind (required)
          --data-dir DIR                where the machine keeps its ID and log (required)
          --join HOST:PORT              a running machine to join through (repeatable)
          --bootstrap HOST:PORT,...     start the group with the machines bound at
                                        these endpoints, 1 to 9, this one's among
                                        them (give each the same list; a list of
                                        one only without --join; kept in DIR once
                                        the group started)
          --failed-member-grace-ms N    how long SWIM must see a member dead before
                                        the leader removes it (default 30000)
          --stabilization-ms N          how long a learner must keep up before the
                                        leader promotes it (default 10000)
          --election-timeout-ms N       the Raft election timeout: a follower that
                                        hears no leader for 1 to 2 times this
                                        campaigns (200 ... 60000; default 1000,
                                        etcd's server's); heartbeats every tenth
        """
    static let valuedOptions: Set = [
        "bind", "data-dir", "join", "bootstrap", "failed-member-grace-ms", "stabilization-ms", "election-timeout-ms",
    ]
    static let switches: Set = ["help"]
    static let environmentPrefix = "CHORUS_NODE_"

    let bind: Endpoint
    let dataDirectory: String
    let seeds: [Endpoint]
    let bootstrap: [Endpoint]?
    let policy: RaftMembershipPolicy
    let raft: RaftConfiguration

    init(options: CommandOptions) throws(UsageError) {
        guard let bind = try options.endpoint("bind") else { throw UsageError(description: "--bind HOST:PORT is required") }
        if bind.isWildcard || bind.port == 0 {
            throw UsageError(
                description: "\(options.origin("bind")) \(bind): the group's members reach each other where they are bound, so bind an address and a port they can reach, the same at every restart")
        }
        guard let dataDirectory = options.value("data-dir"), !dataDirectory.isEmpty else {
            throw UsageError(description: "--data-dir DIR is required")
        }
        self.bind = bind
        self.dataDirectory = dataDirectory
        seeds = try options.seeds("join", reachableFrom: bind)
        bootstrap = try Self.bootstrapList(options, bind: bind, seeds: seeds)
        var policy = RaftMembershipPolicy()
        policy.failedMemberGrace = .milliseconds(
            try options.integer("failed-member-grace-ms", in: 1_000...86_400_000, default: 30_000))
        policy.stabilization = .milliseconds(try options.integer("stabilization-ms", in: 0...86_400_000, default: 10_000))
        self.policy = policy
        // etcd's server: 1 s, heartbeats every 100 ms. The library's default
        // (150 ms, etcd raft's) is for a group on one quiet network; a
        // machine's fsyncs on a busy host can stall a turn past it.
        var raft = RaftConfiguration()
        let electionTimeout = try options.integer("election-timeout-ms", in: 200...60_000, default: 1_000)
        raft.electionTimeout = .milliseconds(electionTimeout)
        raft.heartbeatInterval = .milliseconds(electionTimeout / 10)
        self.raft = raft
    }

    /// The endpoints of `--bootstrap` (a comma list, or repeated), checked:
    /// 1 to 9 distinct ones that other machines can reach, `bind` among
    /// them, and, for a group of one, no seeds (a machine that bootstraps
    /// alone starts before it hears from anyone: with seeds, a second
    /// group beside theirs).
    private static func bootstrapList(
        _ options: CommandOptions, bind: Endpoint, seeds: [Endpoint]
    ) throws(UsageError) -> [Endpoint]? {
        let endpoints = try options.endpointLists("bootstrap")
        guard !endpoints.isEmpty else { return nil }
        let origin = options.origin("bootstrap")
        guard (1...9).contains(endpoints.count), Set(endpoints).count == endpoints.count else {
            throw UsageError(description: "\(origin) lists \(endpoints.count) endpoints: 1 to 9 distinct ones, please")
        }
        if let unreachable = endpoints.first(where: { $0.isWildcard || $0.port == 0 || $0.isIPv6 != bind.isIPv6 }) {
            throw UsageError(
                description: "\(origin) \(unreachable): machines cannot reach a wildcard address or port 0, nor this one another address family")
        }
        guard endpoints.contains(bind) else {
            throw UsageError(description: "\(origin) leaves out this machine's --bind \(bind)")
        }
        if endpoints.count == 1 && !seeds.isEmpty {
            throw UsageError(
                description: "\(origin) of one machine with --join: it would start the group before it hears from anyone, a second group beside theirs; join without --bootstrap")
        }
        return endpoints
    }

    /// What ends the run.
    private enum Ending: Sendable {
        case signal(Int32)
        case leave
        /// The group cannot run here (``NodeSession/onFailure``), why.
        case failed(String)
    }

    /// Runs the machine until a signal (it stops: a restart picks up from
    /// DIR) or `leave` (it leaves the cluster); returns false if it could
    /// not start, or if the group cannot run on it (a machine that
    /// replaces a lost one given the old `--bootstrap` line, a storage
    /// failure: the session says why).
    func run() async -> Bool {
        do {
            let loop = try EventLoop()
            try loop.start()
            defer { loop.shutdown() }
            let (bind, seeds, dataDirectory, bootstrap, policy, raft) = (bind, seeds, dataDirectory, bootstrap, policy, raft)
            let (endings, end) = AsyncStream.makeStream(of: Ending.self)
            let session = try await loop.submit { () -> LoopBound<NodeSession> in
                let session = try NodeSession(
                    bind: bind, seeds: seeds, dataDirectory: dataDirectory, bootstrap: bootstrap,
                    policy: policy, raft: raft, on: loop, logger: StandardErrorLogSink(minimumLevel: .notice),
                    output: Self.write)
                session.onFailure = { end.yield(.failed($0)) }
                FileHandle.standardError.write(Data(
                    "chorus node: machine \(session.node.member.id) on \(session.transport.localEndpoint), data in \(dataDirectory)\n"
                        .utf8))
                return LoopBound(session, on: loop)
            }
            // SIGTERM and SIGINT end the wait below instead of the process.
            let signals = TerminationSignals { end.yield(.signal($0)) }
            defer { signals.cancel() }
            let commands = Task {
                var assembler = CommandLineAssembler()
                for await piece in StandardInputLines.lines() {
                    let line: String
                    switch assembler.take(piece) {
                    case .command(let command): line = command
                    case .refused:
                        Self.write("error: a line longer than \(StandardInputLines.maximumLineLength) bytes is refused")
                        continue
                    case .skipped: continue
                    }
                    if line == "leave" {
                        end.yield(.leave)
                        return
                    }
                    // Written on the loop: an answer given as the session
                    // stops (a signal) is printed before the process ends.
                    await withCheckedContinuation { (answered: CheckedContinuation<Void, Never>) in
                        loop.execute {
                            session.value.handle(line) { answer in
                                if !answer.isEmpty { Self.write(answer) }
                                answered.resume()
                            }
                        }
                    }
                }
            }
            var ending = Ending.leave
            for await first in endings {
                ending = first
                break
            }
            commands.cancel()
            switch ending {
            case .leave:
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                    loop.execute { session.value.leave { done.resume() } }
                }
                FileHandle.standardError.write(Data("chorus node: left the cluster\n".utf8))
            case .signal(let number):
                try await loop.submit { session.value.stop() }
                FileHandle.standardError.write(Data(
                    "chorus node: stopped on signal \(number); to pick up, restart with --bind \(bind) --data-dir \(dataDirectory)\n"
                        .utf8))
            case .failed(let reason):
                try await loop.submit { session.value.stop() }
                FileHandle.standardError.write(Data("chorus node: stopped: \(reason)\n".utf8))
                return false
            }
            return true
        } catch {
            FileHandle.standardError.write(Data("chorus node: \(error)\n".utf8))
            return false
        }
    }

    static func write(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
