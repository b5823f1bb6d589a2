import Testing
import WireCodec

/// One crafted input per error code, so every code is known to be reachable
/// from bytes (or, for lengthMismatch, from a frame's length field).
@Suite("Every WireError code")
struct WireErrorTests {
    private static func readerCode(_ bytes: [UInt8], _ body: (inout WireReader) throws(WireError) -> Void) -> WireError.Code? {
        decode(bytes, body).errorCode
    }

    private static func crafted() throws -> [WireError.Code: WireError.Code?] {
        let valid = try frame(body: [1, 2, 3])
        var badVersion = valid
        badVersion[2] = 9
        var badChecksum = valid
        badChecksum[13] ^= 1
        var unknown = valid
        unknown[3] = 99
        return [
            .truncated: readerCode([1, 2, 3]) { r throws(WireError) in _ = try r.readUInt32() },
            .lengthExceedsLimit: decodeFrame(valid, limits: WireLimits(maximumFrameLength: 10)).errorCode,
            .varintTooLong: readerCode([UInt8](repeating: 0x80, count: 11)) { r throws(WireError) in _ = try r.readVarint() },
            .varintOverflow: readerCode([UInt8](repeating: 0x80, count: 9) + [2]) { r throws(WireError) in _ = try r.readVarint() },
            .badMagic: decodeFrame([0] + valid.dropFirst()).errorCode,
            .unsupportedVersion: decodeFrame(badVersion).errorCode,
            .badChecksum: decodeFrame(badChecksum).errorCode,
            .unknownProtocol: decodeFrame(resealed(unknown)).errorCode,
            .otherProtocol: valid.withUnsafeBytes { raw -> WireError.Code? in
                do throws(WireError) {
                    _ = try Frame.decodeBody(raw, of: .raft)  // a SWIM frame
                    return nil
                } catch {
                    return error.code
                }
            },
            .invalidValue: readerCode([2]) { r throws(WireError) in _ = try r.readBool() },
            .trailingBytes: readerCode([1, 0]) { r throws(WireError) in _ = try r.readBool() },
            .lengthMismatch: decodeFrame(valid + [0]).errorCode,
        ]
    }

    @Test func everyCodeHasACraftedInput() throws {
        let crafted = try Self.crafted()
        for code in WireError.Code.allCases {
            #expect(crafted[code] == .some(code), "\(code)")
        }
    }

    @Test func descriptionNamesCodeOffsetAndDetail() {
        let error = WireError(.badChecksum, offset: 9, detail: "mismatch")
        #expect(error.description == "WireError.badChecksum at byte 9: mismatch")
    }
}
