import Testing
import WireCodec

@Suite("WireWriter buffer reuse")
struct WireWriterTests {
    @Test func reusingKeepsTheCallersStorage() {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(256)
        buffer.append(contentsOf: [1, 2, 3])
        let storage = buffer.withUnsafeBytes { $0.baseAddress }
        var writer = WireWriter(reusing: consume buffer)
        #expect(writer.count == 0)
        writer.writeUInt64(42)
        writer.writeString("hello")
        let taken = writer.takeBytes()
        #expect(taken.withUnsafeBytes { $0.baseAddress } == storage)
        #expect(taken.count == 14)
        #expect(writer.count == 0)
    }

    @Test func removeAllKeepsCapacity() {
        var writer = WireWriter(capacity: 64)
        writer.writeUInt64(1)
        let storage = writer.withUnsafeBytes { $0.baseAddress }
        for round in 0..<100 {
            writer.removeAll()
            writer.writeVarint(UInt64(round))
            writer.writeBytes([UInt8](repeating: 7, count: 40))
        }
        #expect(writer.withUnsafeBytes { $0.baseAddress } == storage)
        #expect(writer.bytes == encode { $0.writeVarint(99); $0.writeBytes([UInt8](repeating: 7, count: 40)) })
    }

    @Test func withUnsafeBytesRethrowsTypedErrors() {
        let writer = WireWriter()
        let result = Result<Void, WireError> { () throws(WireError) in
            try writer.withUnsafeBytes { (_) throws(WireError) in
                throw WireError(.invalidValue, offset: 0, detail: "test")
            }
        }
        #expect(result.errorCode == .invalidValue)
    }
}
