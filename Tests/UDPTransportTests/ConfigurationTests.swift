import EventCore
import Testing
import UDPTransport

@Suite("UDPSocketTransport.Configuration")
struct ConfigurationTests {
    @Test("the defaults are valid")
    func defaults() throws {
        let configuration = UDPSocketTransport.Configuration()
        try configuration.validate()
        #expect(configuration.maximumDatagramSize == 1_400)
        #expect(configuration.batchSize == 64)
        #expect(configuration.maximumMessageSize == (4 << 20) + 13)
    }

    /// A change that puts one field out of range.
    struct Case: Sendable, CustomTestStringConvertible {
        var field: String
        var change: @Sendable (inout UDPSocketTransport.Configuration) -> Void
        var testDescription: String { field }

        init(_ field: String, _ change: @escaping @Sendable (inout UDPSocketTransport.Configuration) -> Void) {
            self.field = field
            self.change = change
        }
    }

    @Test("each field out of range is named with its allowed range", arguments: [
        Case("maximumDatagramSize") { $0.maximumDatagramSize = 65_508 },
        Case("maximumDatagramSize") { $0.maximumDatagramSize = 63 },
        Case("batchSize") { $0.batchSize = 1_025 },
        Case("sendQueueCapacity") { $0.sendQueueCapacity = 63 },
        // Below the 3,051 datagrams of one message of the default largest size.
        Case("sendQueueCapacity") { $0.sendQueueCapacity = 3_050 },
        // 53,742 datagrams of 19,975 bytes: more than any queue may hold
        // (53,687 of 20,000). It trapped building the allowed range.
        Case("maximumMessageSize") {
            $0.maximumDatagramSize = 20_000
            $0.maximumFragmentCount = 60_000
            $0.maximumMessageSize = 1 << 30
        },
        // Within 1 ... 2^20 datagrams, but 2^20 × 65,507 bytes would not fit memory.
        Case("sendQueueCapacity") {
            $0.maximumDatagramSize = 65_507
            $0.sendQueueCapacity = 1 << 20
        },
        Case("receiveBatchesPerWakeup") { $0.receiveBatchesPerWakeup = 0 },
        Case("receiveBufferSize") { $0.receiveBufferSize = 1 },
        Case("sendBufferSize") { $0.sendBufferSize = 1 << 31 },
        Case("maximumFragmentCount") { $0.maximumFragmentCount = 70_000 },
        Case("maximumMessageSize") { $0.maximumMessageSize = 0 },
        Case("maximumMessageSize") { $0.maximumFragmentCount = 100 },
        Case("reassemblyTimeout") { $0.reassemblyTimeout = .zero },
        Case("maximumPartialMessages") { $0.maximumPartialMessages = 0 },
        Case("maximumPartialMessagesPerSender") { $0.maximumPartialMessagesPerSender = 257 },
        Case("maximumPartialBytes") { $0.maximumPartialBytes = 1 << 20 },
        Case("maximumPartialBytesPerSender") { $0.maximumPartialBytesPerSender = 100 << 20 },
    ])
    func outOfRange(_ testCase: Case) {
        var configuration = UDPSocketTransport.Configuration()
        testCase.change(&configuration)
        #expect {
            try configuration.validate()
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.field == testCase.field && !error.allowedRange.isEmpty && !error.value.isEmpty
        }
    }
}
