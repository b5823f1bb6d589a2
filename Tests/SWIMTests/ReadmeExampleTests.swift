import EventCore
import SWIM
import Testing
import UDPTransport

/// The README's SWIM example, kept compiling and working: it must not rot.
@Suite("SWIM README example")
struct ReadmeExampleTests {
    @Test("the README example runs: a member starts, lists itself, broadcasts")
    func readmeExample() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let member = try await loop.submit {
            let transport = try UDPSocketTransport.bind(to: try Endpoint(parsing: "127.0.0.1:0"), on: loop)
            let member = try SWIMNode(transport: transport, scheduler: loop, metadata: Array("role=db".utf8))
            member.setEventHandler { event in print(event.kind, event.member.id, event.member.endpoint) }
            member.setBroadcastHandler { broadcast in print("from \(broadcast.origin): \(broadcast.payload.count) bytes") }
            member.start(seeds: [])
            return LoopBound(member, on: loop)
        }
        let healthy = try await loop.submit { member.value.healthyMembers }
        #expect(healthy.map(\.metadata) == [Array("role=db".utf8)])
        let sequence = try await loop.submit { try member.value.broadcast(Array("deploy 42".utf8)) }
        #expect(try await loop.submit { try member.value.broadcast(Array("deploy 43".utf8)) } == sequence &+ 1)
        try await loop.submit { member.value.stop() }
    }
}
