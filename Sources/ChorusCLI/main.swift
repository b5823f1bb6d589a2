import Foundation

/// The `chorus` executable: `chorus <command> [options]`.
let usage = """
    usage: chorus <command> [options]

    commands:
      demo       local clusters on loopback: gossip (push vs Plumtree), SWIM (join,
                 failure detection, graceful leave), Raft (election, writes, a
                 leader failover), CASPaxos (contended counters, an acceptor crash),
                 all three on one socket per machine, SWIM driving Raft's members
      gossip     one gossip node: broadcasts stdin lines, prints what it receives
      swim       one SWIM member: prints member events, broadcasts stdin lines
      node       one machine of a replicated key-value map (SWIM and Raft, a data
                 directory): put/get/delete/status commands on stdin
      selfcheck  a live check of the transport and codec on loopback
                 (round trips, a fragmented message, throughput)
      help       this text

    Run `chorus <command> --help` for a command's options.
    """

let arguments = CommandLine.arguments.dropFirst()
let environment = ProcessInfo.processInfo.environment

func fail(_ error: UsageError, help: String) -> Never {
    FileHandle.standardError.write(Data("chorus: \(error)\n\n\(help)\n".utf8))
    exit(64)
}

/// Parses a command's options; prints its usage and exits 0 on `--help`,
/// exits 64 with the usage on a bad command line.
func options(
    valued: Set<String>, switches: Set<String>, usage: String, environmentPrefix: String = "CHORUS_"
) -> CommandOptions {
    do throws(UsageError) {
        let options = try CommandOptions(
            arguments.dropFirst(), valued: valued, switches: switches, environment: environment,
            environmentPrefix: environmentPrefix)
        if options.isSet("help") {
            print(usage)
            exit(0)
        }
        return options
    } catch {
        fail(error, help: usage)
    }
}

switch arguments.first {
case "demo":
    let parsed = options(valued: DemoCommand.valuedOptions, switches: DemoCommand.switches, usage: DemoCommand.usage)
    do throws(UsageError) {
        let command = try DemoCommand(options: parsed)
        exit(await command.run() ? 0 : 1)
    } catch {
        fail(error, help: DemoCommand.usage)
    }
case "gossip":
    let parsed = options(valued: GossipCommand.valuedOptions, switches: GossipCommand.switches, usage: GossipCommand.usage)
    do throws(UsageError) {
        let command = try GossipCommand(options: parsed)
        exit(await command.run() ? 0 : 1)
    } catch {
        fail(error, help: GossipCommand.usage)
    }
case "swim":
    let parsed = options(
        valued: SWIMCommand.valuedOptions, switches: SWIMCommand.switches, usage: SWIMCommand.usage,
        environmentPrefix: SWIMCommand.environmentPrefix)
    do throws(UsageError) {
        let command = try SWIMCommand(options: parsed)
        exit(await command.run() ? 0 : 1)
    } catch {
        fail(error, help: SWIMCommand.usage)
    }
case "node":
    let parsed = options(
        valued: NodeCommand.valuedOptions, switches: NodeCommand.switches, usage: NodeCommand.usage,
        environmentPrefix: NodeCommand.environmentPrefix)
    do throws(UsageError) {
        let command = try NodeCommand(options: parsed)
        exit(await command.run() ? 0 : 1)
    } catch {
        fail(error, help: NodeCommand.usage)
    }
case "selfcheck":
    let parsed = options(
        valued: LoopbackSelfCheck.valuedOptions, switches: LoopbackSelfCheck.switches, usage: LoopbackSelfCheck.usage,
        environmentPrefix: LoopbackSelfCheck.environmentPrefix)
    do throws(UsageError) {
        let command = try LoopbackSelfCheck(options: parsed)
        exit(await command.run() ? 0 : 1)
    } catch {
        fail(error, help: LoopbackSelfCheck.usage)
    }
case "help", "--help", "-h":
    print(usage)
case nil:
    fail(UsageError(description: "missing command"), help: usage)
case let command?:
    fail(UsageError(description: "unknown command '\(command)'"), help: usage)
}
