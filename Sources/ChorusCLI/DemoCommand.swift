import Foundation

/// `chorus demo`: what the toolkit does, on loopback UDP in this one
/// process: the gossip scenario (push gossip against Plumtree), the SWIM
/// scenario (join, failure detection, graceful leave), the Raft scenario
/// (election, replication, failover), the CASPaxos scenario (contended
/// counters, an acceptor crash), the one-socket scenario (SWIM, CASPaxos
/// and Raft together on one socket per machine), then the reconfigure
/// scenario (SWIM's view driving a Raft group's membership).
struct DemoCommand {
    static let usage = """
        usage: chorus demo [--scenario all|gossip|swim|raft|caspaxos|onesocket|reconfigure] [--nodes N] [--duration SECONDS]
                           [--rate N] [--members N] [Raft options] [CASPaxos options]

        Runs local clusters on 127.0.0.1 (kernel-chosen ports, one event loop each)
        and prints what happens as it happens, then a summary per scenario:

          gossip  N gossip nodes, node 0 the seed; for each mode (push gossip, then
                  Plumtree) broadcasts --rate messages per second from random nodes.
                  Summary: delivery ratio, latency percentiles, payload copies sent
                  per delivered message.
          swim    --members SWIM members join; one is stopped abruptly, one leaves
                  gracefully. Timeline of the membership, then join convergence,
                  failure detection time (first member, all members), false
                  positives, packets and bytes per member per second.
          raft    see below.
          caspaxos
                  see below.
          onesocket
                  see below.
          reconfigure
                  see below.

        Exits 0 if every scenario run passed (gossip: every node delivered every
        message exactly once in both modes; swim: converged, failure detected
        everywhere, leave seen everywhere, no false positive; raft: a new leader
        took over, and the running nodes hold the same map, with every
        acknowledged put; caspaxos: every counter equals the increments that
        succeeded; onesocket: SWIM saw the stop everywhere, every key holds its
        last acknowledged write, no datagram dropped; reconfigure: the group's
        voters are the running machines, and every running replica holds every
        acknowledged write), 1 otherwise.

        options (each also read from CHORUS_<NAME>, e.g. CHORUS_NODES):
          --scenario NAME     all (default), gossip, swim, raft, caspaxos, onesocket or
                              reconfigure
          --nodes N           gossip nodes (default 16, 2 ... 256)
          --duration SECONDS  gossip: the running time, split between the two
                              modes: each takes 1 s to settle, broadcasts, then
                              waits up to 3 s (n/32 + 2 s from 64 nodes) for the
                              last messages, and ends early once everything
                              arrived; it broadcasts for at least 1 s, so a short
                              duration with many nodes runs longer than asked
                              (default 24, 6 ... 600)
          --rate N            gossip: broadcasts per second (default 50, 1 ... 10000)
          --members N         SWIM members (default 16, 3 ... 128)

        \(RaftDemo.usage)

        \(CASPaxosDemo.usage)

        \(SharedSocketDemo.usage)

        \(ReconfigureDemo.usage)
        """
    static let valuedOptions = Set(["scenario", "nodes", "duration", "rate", "members"])
        .union(RaftDemo.valuedOptions).union(CASPaxosDemo.valuedOptions)
    static let switches: Set = ["help"]

    /// Every scenario, in the order `all` runs them: from spreading data,
    /// to membership, to consensus with a leader, then without one (the
    /// CASPaxos figures read against Raft's), then membership and both
    /// consensus protocols together.
    static let scenarioNames = ["gossip", "swim", "raft", "caspaxos", "onesocket", "reconfigure"]

    let scenarios: [String]
    let gossip: GossipDemo
    let swim: SWIMDemo
    let raft: RaftDemo
    let casPaxos: CASPaxosDemo

    init(options: CommandOptions) throws(UsageError) {
        switch options.value("scenario") ?? "all" {
        case "all": scenarios = Self.scenarioNames
        case let name where Self.scenarioNames.contains(name): scenarios = [name]
        case let other:
            throw UsageError(
                description: "\(options.origin("scenario")) must be all, gossip, swim, raft, caspaxos, onesocket or reconfigure, not '\(other)'")
        }
        gossip = try GossipDemo(options: options)
        swim = SWIMDemo(memberCount: try options.integer("members", in: 3...128, default: 16))
        raft = try RaftDemo(options: options)
        casPaxos = try CASPaxosDemo(options: options)
    }

    /// Runs the chosen scenarios; returns whether all passed.
    func run() async -> Bool {
        // Ctrl-C or SIGTERM mid-run: the scenarios' files go too, then the
        // process dies of the signal, as a shell expects (a loop of runs
        // stops at Ctrl-C).
        let signals = TerminationSignals { number in
            DemoScratchDirectory.removeAll()
            fflush(nil)
            FileHandle.standardError.write(Data("chorus demo: interrupted by signal \(number)\n".utf8))
            TerminationSignals.die(of: number)
        }
        defer { signals.cancel() }
        var failed: [String] = []
        for (number, scenario) in scenarios.enumerated() {
            if number > 0 { print("\n" + String(repeating: "─", count: 72) + "\n") }
            let passed: Bool
            switch scenario {
            case "gossip":
                passed = await gossip.run()
            case "raft":
                passed = await raft.run()
            case "caspaxos":
                passed = await casPaxos.run()
            case "onesocket":
                passed = await SharedSocketDemo().run()
            case "reconfigure":
                passed = await ReconfigureDemo().run()
            default:
                do {
                    passed = try await swim.run()
                } catch {
                    print("FAILED: swim: \(error)")
                    passed = false
                }
                print(passed ? "\nPASS: SWIM converged, detected the failure everywhere, saw the leave, no false positive"
                             : "\nFAIL: see the timeline above")
            }
            if !passed { failed.append(scenario) }
        }
        if scenarios.count > 1 {
            print(failed.isEmpty ? "\nAll scenarios passed." : "\nFailed: \(failed.joined(separator: ", "))")
        }
        return failed.isEmpty
    }
}
