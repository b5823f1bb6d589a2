import Testing
import EventCore

/// A loop-only call on another thread traps with a message naming it, in
/// the release build too (`precondition` would trap there without its
/// message): checked in a child process.
@Suite("Off-loop traps")
struct OffLoopTrapTests {
    @Test("a LoopBound created off its loop traps, naming LoopBound.init and the fix")
    func loopBoundOffLoop() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let loop = try EventLoop()
            try loop.start()
            _ = LoopBound(1, on: loop)
        }
        let text = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(text.contains("LoopBound.init(_:on:) must be called on the event loop's thread"), "\(text)")
        #expect(text.contains("inside loop.submit"), "\(text)")
    }

    @Test("a timer scheduled off the loop traps, naming EventLoop.schedule(at:_:)")
    func scheduleOffLoop() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let loop = try EventLoop()
            try loop.start()
            loop.schedule(at: loop.now) {}
        }
        let text = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(text.contains("EventLoop.schedule(at:_:) must be called on the event loop's thread"), "\(text)")
    }
}
