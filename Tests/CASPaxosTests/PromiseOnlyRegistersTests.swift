@testable import CASPaxos
import Testing

/// The line of an acceptor's promise-only registers: oldest first, a key
/// listed again moves to the back, removed keys never come out, and the
/// line stays bounded however many keys pass through it.
@Suite("Promise-only registers")
struct PromiseOnlyRegistersTests {
    static func key(_ number: Int) -> [UInt8] { Array("key-\(number)".utf8) }

    @Test("keys come out oldest first, a key listed again as the youngest, removed keys not at all")
    func order() {
        var line = PromiseOnlyRegisters([Self.key(2), Self.key(1)])
        line.append(Self.key(3))
        line.append(Self.key(1))
        line.append(Self.key(4))
        line.remove(Self.key(3))
        line.remove(Self.key(9))
        #expect(line.count == 3)
        var order: [[UInt8]] = []
        while let key = line.removeOldest() { order.append(key) }
        #expect(order == [Self.key(2), Self.key(1), Self.key(4)])
        #expect(line.count == 0 && line.removeOldest() == nil)
    }

    /// Every new key's prepare lists it and its accept takes it off, so a
    /// busy acceptor sends millions of keys through the line without ever
    /// taking one out: the stale entries must go.
    @Test("keys listed and removed without end leave the line bounded, and the live ones in order")
    func staysBounded() {
        var line = PromiseOnlyRegisters([])
        line.append(Self.key(-1))
        // How far the line went past twice its live keys, at worst.
        var excess = 0
        for number in 0..<100_000 {
            line.append(Self.key(number))
            excess = max(excess, line.storedEntries - 2 * line.count)
            if number % 1_000 != 0 { line.remove(Self.key(number)) }
            if number % 7 == 0 { line.append(Self.key(-1)) }
            excess = max(excess, line.storedEntries - 2 * line.count)
        }
        #expect(line.count == 101)
        #expect(excess <= 64)
        var order: [[UInt8]] = []
        while let key = line.removeOldest() { order.append(key) }
        // key -1 was last listed again at 99,995, after key 99,000.
        #expect(order == (0..<100).map { Self.key($0 * 1_000) } + [Self.key(-1)])
        #expect(line.storedEntries <= 64)
    }
}
