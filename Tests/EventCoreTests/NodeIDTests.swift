import EventCore
import Testing

@Suite("NodeID")
struct NodeIDTests {
    @Test("an ID reads back from its description; anything but 1 to 16 hexadecimal digits is refused")
    func parsing() {
        for value: UInt64 in [0, 1, 0xABC, 0x91F8_9E35_F4CB_38BA, .max] {
            #expect(NodeID(NodeID(value).description) == NodeID(value))
        }
        #expect(NodeID("ff") == NodeID(255))
        #expect(NodeID("00000000000000FF") == NodeID(255))
        for text in ["", "g", "+ff", "-1", " ff", "ff ", "0x10", "10000000000000000", "00000000000000000", "١"] {
            #expect(NodeID(text) == nil, "\(text)")
        }
    }
}
