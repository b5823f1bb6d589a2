import EventCore
import Foundation
import SWIM
import UDPTransport

/// `chorus swim`: one SWIM member in this process, as Smudge's demo
/// binary: prints member events as they happen; lines typed on stdin are
/// broadcast to every member.
struct SWIMCommand {
    static let usage = """
        usage: chorus swim --bind HOST:PORT [--join HOST:PORT ...] [--advertise HOST:PORT]
                           [--metadata TEXT] [--node-id HEX] [tuning options]

        Runs one SWIM member bound to HOST:PORT (127.0.0.1:7946, [::1]:7946; port 0
        lets the kernel choose). Without --join it starts a cluster and waits to be
        joined. Member events are printed as they happen (joined, suspect, alive,
        dead, left, metadata, moved); each line read from stdin is broadcast to every
        member (at most 256 bytes; a line that finds the broadcast queue full,
        1,024 waiting, is reported as not sent) and broadcasts received are
        printed. End of input leaves the cluster gracefully.

        options (each also read from CHORUS_SWIM_<NAME>, as Smudge reads SMUDGE_*;
        CHORUS_SWIM_JOIN takes a comma list):
          --bind HOST:PORT          the endpoint to bind (required)
          --join HOST:PORT          a running member to join through (repeatable)
          --advertise HOST:PORT     the endpoint others reach this member at, when it
                                    differs from --bind (NAT, containers; required
                                    with a wildcard --bind such as 0.0.0.0:7946)
          --metadata TEXT           this member's metadata (default empty)
          --node-id HEX             this member's 64-bit ID (default: random)
          --multicast GROUP:PORT    discover members through this multicast group
                                    (e.g. 239.255.77.77:7948; opt-in, as Smudge's);
                                    a member bound to 127.0.0.1 stays on loopback
          --cluster NAME            the cluster name announced by multicast
                                    (default chorus)
          --protocol-period-ms N    probe period (default 750; more than 1.8 times
                                    the probe timeout, so relays' nacks come in time)
          --probe-timeout-ms N      direct probe timeout (default 250)
          --suspicion-multiplier X  Lifeguard's α (default 1)
          --retransmit-multiplier N updates are sent ⌈N·log10(members+1)⌉ times (default 6)
          --max-broadcast-bytes N   longest broadcast (default 256)
          --max-metadata-bytes N    longest metadata (default 128)
          --membership-queue-capacity N
                                    membership updates queued at most, 64 to 1048576;
                                    past it the most-sent is dropped (default 2048)
        """
    static let valuedOptions: Set = [
        "bind", "join", "advertise", "metadata", "node-id", "multicast", "cluster", "protocol-period-ms", "probe-timeout-ms",
        "suspicion-multiplier", "retransmit-multiplier", "max-broadcast-bytes", "max-metadata-bytes",
        "membership-queue-capacity",
    ]
    static let switches: Set = ["help"]
    static let environmentPrefix = "CHORUS_SWIM_"

    let bind: Endpoint
    let seeds: [Endpoint]
    let advertise: Endpoint?
    let metadata: [UInt8]
    let nodeID: NodeID?
    let configuration: SWIMConfiguration

    init(options: CommandOptions) throws(UsageError) {
        guard let bind = try options.endpoint("bind") else { throw UsageError(description: "--bind HOST:PORT is required") }
        self.bind = bind
        seeds = try options.seeds("join", reachableFrom: bind)
        advertise = try options.endpoint("advertise")
        if let advertise, advertise.isWildcard || advertise.port == 0 {
            throw UsageError(
                description: "\(options.origin("advertise")) \(advertise): other members cannot reach a wildcard address or port 0")
        }
        if bind.isWildcard && advertise == nil {
            throw UsageError(
                description: "\(options.origin("bind")) \(bind) needs --advertise HOST:PORT: other members cannot reach a wildcard address")
        }
        metadata = Array((options.value("metadata") ?? "").utf8)
        nodeID = try options.nodeID("node-id")
        var configuration = SWIMConfiguration()
        configuration.protocolPeriod = .milliseconds(
            try options.integer("protocol-period-ms", in: 10...60_000, default: 750))
        configuration.probeTimeout = .milliseconds(try options.integer("probe-timeout-ms", in: 1...60_000, default: 250))
        configuration.suspicionMultiplier = try options.number("suspicion-multiplier", in: 0.1...100, default: 1)
        configuration.retransmitMultiplier = try options.integer("retransmit-multiplier", in: 1...64, default: 6)
        configuration.maximumBroadcastSize = try options.integer("max-broadcast-bytes", in: 0...1_024, default: 256)
        configuration.maximumMetadataSize = try options.integer("max-metadata-bytes", in: 0...1_024, default: 128)
        configuration.membershipQueueCapacity = try options.integer(
            "membership-queue-capacity", in: 64...1_048_576, default: configuration.membershipQueueCapacity)
        configuration.multicastGroup = try options.endpoint("multicast")
        if let cluster = options.value("cluster") { configuration.clusterName = cluster }
        do throws(ConfigurationError) {
            try configuration.validate()
        } catch {
            throw UsageError(description: Self.naming(error))
        }
        // Checked here, not when the member starts: a bad command line
        // exits 64 with the usage, as every other bad option does.
        guard metadata.count <= configuration.maximumMetadataSize else {
            throw UsageError(
                description: "\(options.origin("metadata")) is \(metadata.count) bytes, above --max-metadata-bytes "
                    + "(\(configuration.maximumMetadataSize))")
        }
        self.configuration = configuration
    }

    /// The flags of the configuration fields they set (and, for
    /// `relayTimeout`, which no flag sets, words for it).
    static let flagOfField: KeyValuePairs = [
        "protocolPeriod": "--protocol-period-ms", "probeTimeout": "--probe-timeout-ms",
        "relayTimeout": "the relay timeout",
        "suspicionMultiplier": "--suspicion-multiplier", "retransmitMultiplier": "--retransmit-multiplier",
        "maximumBroadcastSize": "--max-broadcast-bytes", "maximumMetadataSize": "--max-metadata-bytes",
        "membershipQueueCapacity": "--membership-queue-capacity", "multicastGroup": "--multicast",
        "clusterName": "--cluster",
    ]

    /// `error` as the user typed it: the configuration's field names,
    /// wherever they appear, given as the flags that set them (an error
    /// naming `probeTimeout` left the user to guess `--probe-timeout-ms`).
    static func naming(_ error: ConfigurationError) -> String {
        var text = "\(error)"
        for (field, flag) in flagOfField { text = text.replacingOccurrences(of: field, with: flag) }
        return text
    }

    /// Runs the member until stdin ends, then leaves; returns false if it
    /// could not start.
    func run() async -> Bool {
        do {
            let loop = try EventLoop()
            try loop.start()
            defer { loop.shutdown() }
            let (bind, seeds, advertise, metadata, nodeID, configuration) =
                (bind, seeds, advertise, metadata, nodeID, configuration)
            let member = try await loop.submit { () -> LoopBound<SWIMNode> in
                let transport = try UDPSocketTransport.bind(to: bind, on: loop)
                let listener = try configuration.multicastGroup.map { group in
                    try UDPSocketTransport.listen(
                        toGroup: group, interface: bind.isWildcard ? nil : bind.address, on: loop)
                }
                let member = try SWIMNode(
                    id: nodeID, transport: transport, scheduler: loop, advertising: advertise, metadata: metadata,
                    configuration: configuration, discovery: listener,
                    logger: StandardErrorLogSink(minimumLevel: .warning))
                member.setEventHandler { event in
                    let metadata = Self.text(event.member.metadata)
                    Self.write("\(event.kind) \(event.member.id) \(event.member.endpoint) incarnation \(event.member.incarnation)"
                               + (metadata.isEmpty ? "" : " metadata \(metadata)"))
                }
                member.setBroadcastHandler { broadcast in
                    Self.write("[\(broadcast.origin)#\(broadcast.sequence)] \(Self.text(broadcast.payload))")
                }
                member.start(seeds: seeds)
                FileHandle.standardError.write(Data(
                    "chorus swim: member \(member.id) on \(transport.localEndpoint), advertising \(member.localMember.endpoint)\n".utf8))
                return LoopBound(member, on: loop)
            }
            for await line in StandardInputLines.stream() {
                let outcome = try await loop.submit { () -> String? in
                    do throws(SWIMError) {
                        try member.value.broadcast(line)
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
                if let outcome { FileHandle.standardError.write(Data("chorus swim: not sent: \(outcome)\n".utf8)) }
            }
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
                loop.execute { member.value.leave { done.resume() } }
            }
            FileHandle.standardError.write(Data("chorus swim: left the cluster\n".utf8))
            return true
        } catch {
            FileHandle.standardError.write(Data("chorus swim: \(error)\n".utf8))
            return false
        }
    }

    /// UTF-8 text as is, other bytes in hexadecimal.
    static func text(_ bytes: [UInt8]) -> String {
        String(validating: bytes, as: UTF8.self) ?? bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func write(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
