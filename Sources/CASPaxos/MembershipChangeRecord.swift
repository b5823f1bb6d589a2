import EventCore
import WireCodec

/// The membership change running in the cluster: the value of a reserved
/// register (``key``), which makes membership changes one at a time.
///
/// A change takes the register first, with a compare-and-set that writes
/// its record only into an empty register, and empties it again once every
/// proposer has adopted the final configuration. A change that finds
/// another's record goes on only if its target is one of that record's two
/// acceptor sets (it finishes, or abandons, the change the record names);
/// otherwise it fails with ``CASPaxosError/Code/conflict`` before it has
/// changed anything. The register is re-written into new acceptors by the
/// change's re-scan like every other key, so every configuration a change
/// leads through sees it.
///
/// The record names the run that holds it (``run``): a change that takes
/// over another's record writes its own run into it, and a run empties the
/// register only while it holds its own run's record. Otherwise a run that
/// was taken over (still running: its proposer slow, not gone) emptied
/// the register under the run that took over, and a new change could start
/// beside it, planning a configuration of the same version as the other's
/// from another one: quorums that need not meet.
///
/// Layout of the value: a format byte (2), then the acceptors the change
/// started from and those it leads to, each a varint count and endpoints,
/// then the run (8 bytes). Format 1 is the same without the run (run 0).
struct MembershipChangeRecord: Equatable {
    /// The reserved key: a 0xFF byte, then `chorus.membership-change`.
    /// Proposals of the public API refuse it.
    static let key: [UInt8] = [0xFF] + Array("chorus.membership-change".utf8)

    /// The acceptors the change started from.
    var from: [Endpoint]
    /// The acceptors it leads to.
    var to: [Endpoint]
    /// The run holding the record: a random number each change draws when
    /// it takes the register.
    var run: UInt64

    /// Whether a change to `target` may run while this record is held: it
    /// finishes this change, or abandons it.
    func allows(_ target: [Endpoint]) -> Bool {
        Set(target) == Set(to) || Set(target) == Set(from)
    }

    /// The register value.
    var encoded: [UInt8] {
        var writer = WireWriter(capacity: 64)
        writer.writeUInt8(Self.format)
        writer.writeArray(from) { $0.write($1) }
        writer.writeArray(to) { $0.write($1) }
        writer.writeUInt64(run)
        return writer.bytes
    }

    init(from: [Endpoint], to: [Endpoint], run: UInt64 = 0) {
        self.from = from
        self.to = to
        self.run = run
    }

    /// Decodes a register value; nil if it is not a record (only a writer
    /// that ignores the reserved key could have put one there).
    init?(decoding value: [UInt8]) {
        let decoded = value.withUnsafeBytes { bytes -> MembershipChangeRecord? in
            var reader = WireReader(bytes, limits: WireLimits(maximumCollectionCount: 4_096))
            do throws(WireError) {
                let format = try reader.readUInt8()
                guard format == Self.format || format == 1 else { return nil }
                let from = try reader.readArray { r throws(WireError) in try r.read(Endpoint.self) }
                let to = try reader.readArray { r throws(WireError) in try r.read(Endpoint.self) }
                let run = format == 1 ? 0 : try reader.readUInt64()
                try reader.finish()
                return MembershipChangeRecord(from: from, to: to, run: run)
            } catch {
                return nil
            }
        }
        guard let decoded else { return nil }
        self = decoded
    }

    private static let format: UInt8 = 2
}
