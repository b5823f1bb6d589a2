/// The CRC-32C of any range of one buffer, fed after any prefix, in time
/// that grows with the logarithm of the range's length rather than the
/// length: a log's recovery looks for a whole record at every offset of a
/// damaged tail, and checksumming each candidate byte by byte would read
/// the tail once per offset (hours for a tail of a few megabytes whose
/// bytes read as plausible record lengths).
///
/// One pass over the buffer keeps the CRC register every ``stride`` bytes.
/// The register is affine in its starting value: feeding bytes `B` to a
/// register `r` gives `r · x^(8·|B|) ⊕ f(B)`, with `f(B)` the register fed
/// `B` from zero, all modulo the Castagnoli polynomial. So with `R(i)` the
/// register after the buffer's first `i` bytes, feeding `bytes[a..<b]` to
/// `r` gives `R(b) ⊕ (r ⊕ R(a)) · x^(8·(b − a))`; ranges shorter than
/// ``directLimit`` are simply fed.
///
/// Valid while the buffer it was made from is.
package struct CRC32CRanges {
    /// Bytes between two kept registers.
    static let stride = 64
    /// Ranges up to this long are checksummed byte by byte: below it that
    /// is cheaper than reading two registers and multiplying.
    static let directLimit = 256

    private let bytes: UnsafeRawBufferPointer
    /// The register after the buffer's first `k · stride` bytes, at `k`.
    private let registers: [UInt32]

    /// Reads `bytes` once.
    package init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        var registers: [UInt32] = []
        registers.reserveCapacity(bytes.count / Self.stride + 1)
        var crc = CRC32C()
        var start = 0
        while true {
            registers.append(crc.state)
            guard start + Self.stride <= bytes.count else { break }
            crc.update(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + Self.stride)]))
            start += Self.stride
        }
        self.registers = registers
    }

    /// The ``CRC32C/value`` of `prefix` fed `bytes[range]` next.
    package func checksum(of range: Range<Int>, after prefix: CRC32C) -> UInt32 {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "a range outside the buffer")
        if range.count <= Self.directLimit {
            var crc = prefix
            crc.update(UnsafeRawBufferPointer(rebasing: bytes[range]))
            return crc.value
        }
        let start = register(at: range.lowerBound)
        let end = register(at: range.upperBound)
        return ~(end ^ Self.shifted(prefix.state ^ start, byZeroBytes: range.count))
    }

    /// The first offset of `bytes` after its start, leaving at least
    /// `shortest` bytes, at which `isValid` accepts what follows: a log's
    /// recovery looking for a whole record or batch after a bad one.
    /// `isValid` gets the bytes from that offset on and a function giving
    /// the checksum, salted with `salt`, of a range of them (through one
    /// ``CRC32CRanges`` of `bytes`, so no offset reads them again).
    package static func firstValidOffset(
        in bytes: UnsafeRawBufferPointer, salt: UInt64, leaving shortest: Int,
        where isValid: (UnsafeRawBufferPointer, (Range<Int>) -> UInt32) -> Bool
    ) -> Int? {
        let ranges = CRC32CRanges(bytes)
        let salted = CRC32C(salt: salt)
        var offset = 1
        while offset + shortest <= bytes.count {
            let candidate = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            let found = isValid(candidate) { range in
                ranges.checksum(of: (offset + range.lowerBound)..<(offset + range.upperBound), after: salted)
            }
            if found { return offset }
            offset += 1
        }
        return nil
    }

    /// The register after the buffer's first `offset` bytes.
    private func register(at offset: Int) -> UInt32 {
        let kept = offset / Self.stride
        var crc = CRC32C(state: registers[kept])
        crc.update(UnsafeRawBufferPointer(rebasing: bytes[(kept * Self.stride)..<offset]))
        return crc.state
    }

    // MARK: Arithmetic modulo the polynomial

    /// `register` fed `count` zero bytes: `register · x^(8·count)`, one
    /// multiplication per nonzero byte of `count` (at most four below
    /// 4 GiB).
    static func shifted(_ register: UInt32, byZeroBytes count: Int) -> UInt32 {
        var result = register
        var remaining = UInt64(count)
        var place = 0
        while remaining != 0 {
            let digit = Int(remaining & 0xFF)
            if digit != 0 { result = multiply(zeroBytePowers[place << 8 | digit], result) }
            remaining >>= 8
            place += 1
        }
        return result
    }

    /// `x^(8·d·256^p)` modulo the polynomial, at `p · 256 + d`, for the
    /// eight places `p` of a 64-bit count and its digits `d`; bit-reflected
    /// as the register is (bit 31 is the coefficient of `x^0`).
    private static let zeroBytePowers: [UInt32] = {
        var powers: [UInt32] = []
        powers.reserveCapacity(8 * 256)
        var base: UInt32 = 0x0080_0000  // x^8: one zero byte
        for _ in 0..<8 {
            var power: UInt32 = 0x8000_0000  // x^0
            for _ in 0..<256 {
                powers.append(power)
                power = multiply(power, base)
            }
            base = power  // base^256
        }
        return powers
    }()

    /// `a · b` modulo the polynomial, both bit-reflected.
    static func multiply(_ a: UInt32, _ b: UInt32) -> UInt32 {
        var product: UInt32 = 0
        var a = a
        var b = b
        while a != 0 {
            if a & 0x8000_0000 != 0 { product ^= b }
            a <<= 1
            b = b & 1 != 0 ? (b >> 1) ^ 0x82F6_3B78 : b >> 1
        }
        return product
    }
}
