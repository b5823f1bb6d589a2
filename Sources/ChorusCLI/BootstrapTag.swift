import EventCore
import WireCodec

/// What a `chorus node` machine of a `--bootstrap` list says in its SWIM
/// metadata: `bootstrap`, a checksum of the list, and, once it started the
/// group, a checksum of the group's first membership (its IDs and
/// endpoints). Machines that bootstrap the same list find each other by
/// the first; the second tells a machine that would bootstrap the list
/// again (one that replaces a machine whose data directory was lost) that
/// the group runs on other machines.
struct BootstrapTag: Equatable {
    /// The list's checksum (CRC32C of its sorted endpoints).
    var list: UInt32
    /// The first membership's checksum, once the group started.
    var first: UInt32?

    init(list endpoints: [Endpoint], first membership: NodeDataDirectory.FirstMembership?) {
        list = Self.checksum(endpoints.map(\.description).sorted())
        first = membership.map { Self.checksum($0.members.map { "\($0.id)@\($0.endpoint)" }.sorted()) }
    }

    /// Decodes ``encoded``; nil for other metadata.
    init?(decoding metadata: [UInt8]) {
        let words = String(decoding: metadata, as: UTF8.self).split(separator: " ")
        guard (2...3).contains(words.count), words[0] == "bootstrap", let list = UInt32(words[1], radix: 16) else {
            return nil
        }
        self.list = list
        if words.count == 3 {
            guard let first = UInt32(words[2], radix: 16) else { return nil }
            self.first = first
        }
    }

    /// `bootstrap LIST [FIRST]`, the checksums in hexadecimal.
    var encoded: [UInt8] {
        Array((["bootstrap", String(list, radix: 16)] + (first.map { [String($0, radix: 16)] } ?? [])).joined(separator: " ").utf8)
    }

    private static func checksum(_ words: [String]) -> UInt32 {
        Array(words.joined(separator: ",").utf8).withUnsafeBytes { CRC32C.checksum($0) }
    }
}
