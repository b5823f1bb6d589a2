import CASPaxos

/// The value of one counter register in `chorus demo`'s CASPaxos scenario:
/// the total and, per client, the sequence number of its last increment
/// applied, so that a client may retry an increment whose outcome it does
/// not know (an indeterminate ``CASPaxosError``) without counting it twice.
///
/// Layout: `count + 1` little-endian `UInt64`s: the total, then one
/// sequence number per client.
struct DemoCounter: Equatable, Sendable {
    var total: UInt64 = 0
    var applied: [UInt64]

    /// The counter a register holds; an empty or foreign value reads as 0.
    init(_ bytes: [UInt8]?, clients: Int) {
        applied = Array(repeating: 0, count: clients)
        guard let bytes, bytes.count == (clients + 1) * 8 else { return }
        func word(_ index: Int) -> UInt64 {
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[index * 8 + $1]) << (8 * UInt64($1)) }
        }
        total = word(0)
        for client in 0..<clients { applied[client] = word(client + 1) }
    }

    var bytes: [UInt8] {
        ([total] + applied).flatMap { word in (0..<8).map { UInt8(truncatingIfNeeded: word >> (8 * UInt64($0))) } }
    }

    /// The change that adds one for `client`'s increment number `sequence`,
    /// unless that increment was applied already.
    static func increment(client: Int, sequence: UInt64, clients: Int) -> CASPaxosChange {
        { current in
            var counter = DemoCounter(current, clients: clients)
            guard counter.applied[client] < sequence else { return current }
            counter.total += 1
            counter.applied[client] = sequence
            return counter.bytes
        }
    }
}
