import Testing
@testable import UDPTransport

/// The reassembler charges an incomplete message the pages its fragments
/// wrote; that is what the message holds only if its storage is fresh
/// memory, backed page by page as it is written.
@Suite("ReassembledMessage storage")
struct ReassembledMessageTests {
    /// A completed 4 MiB message freed before (its memory written whole)
    /// must not come back as the next message's storage: from `malloc` it
    /// did (glibc keeps such blocks for reuse), and 56 forged first
    /// fragments of 4 MiB claims held 169 MiB while charged 224 KiB.
    @Test("a large message's storage is backed only where its fragments wrote, also after a completed one was freed")
    func freshStorage() throws {
        let length = 4 << 20
        let chunk = [UInt8](repeating: 0xA5, count: 1_375)
        do {
            let completed = ReassembledMessage(count: length)
            chunk.withUnsafeBytes { bytes in
                for offset in stride(from: 0, to: length - chunk.count, by: chunk.count) {
                    completed.write(bytes, at: offset)
                }
            }
            #expect(try #require(completed.residentPages) >= length / 4_096 - 1)
        }
        for _ in 0..<8 {
            let partial = ReassembledMessage(count: length)
            chunk.withUnsafeBytes { partial.write($0, at: 0) }
            #expect(try #require(partial.residentPages) <= 2)
        }
    }

    @Test("a message below the threshold takes its storage from malloc")
    func smallStorage() {
        #expect(ReassembledMessage(count: ReassembledMessage.freshStorageThreshold - 1).residentPages == nil)
        #expect(ReassembledMessage(count: ReassembledMessage.freshStorageThreshold).residentPages != nil)
    }
}
