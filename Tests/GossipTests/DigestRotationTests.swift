import EventCore
import Testing
@testable import Gossip

/// Digests that cannot list every run of retained messages take turns:
/// each starts after the last message the one before listed.
@Suite("Digest rotation")
struct DigestRotationTests {
    static let now = Instant(nanoseconds: 1_000_000_000)

    /// A buffer holding one message from each of `origins`.
    static func buffer(origins: [UInt64]) -> RetentionBuffer {
        var buffer = RetentionBuffer(capacity: 64, period: .seconds(10))
        for origin in origins { retain(origin, in: &buffer) }
        return buffer
    }

    static func retain(_ origin: UInt64, sequence: UInt32 = 1, in buffer: inout RetentionBuffer) {
        buffer.insert(GossipData(id: MessageID(origin: NodeID(origin), sequence: sequence), hops: 0, payload: []), now: now)
    }

    static func origins(_ runs: [DigestRun]) -> [UInt64] { runs.map(\.origin.rawValue) }

    @Test("successive digests cover every run in turn, wrapping around")
    func rotation() {
        var buffer = Self.buffer(origins: [10, 20, 30, 40, 50])
        let listed = (0..<3).map { _ in Self.origins(buffer.digest(limit: 2, settling: .zero, now: Self.now)) }
        #expect(listed == [[10, 20], [30, 40], [50, 10]])
    }

    /// A position in the runs (the rotation before) started the second
    /// digest at the third run, which a new run before it made the second
    /// one again: 20 listed twice, 30 not before the third digest.
    @Test("a run that comes before the ones listed neither repeats nor skips one")
    func newRunBefore() {
        var buffer = Self.buffer(origins: [10, 20, 30, 40, 50])
        #expect(Self.origins(buffer.digest(limit: 2, settling: .zero, now: Self.now)) == [10, 20])
        Self.retain(5, in: &buffer)
        #expect(Self.origins(buffer.digest(limit: 2, settling: .zero, now: Self.now)) == [30, 40])
        #expect(Self.origins(buffer.digest(limit: 2, settling: .zero, now: Self.now)) == [50, 5])
    }

    /// A run extended past what a digest listed goes on from there at its
    /// next turn; the rest of the runs come first.
    @Test("a run that grows after it was listed does not hold the rotation")
    func grownRun() {
        var buffer = Self.buffer(origins: [10, 20, 30])
        #expect(Self.origins(buffer.digest(limit: 2, settling: .zero, now: Self.now)) == [10, 20])
        Self.retain(20, sequence: 2, in: &buffer)
        #expect(Self.origins(buffer.digest(limit: 2, settling: .zero, now: Self.now)) == [30, 10])
        let third = buffer.digest(limit: 2, settling: .zero, now: Self.now)
        #expect(third == [
            DigestRun(origin: NodeID(20), first: 1, count: 2), DigestRun(origin: NodeID(30), first: 1, count: 1),
        ])
    }
}
