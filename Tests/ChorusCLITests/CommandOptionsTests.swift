import Testing
@testable import ChorusCLI

/// The command line as a new user types it (found by trying the CLI).
@Suite("chorus command options")
struct CommandOptionsTests {
    static func parse(_ arguments: [String], environment: [String: String] = [:]) throws(UsageError) -> CommandOptions {
        try CommandOptions(
            arguments[...], valued: SWIMCommand.valuedOptions, switches: SWIMCommand.switches,
            environment: environment, environmentPrefix: SWIMCommand.environmentPrefix)
    }

    @Test("-h asks for help, as --help does, on every command")
    func shortHelp() throws {
        #expect(try Self.parse(["-h"]).isSet("help"))
        let demo = try CommandOptions(
            ["-h"][...], valued: DemoCommand.valuedOptions, switches: DemoCommand.switches, environment: [:])
        #expect(demo.isSet("help"))
    }

    @Test("a switch given a value is refused as such, not as an unknown option")
    func switchWithValue() {
        let error = #expect(throws: UsageError.self) { try Self.parse(["--help=1"]) }
        #expect(error?.description == "option --help takes no value")
    }

    @Test("comma lists from the environment may have spaces after the commas")
    func environmentListTrimmed() throws {
        let options = try Self.parse([], environment: ["CHORUS_SWIM_JOIN": "127.0.0.1:1, 127.0.0.1:2"])
        #expect(try options.endpoints("join").count == 2)
    }

    /// Accepted, a wildcard was advertised: every probe of the member went
    /// back to its prober's own socket, and the member flapped for ever.
    @Test("swim refuses a wildcard --bind without --advertise, and a wildcard or port-0 --advertise")
    func wildcardAdvertiseRefused() throws {
        for arguments in [["--bind", "0.0.0.0:7946"], ["--bind", "127.0.0.1:0", "--advertise", "0.0.0.0:7946"],
                          ["--bind", "127.0.0.1:0", "--advertise", "10.0.0.1:0"]] {
            let options = try Self.parse(arguments)
            #expect(throws: UsageError.self, "\(arguments)") { try SWIMCommand(options: options) }
        }
        let advertised = try Self.parse(["--bind", "0.0.0.0:7946", "--advertise", "10.0.0.1:7946"])
        #expect(throws: Never.self) { try SWIMCommand(options: advertised) }
    }

    @Test("gossip refuses a wildcard --bind: it advertises what it binds")
    func gossipWildcardRefused() throws {
        let options = try CommandOptions(
            ["--bind", "0.0.0.0:7946"][...], valued: GossipCommand.valuedOptions, switches: GossipCommand.switches,
            environment: [:])
        #expect(throws: UsageError.self) { try GossipCommand(options: options) }
    }

    /// A variable left exported read as a flag never typed.
    @Test("an error about a value from the environment names the variable, not the flag")
    func environmentNamedInErrors() throws {
        let demo = try CommandOptions(
            [][...], valued: DemoCommand.valuedOptions, switches: DemoCommand.switches,
            environment: ["CHORUS_NODES": "1"])
        let error = #expect(throws: UsageError.self) { try DemoCommand(options: demo) }
        #expect(error?.description.hasPrefix("CHORUS_NODES (from the environment) must be") == true, "\(String(describing: error))")
        let typed = try CommandOptions(
            ["--nodes", "1"][...], valued: DemoCommand.valuedOptions, switches: DemoCommand.switches,
            environment: ["CHORUS_NODES": "5"])
        let flagError = #expect(throws: UsageError.self) { try DemoCommand(options: typed) }
        #expect(flagError?.description.hasPrefix("--nodes must be") == true, "\(String(describing: flagError))")
        let scenario = try CommandOptions(
            [][...], valued: DemoCommand.valuedOptions, switches: DemoCommand.switches,
            environment: ["CHORUS_SCENARIO": "nope"])
        let scenarioError = #expect(throws: UsageError.self) { try DemoCommand(options: scenario) }
        #expect(scenarioError?.description.hasPrefix("CHORUS_SCENARIO (from the environment) must be") == true)
        let mode = try CommandOptions(
            ["--bind", "127.0.0.1:0"][...], valued: GossipCommand.valuedOptions, switches: GossipCommand.switches,
            environment: ["CHORUS_MODE": "nope"])
        let modeError = #expect(throws: UsageError.self) { try GossipCommand(options: mode) }
        #expect(modeError?.description.hasPrefix("CHORUS_MODE (from the environment) must be") == true)
    }

    @Test("swim's configuration errors name the flags, not the fields they set")
    func configurationErrorsNameFlags() throws {
        let options = try Self.parse(["--bind", "127.0.0.1:0", "--protocol-period-ms", "200"])
        let error = #expect(throws: UsageError.self) { try SWIMCommand(options: options) }
        let text = error?.description ?? ""
        #expect(text.contains("--probe-timeout-ms") && text.contains("--protocol-period-ms"), "\(text)")
        #expect(!text.contains("probeTimeout") && !text.contains("protocolPeriod") && !text.contains("relayTimeout"), "\(text)")
    }

    @Test("a seed of the other address family than --bind is a usage error")
    func seedFamilyMismatch() throws {
        let swim = try Self.parse(["--bind", "127.0.0.1:0", "--join", "[::1]:7946"])
        let error = #expect(throws: UsageError.self) { try SWIMCommand(options: swim) }
        #expect(error?.description.contains("address family") == true)
        let gossip = try CommandOptions(
            ["--bind", "[::1]:0", "--join", "127.0.0.1:7946"][...], valued: GossipCommand.valuedOptions,
            switches: GossipCommand.switches, environment: [:])
        #expect(throws: UsageError.self) { try GossipCommand(options: gossip) }
    }

    @Test("metadata above --max-metadata-bytes is a usage error (exit 64), not a failure to start")
    func oversizedMetadata() throws {
        let options = try Self.parse(
            ["--bind", "127.0.0.1:0", "--metadata", String(repeating: "m", count: 200), "--max-metadata-bytes", "128"])
        let error = #expect(throws: UsageError.self) { try SWIMCommand(options: options) }
        #expect(error?.description.contains("--metadata is 200 bytes") == true)
        let fits = try Self.parse(["--bind", "127.0.0.1:0", "--metadata", String(repeating: "m", count: 128)])
        #expect(throws: Never.self) { try SWIMCommand(options: fits) }
    }

    @Test("chorus node's Raft group: an election timeout of 1 s by default (etcd's server), --election-timeout-ms or its variable sets it and heartbeats at a tenth; out of range is a usage error")
    func nodeElectionTimeout() throws {
        func node(_ arguments: [String], environment: [String: String] = [:]) throws -> NodeCommand {
            try NodeCommand(options: try CommandOptions(
                (["--bind", "127.0.0.1:7961", "--data-dir", "/tmp/unused"] + arguments)[...],
                valued: NodeCommand.valuedOptions, switches: NodeCommand.switches, environment: environment,
                environmentPrefix: NodeCommand.environmentPrefix))
        }
        let standard = try node([])
        #expect(standard.raft.electionTimeout == .seconds(1) && standard.raft.heartbeatInterval == .milliseconds(100))
        let slow = try node([], environment: ["CHORUS_NODE_ELECTION_TIMEOUT_MS": "3000"])
        #expect(slow.raft.electionTimeout == .seconds(3) && slow.raft.heartbeatInterval == .milliseconds(300))
        let fast = try node(["--election-timeout-ms", "200"])
        #expect(fast.raft.electionTimeout == .milliseconds(200) && fast.raft.heartbeatInterval == .milliseconds(20))
        #expect(throws: Never.self) { try fast.raft.validate() }
        let error = #expect(throws: UsageError.self) { try node(["--election-timeout-ms", "150"]) }
        #expect(error?.description.hasPrefix("--election-timeout-ms must be") == true, "\(String(describing: error))")
    }
}
