import EventCore
import WireCodec

/// A configuration's version (``AcceptorQuorums/version``) with a digest of
/// its acceptors and quorum sizes (``AcceptorQuorums/digest``): what every
/// prepare and accept carries, and what a membership change's fence holds
/// (``AcceptorSnapshot/minimumVersion``).
///
/// Versions order configurations; the digest tells two configurations of
/// one version apart. A membership change fences a version only once every
/// proposer it lists acknowledged that version's configuration, and a
/// proposer acknowledges only a newer version or the same configuration,
/// so one that holds another configuration of a fenced version was given
/// its quorums by hand: by an operator who rebuilt a majority at the
/// version the cluster is at, say, after a change removed an acceptor that
/// still runs. Such quorums need not meet the cluster's. An acceptor
/// fenced at that version refuses them (``passes(_:)``), as it refuses
/// older versions, and the proposer fails with a typed
/// ``CASPaxosError/Code/staleConfiguration`` instead of reading or writing
/// where the cluster's proposers do not.
///
/// A digest of 0 is unknown: a fence recovered from a store written before
/// digests (format 4 of ``FileAcceptorStore``) holds one, and admits every
/// configuration of its version until a fence of its version with a
/// digest arrives (``raised(to:)``): the next membership change, or one to
/// the same acceptors, which sends the fence again.
public struct ConfigurationVersion: Hashable, Sendable, CustomStringConvertible {
    /// The version: orders configurations. At most
    /// ``AcceptorQuorums/maximumVersion``.
    public var number: UInt64
    /// ``AcceptorQuorums/digest`` of the configuration; 0 if unknown.
    public var digest: UInt64

    /// No configuration: the fence of an acceptor no membership change
    /// reached.
    public static let zero = ConfigurationVersion(0, digest: 0)

    /// Creates a version.
    public init(_ number: UInt64, digest: UInt64) {
        self.number = number
        self.digest = digest
    }

    /// Whether a prepare or accept of this configuration passes the fence
    /// `fence`: a newer version does, an older one does not, and the
    /// fence's own version does if the digests agree (or the fence's is
    /// unknown).
    public func passes(_ fence: ConfigurationVersion) -> Bool {
        number > fence.number || (number == fence.number && (fence.digest == 0 || digest == fence.digest))
    }

    /// The fence after raising this one to `other`, or nil if it stays:
    /// a newer version replaces it; the same version with a digest where
    /// this one's is unknown completes it; nothing else changes it (a
    /// fence is never lowered, nor its digest replaced).
    func raised(to other: ConfigurationVersion) -> ConfigurationVersion? {
        if other.number > number { return other }
        if other.number == number, digest == 0, other.digest != 0 { return other }
        return nil
    }

    /// `v5 (digest 1f2e…)`, or `v5` with an unknown digest.
    public var description: String {
        digest == 0 ? "v\(number)" : "v\(number) (digest \(String(digest, radix: 16)))"
    }
}

extension ConfigurationVersion: WireCodable {
    /// Writes the version (a varint) and the digest (8 bytes).
    public func encode(to writer: inout WireWriter) {
        writer.writeVarint(number)
        writer.writeUInt64(digest)
    }

    /// Reads what ``encode(to:)`` writes.
    ///
    /// - Throws: `WireError` `.truncated` if the bytes end early,
    ///   `.invalidValue` for a version above
    ///   ``AcceptorQuorums/maximumVersion``.
    public init(from reader: inout WireReader) throws(WireError) {
        number = try reader.readVarint(atMost: AcceptorQuorums.maximumVersion, what: "configuration version")
        digest = try reader.readUInt64()
    }
}

extension AcceptorQuorums {
    /// A 64-bit digest (FNV-1a) of the quorum sizes and the acceptor sets,
    /// each set in a fixed order whatever order it is listed in (as
    /// ``isSameConfiguration(as:)`` compares them); never 0. The version is
    /// not in it: ``ConfigurationVersion`` carries both.
    public var digest: UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ bytes: [UInt8]) {
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        }
        for (quorum, set) in [(prepareQuorum, prepareAcceptors), (acceptQuorum, acceptAcceptors)] {
            var writer = WireWriter(capacity: 32)
            writer.writeVarint(UInt64(quorum))
            writer.writeVarint(UInt64(set.count))
            mix(writer.takeBytes())
            let encoded = set.map { endpoint in
                var writer = WireWriter(capacity: 24)
                writer.write(endpoint)
                return writer.takeBytes()
            }
            for endpoint in encoded.sorted(by: { $0.lexicographicallyPrecedes($1) }) { mix(endpoint) }
        }
        return hash == 0 ? 1 : hash
    }

    /// The version and the digest, as prepares and accepts carry them.
    public var configurationVersion: ConfigurationVersion { ConfigurationVersion(version, digest: digest) }
}
