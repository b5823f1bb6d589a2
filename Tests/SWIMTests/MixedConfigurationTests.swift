import EventCore
import Simulation
import SWIM
import Testing

/// Members whose configurations differ, as during a rolling change of
/// settings: each decodes with the protocol's limits
/// (``SWIMMessage/decodingLimits``) and drops, update by update, what its
/// own settings refuse.
@Suite("SWIM members with different settings")
struct MixedConfigurationTests {
    /// Decoded with the joiner's own limits (128-byte metadata), the
    /// seed's push-pull was refused whole for the seed's 400-byte
    /// metadata: the joiner never learned of any member.
    @Test("a member with the default metadata limit joins a seed whose metadata is longer; the seed's entry is dropped alone")
    func longerMetadata() throws {
        let network = SimulatedNetwork(seed: 7)
        let (a, b, c) = (network.addNode(), network.addNode(), network.addNode())
        var roomy = SWIMConfiguration()
        roomy.maximumMetadataSize = 1_024
        let seed = try SWIMNode(
            id: NodeID(1), transport: a, scheduler: a, metadata: [UInt8](repeating: 7, count: 400),
            configuration: roomy, seed: 1)
        seed.start()
        let other = try SWIMNode(id: NodeID(3), transport: c, scheduler: c, configuration: roomy, seed: 3)
        other.start(seeds: [a.localEndpoint])
        network.run(for: .seconds(5))
        let joiner = try SWIMNode(id: NodeID(2), transport: b, scheduler: b, seed: 2)
        joiner.start(seeds: [a.localEndpoint])
        network.run(for: .seconds(20))
        #expect(joiner.counters.malformedFramesDropped == 0)
        // The joiner knows the member whose metadata fits; the seed's
        // entry it cannot keep.
        #expect(joiner.member(NodeID(3))?.status == .alive)
        #expect(seed.member(NodeID(2))?.status == .alive)
        #expect(other.member(NodeID(2))?.status == .alive)
    }

    /// A relay nacks `relayTimeout` (80% of the probe timeout) after the
    /// requester's ping-req, which leaves one probe timeout into its
    /// period: with less than that left, every nack comes late.
    @Test("a probe timeout whose relays' nacks cannot come within the period is refused")
    func nacksMustFitThePeriod() throws {
        var late = SWIMConfiguration()
        late.protocolPeriod = .milliseconds(750)
        late.probeTimeout = .milliseconds(500)
        #expect(throws: ConfigurationError.self) { try late.validate() }
        late.probeTimeout = .milliseconds(400)
        try late.validate()
    }
}
