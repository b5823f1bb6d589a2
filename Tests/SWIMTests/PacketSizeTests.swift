import EventCore
import SWIM
import TestSupport
import Testing
import UDPTransport

/// A member reads packets as large as any member may send, whatever its
/// own state size: the frame limit once followed `maximumStateSize` alone,
/// and a packet of gossip past it was dropped as malformed.
@Suite("SWIM packet sizes")
struct PacketSizeTests {
    final class Pair {
        var transports: [UDPSocketTransport] = []
        var members: [SWIMNode] = []
        var delivered = 0
    }

    @Test("broadcasts piggybacked in 65,507-byte packets reach a member whose maximumStateSize is 4,096")
    func packetsAboveStateSize() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        var configuration = SWIMConfiguration()
        configuration.maximumPacketSize = SWIMConfiguration.largestPacketSize
        configuration.maximumStateSize = 4_096
        configuration.maximumBroadcastSize = 1_024
        try configuration.validate()
        let swim = configuration
        var udp = UDPSocketTransport.Configuration()
        udp.maximumDatagramSize = SWIMConfiguration.largestPacketSize
        let transport = udp
        let pair = try await loop.submit { () -> LoopBound<Pair> in
            let pair = Pair()
            for index in 0..<2 {
                let socket = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop, configuration: transport)
                let member = try SWIMNode(transport: socket, scheduler: loop, configuration: swim, seed: UInt64(index + 1))
                if index == 1 { member.setBroadcastHandler { [unowned pair] _ in pair.delivered += 1 } }
                pair.transports.append(socket)
                pair.members.append(member)
            }
            pair.members[0].start()
            pair.members[1].start(seeds: [pair.transports[0].localEndpoint])
            return LoopBound(pair, on: loop)
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            pair.value.members.allSatisfy { $0.memberCount(.alive) == 2 }
        })
        // Twenty 1,000-byte broadcasts: the next gossip packet carries them
        // all, about 20 KB.
        try await loop.submit {
            for number in 0..<20 {
                _ = try pair.value.members[0].broadcast([UInt8](repeating: UInt8(number), count: 1_000))
            }
        }
        let delivered = try await LoopPolling.eventually(on: loop, within: .seconds(10)) { pair.value.delivered == 20 }
        let (count, dropped) = try await loop.submit {
            (pair.value.delivered, pair.value.members[1].counters.malformedFramesDropped)
        }
        #expect(delivered, "\(count) of 20 delivered")
        #expect(dropped == 0)
        try await loop.submit {
            for member in pair.value.members { member.stop() }
            for socket in pair.value.transports { socket.close() }
        }
    }
}
