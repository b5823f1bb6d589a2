import Foundation

/// The `chorus` executable: `chorus <command> [options]`.
let usage = """
    usage: chorus <command> [options]

    commands:
      demo      a live check of the transport and codec on loopback
                (round trips, a fragmented message, throughput)
      help      this text

    Run `chorus <command> --help` for a command's options.
    """

let arguments = CommandLine.arguments.dropFirst()
let environment = ProcessInfo.processInfo.environment

func fail(_ error: UsageError, help: String) -> Never {
    FileHandle.standardError.write(Data("chorus: \(error)\n\n\(help)\n".utf8))
    exit(64)
}

switch arguments.first {
case "demo":
    let options: CommandOptions
    do throws(UsageError) {
        options = try CommandOptions(
            arguments.dropFirst(), valued: LoopbackSelfCheck.valuedOptions,
            switches: LoopbackSelfCheck.switches, environment: environment)
        if options.isSet("help") {
            print(LoopbackSelfCheck.usage)
            exit(0)
        }
        let check = try LoopbackSelfCheck(options: options)
        exit(await check.run() ? 0 : 1)
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
