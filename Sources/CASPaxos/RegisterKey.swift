/// A register's key as a dictionary key: its bytes, hashed in one call
/// (`[UInt8]` feeds the hasher one byte at a time, several times slower
/// for the keys a proposer and an acceptor look up on every proposal).
struct RegisterKey: Hashable {
    /// The key's bytes.
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
