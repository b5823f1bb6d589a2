extension [CASPaxosMessage] {
    /// Hands each message, in order, to `body`, moved out of the array
    /// rather than copied, and leaves in its slot a message holding no
    /// references (`.accepted(requestID: 0)`); the caller then empties the
    /// array. A driver's loop over decoded messages saves a copy and a
    /// destruction of each: Swift copies a message whose case holds many
    /// fields (an accept) through the runtime's generic tuple witness,
    /// about 300 instructions a copy (callgrind, 2026-12-07: 4% of a
    /// write in `Scripts/bench CASPaxosDirect`'s harness).
    ///
    /// `body` must not touch the array.
    mutating func handOverEach(_ body: (CASPaxosMessage) -> Void) {
        withUnsafeMutableBufferPointer { messages in
            for index in messages.indices {
                let message = messages.moveElement(from: index)
                messages.initializeElement(at: index, to: .accepted(requestID: 0))
                body(message)
            }
        }
    }
}
