import EventCore
import Foundation
import Gossip
import UDPTransport

/// `chorus gossip`: one gossip node in this process, as Pittacus's demo
/// nodes: lines typed on stdin are broadcast, received data is printed.
struct GossipCommand {
    static let usage = """
        usage: chorus gossip --bind HOST:PORT [--join HOST:PORT ...] [--mode push|plumtree] [--node-id HEX]

        Runs one gossip node bound to HOST:PORT (127.0.0.1:7946, [::1]:7946; port 0
        lets the kernel choose). Without --join it is a seed and waits to be joined.
        Each line read from stdin is broadcast (at most 486 bytes); each message
        received is printed as `[origin#sequence] text`. End of input stops it.

        options (each also read from CHORUS_<NAME>; CHORUS_JOIN takes a comma list):
          --bind HOST:PORT    the endpoint to bind and advertise (required; an address
                              peers reach, not 0.0.0.0 or ::)
          --join HOST:PORT    a running node to join through (repeatable)
          --mode MODE         push or plumtree (default plumtree)
          --node-id HEX       this node's 64-bit ID (default: random); give each
                              run its own, or peers drop its broadcasts as seen
        """
    static let valuedOptions: Set = ["bind", "join", "mode", "node-id"]
    static let switches: Set = ["help"]

    let bind: Endpoint
    let seeds: [Endpoint]
    let mode: DisseminationMode
    let nodeID: NodeID?

    init(options: CommandOptions) throws(UsageError) {
        guard let bind = try options.endpoint("bind") else { throw UsageError(description: "--bind HOST:PORT is required") }
        guard !bind.isWildcard else {
            throw UsageError(
                description: "\(options.origin("bind")) \(bind): a gossip node advertises the endpoint it binds, and peers cannot reach a wildcard address")
        }
        self.bind = bind
        seeds = try options.seeds("join", reachableFrom: bind)
        switch options.value("mode") ?? "plumtree" {
        case "push": mode = .push
        case "plumtree": mode = .plumtree
        case let other: throw UsageError(description: "\(options.origin("mode")) must be push or plumtree, not '\(other)'")
        }
        nodeID = try options.nodeID("node-id")
    }

    /// Runs the node until stdin ends; returns false if it could not start.
    func run() async -> Bool {
        do {
            let loop = try EventLoop()
            try loop.start()
            defer { loop.shutdown() }
            let (bind, seeds, mode, nodeID) = (bind, seeds, mode, nodeID)
            let node = try await loop.submit { () -> LoopBound<GossipNode> in
                let transport = try UDPSocketTransport.bind(to: bind, on: loop)
                let node = try GossipNode(
                    id: nodeID, transport: transport, scheduler: loop, configuration: GossipConfiguration(mode: mode),
                    logger: StandardErrorLogSink(minimumLevel: .warning))
                node.setDeliveryHandler { delivery in
                    let text = String(validating: delivery.payload, as: UTF8.self)
                        ?? delivery.payload.map { String(format: "%02x", $0) }.joined()
                    FileHandle.standardOutput.write(Data("[\(delivery.id)] \(text)\n".utf8))
                }
                node.start(seeds: seeds)
                FileHandle.standardError.write(Data("chorus gossip: node \(node.id) (\(mode)) on \(transport.localEndpoint)\n".utf8))
                return LoopBound(node, on: loop)
            }
            SeedWarning.schedule(command: "gossip", seeds: seeds) {
                try await loop.submit { node.value.activeView.isEmpty }
            }
            for await line in StandardInputLines.stream() {
                let outcome = try await loop.submit { () -> String? in
                    do throws(GossipError) {
                        try node.value.broadcast(line)
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
                if let outcome { FileHandle.standardError.write(Data("chorus gossip: not sent: \(outcome)\n".utf8)) }
            }
            try await loop.submit { node.value.stop() }
            return true
        } catch {
            FileHandle.standardError.write(Data("chorus gossip: \(error)\n".utf8))
            return false
        }
    }
}
