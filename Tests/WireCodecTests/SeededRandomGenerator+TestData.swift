import EventCore

// Test-data helpers on EventCore's seeded generator, so every randomized
// test reproduces from the seed it prints.
extension SeededRandomGenerator {
    /// A value whose bit length is uniform in 0...64, so small and large
    /// magnitudes are equally likely (varint sizes 1 to 10 all occur).
    mutating func nextSpread() -> UInt64 {
        let shift = UInt64.random(in: 0...64, using: &self)
        return shift == 64 ? 0 : next() >> shift
    }

    /// `count` random bytes.
    mutating func bytes(count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 7)
        while bytes.count < count {
            withUnsafeBytes(of: next()) { bytes.append(contentsOf: $0) }
        }
        bytes.removeLast(bytes.count - count)
        return bytes
    }

    /// A string of up to `maxScalars` scalars mixing 1- to 4-byte UTF-8.
    mutating func string(maxScalars: Int) -> String {
        let ranges: [ClosedRange<UInt32>] = [0x00...0x7F, 0x80...0x7FF, 0x800...0xD7FF, 0xE000...0xFFFF, 0x10000...0x10FFFF]
        var scalars = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...maxScalars, using: &self) {
            let range = ranges.randomElement(using: &self)!
            scalars.append(Unicode.Scalar(UInt32.random(in: range, using: &self))!)
        }
        return String(scalars)
    }
}
