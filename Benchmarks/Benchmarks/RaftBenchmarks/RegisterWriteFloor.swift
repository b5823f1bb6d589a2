import WireCodec

/// The least work an uncontended one-round-trip CASPaxos write can cost in
/// the harness shape of ``DirectCASPaxosGroup``, with none of the protocol
/// around it: a lower bound for issue 7's throughput target, measured
/// beside Raft's pipelined figure. In steady state it allocates nothing.
///
/// Three acceptors and one proposer in one thread, 1,000 keys with one
/// 64-byte write in flight each. In a round the proposer encodes one frame
/// holding an accept for every key whose last write completed (its ID, the
/// key, the ballot, the next ballot it promises, the value); each acceptor
/// decodes the frame, checks each accept against its register's promise,
/// stores the ballot and the value, and answers with one frame listing the
/// IDs it accepted; the proposer decodes the three answers and completes a
/// write at its second acceptance.
///
/// What any CASPaxos write needs is here: the value reaches three
/// acceptors, each finds the key's register and keeps the value, and the
/// proposer counts a majority. Everything else is left out, so a real
/// implementation can only cost more: per-message headers and effects,
/// stores (not even an in-memory copy), deadlines and retries, per-proposal
/// state, the proposer's value cache (only its ballot counter is kept), and
/// the checks on hostile input. The third acceptance is counted and
/// dropped, as a real proposer drops it.
///
/// With `keepsStoreCopy`, each acceptor also keeps a store's copy of its
/// registers, as issue 7's target asks (in-memory stores): a second
/// table keyed by register key, updated in place like the first (its own
/// value buffers), the least a store of ``InMemoryAcceptorStore``'s design
/// (an `AcceptorSnapshot` of its own, a map by key, from which the
/// acceptor restarts) can cost: one lookup more per acceptor. A store
/// designed otherwise could avoid that lookup (registers in an array the
/// acceptor's table indexes, or one table shared with the acceptor).
final class RegisterWriteFloor {
    /// An acceptor's register: its promise, the accepted ballot and value.
    private struct Register {
        var promised: UInt64
        var accepted: UInt64
        var value: [UInt8]
    }

    /// A key hashed in one call over its bytes (an `[UInt8]` hashes byte by
    /// byte), as ``CASPaxos`` keys its registers.
    private struct Key: Hashable {
        var bytes: [UInt8]

        func hash(into hasher: inout Hasher) {
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    private static let limits = WireLimits(maximumFrameLength: 1 << 24)

    @exclusivity(unchecked) private var registers: [[Key: Register]] = [[:], [:], [:]]
    /// Each acceptor's store copy of its registers (with `keepsStoreCopy`).
    @exclusivity(unchecked) private var storeCopies: [[Key: Register]] = [[:], [:], [:]]
    private let keepsStoreCopy: Bool
    /// The proposer's last ballot counter per key (one round trip per
    /// write: the last accept promised the next ballot).
    @exclusivity(unchecked) private var ballots: [UInt64]
    /// Acceptances of each key's write in flight.
    @exclusivity(unchecked) private var acceptances: [Int]
    @exclusivity(unchecked) private var ready: [Int]
    @exclusivity(unchecked) private var accepts = WireWriter(capacity: 1 << 20)
    @exclusivity(unchecked) private var answers = [WireWriter](repeating: WireWriter(capacity: 1 << 16), count: 3)
    @exclusivity(unchecked) private var lookup = Key(bytes: [])
    private let keys: [[UInt8]]
    private let value: [UInt8]

    init(keys keyCount: Int, valueSize: Int = 64, keepsStoreCopy: Bool = false) {
        self.keepsStoreCopy = keepsStoreCopy
        keys = (0..<keyCount).map { Array("key-\($0)".utf8) }
        value = [UInt8](repeating: 0x2A, count: valueSize)
        ballots = Array(repeating: 0, count: keyCount)
        acceptances = Array(repeating: 0, count: keyCount)
        ready = Array(keys.indices)
    }

    /// Writes every key's next value in a closed loop until `operations`
    /// writes have completed; returns the writes per second.
    func runClosedLoop(operations: Int) throws -> Double {
        let clock = ContinuousClock()
        let started = clock.now
        var remaining = operations
        var completed = 0
        while completed < operations {
            try sendAccepts(upTo: &remaining)
            for acceptor in registers.indices { try accept(at: acceptor) }
            for acceptor in registers.indices { completed += try countAnswers(of: acceptor) }
        }
        return Double(operations) / (clock.now - started).seconds
    }

    /// The proposer: one frame with an accept for every ready key.
    private func sendAccepts(upTo remaining: inout Int) throws(WireError) {
        accepts.removeAll()
        try Frame.encode(protocol: .casPaxos, limits: Self.limits, into: &accepts) { writer in
            for key in ready where remaining > 0 {
                remaining -= 1
                ballots[key] += 1
                acceptances[key] = 0
                writer.writeVarint(UInt64(key))
                writer.writeBytes(keys[key])
                writer.writeVarint(ballots[key])
                writer.writeVarint(ballots[key] + 1)
                writer.writeBytes(value)
            }
        }
        ready.removeAll(keepingCapacity: true)
    }

    /// Acceptor `acceptor`: every accept of the proposer's frame, and one
    /// frame of answers.
    private func accept(at acceptor: Int) throws(WireError) {
        answers[acceptor].removeAll()
        try accepts.withUnsafeBytes { (frame) throws(WireError) in
            var reader = WireReader(try Frame.decodeBody(frame, of: .casPaxos, limits: Self.limits))
            try Frame.encode(protocol: .casPaxos, limits: Self.limits, into: &answers[acceptor]) { writer in
                while !reader.isAtEnd {
                    // The frame was encoded just above, in this thread.
                    guard let id = try? reader.readVarint(), let key = try? reader.readBytes(),
                        let ballot = try? reader.readVarint(), let next = try? reader.readVarint(),
                        let value = try? reader.readBytes()
                    else { fatalError("the proposer's frame of accepts did not decode") }
                    if store(key: key, ballot: ballot, next: next, value: value, at: acceptor) {
                        writer.writeVarint(id)
                    }
                }
            }
        }
    }

    /// Acceptor `acceptor` accepts `value` at `ballot` and promises `next`,
    /// unless the key's register promised more; returns whether it did.
    /// Allocates nothing once every key has a register: the key is looked
    /// up through a reused buffer, and a value of the same size is copied
    /// over the register's (and over its store copy's).
    private func store(
        key: UnsafeRawBufferPointer, ballot: UInt64, next: UInt64, value: UnsafeRawBufferPointer, at acceptor: Int
    ) -> Bool {
        lookup.bytes.removeAll(keepingCapacity: true)
        lookup.bytes.append(contentsOf: key)
        guard let index = registers[acceptor].index(forKey: lookup) else {
            registers[acceptor][Key(bytes: Array(key))] = Register(promised: next, accepted: ballot, value: Array(value))
            // A buffer of its own (made from the frame's bytes, not shared
            // with the register's), overwritten in place as that one is.
            if keepsStoreCopy {
                storeCopies[acceptor][Key(bytes: Array(key))] = Register(
                    promised: next, accepted: ballot, value: Array(value))
            }
            return true
        }
        guard registers[acceptor].values[index].promised <= ballot else { return false }
        Self.overwrite(&registers[acceptor].values[index], ballot: ballot, next: next, value: value)
        if keepsStoreCopy, let copy = storeCopies[acceptor].index(forKey: registers[acceptor].keys[index]) {
            Self.overwrite(&storeCopies[acceptor].values[copy], ballot: ballot, next: next, value: value)
        }
        return true
    }

    /// Sets `register` to `value` accepted at `ballot`, `next` promised; a
    /// value of the same size is copied over the register's.
    private static func overwrite(
        _ register: inout Register, ballot: UInt64, next: UInt64, value: UnsafeRawBufferPointer
    ) {
        register.promised = next
        register.accepted = ballot
        if register.value.count == value.count {
            register.value.withUnsafeMutableBytes { $0.copyMemory(from: value) }
        } else {
            register.value = Array(value)
        }
    }

    /// The proposer: `acceptor`'s answers; returns the writes completed.
    private func countAnswers(of acceptor: Int) throws(WireError) -> Int {
        try answers[acceptor].withUnsafeBytes { (frame) throws(WireError) in
            var reader = WireReader(try Frame.decodeBody(frame, of: .casPaxos, limits: Self.limits))
            var completed = 0
            while !reader.isAtEnd {
                let key = Int(try reader.readVarint())
                acceptances[key] += 1
                if acceptances[key] == 2 {
                    completed += 1
                    ready.append(key)
                }
            }
            return completed
        }
    }
}
