import EventCore
import Foundation
import UDPTransport
import WireCodec

/// `chorus selfcheck`: a live check of EventCore, WireCodec and
/// UDPTransport on loopback, on two event loops (two threads), that
/// measures what it checks.
struct LoopbackSelfCheck {
    static let usage = """
        usage: chorus selfcheck [--round-trips N] [--large-bytes N] [--seconds N] [--rate N] [--ipv6]

        Binds two UDP endpoints on 127.0.0.1 (or ::1), each on its own event loop, then:
          1. ping-pong: N framed round trips, one at a time (latency percentiles);
          2. fragmentation: one message of --large-bytes random bytes, split into
             datagrams, reassembled and verified by CRC32C;
          3. throughput: 64-byte frames offered at up to --rate per second for
             --seconds (the rate the sender reached is printed).
        Exits 0 when every check passed (every round trip and the large message
        came back in time, the throughput phase delivered frames, and no frame
        was damaged), 1 otherwise. Round trips have 30 s plus 1 ms each.

        options (each also read from CHORUS_SELFCHECK_<NAME>, e.g. CHORUS_SELFCHECK_RATE):
          --round-trips N   ping-pong round trips (default 2000)
          --large-bytes N   size of the fragmented message (default 1048576)
          --seconds N       length of the throughput phase (default 2)
          --rate N          datagrams offered per second (default 150000)
          --ipv6            use ::1 instead of 127.0.0.1
        """
    static let valuedOptions: Set = ["round-trips", "large-bytes", "seconds", "rate"]
    /// Its own prefix: `chorus demo` reads `CHORUS_RATE` too, in another
    /// range, and an exported `CHORUS_RATE=150000` made it exit 64.
    static let environmentPrefix = "CHORUS_SELFCHECK_"
    static let switches: Set = ["ipv6", "help"]

    let roundTrips: Int
    let largeBytes: Int
    let seconds: Int
    let rate: Int
    let host: Endpoint

    init(options: CommandOptions) throws(UsageError) {
        roundTrips = try options.integer("round-trips", in: 1...1_000_000, default: 2_000)
        largeBytes = try options.integer("large-bytes", in: 1...(4 << 20) - 64, default: 1 << 20)
        seconds = try options.integer("seconds", in: 1...600, default: 2)
        rate = try options.integer("rate", in: 1_000...10_000_000, default: 150_000)
        host = options.isSet("ipv6") ? .loopbackV6() : .loopbackV4()
    }

    /// Runs the three checks, printing a report; returns whether all passed.
    func run() async -> Bool {
        do {
            return try await runChecks()
        } catch {
            print("FAILED: \(error)")
            return false
        }
    }

    private func runChecks() async throws -> Bool {
        let near = try EventLoop()
        let far = try EventLoop()
        try near.start()
        defer { near.shutdown() }
        try far.start()
        defer { far.shutdown() }
        let host = self.host
        let echo = try await far.submit {
            LoopBound(EchoPeer(transport: try UDPSocketTransport.bind(to: host, on: far)), on: far)
        }
        let peer = try await far.submit { echo.value.transport.localEndpoint }
        let prober = try await near.submit {
            LoopBound(
                SelfCheckProber(transport: try UDPSocketTransport.bind(to: host, on: near), loop: near, peer: peer),
                on: near)
        }
        let local = try await near.submit { prober.value.transport.localEndpoint }
        print("Chorus loopback self-check: \(local) ⇄ \(peer), one event loop each\n")

        let count = roundTrips
        let rtt = try await withCheckedThrowingContinuation { done in
            // 30 s, and 1 ms a round trip (about 100 times one on loopback):
            // a long run is not cut short by a fixed limit.
            near.execute { prober.value.measureRoundTrips(count, timeout: .seconds(30) + .milliseconds(count), done: done) }
        }
        print("ping-pong      \(count) round trips    p50 \(micros(rtt.percentile(0.5)))  p90 \(micros(rtt.percentile(0.9)))  p99 \(micros(rtt.percentile(0.99)))  max \(micros(rtt.percentile(1)))")

        let length = largeBytes
        let before = try await near.submit { prober.value.transport.counters.datagramsSent }
        let bulkTime = try await withCheckedThrowingContinuation { done in
            near.execute { prober.value.sendBulk(length: length, seed: 0xC4055, timeout: .seconds(10), done: done) }
        }
        let fragments = try await near.submit { prober.value.transport.counters.datagramsSent } - before
        print("fragmentation  \(length) bytes in \(fragments) datagrams, reassembled intact (CRC32C), acknowledged in \(millis(bulkTime))")

        let rate = self.rate
        let seconds = self.seconds
        let blastStart = try await far.submit { echo.value.blastsReceived }
        let sent = try await withCheckedThrowingContinuation { done in
            near.execute {
                let start = near.now
                prober.value.blast(rate: rate, bodySize: 64, from: start, until: start + .seconds(seconds), done: done)
            }
        }
        // Let the last batch land before reading the far side's count.
        try await Task.sleep(for: .milliseconds(200))
        let received = try await far.submit { echo.value.blastsReceived } - blastStart
        let ratio = sent == 0 ? 0 : Double(received) / Double(sent)
        print("throughput     \(sent) frames offered at \(Int(sent) / seconds)/s (asked \(rate)/s) for \(seconds) s: \(received) received (\(percent(ratio))), \(received / seconds) datagrams/s")

        let nearCounters = try await near.submit { prober.value.transport.counters }
        let (farCounters, badFrames) = try await far.submit { (echo.value.transport.counters, echo.value.badFrames) }
        print("counters       near: \(nearCounters.datagramsSent) datagrams sent, \(nearCounters.sendErrors.total) send errors, \(nearCounters.sendQueueOverflows) queue overflows")
        print("               far: \(farCounters.datagramsReceived) datagrams received, \(farCounters.messagesDelivered) messages, \(badFrames) bad frames")

        let passed = received > 0 && badFrames == 0
        print(passed ? "\nPASS" : "\nFAIL: nothing received in the throughput phase, or bad frames seen")
        return passed
    }

    private func micros(_ duration: Duration) -> String {
        String(format: "%.1f µs", Double(duration.nanoseconds) / 1_000)
    }

    private func millis(_ duration: Duration) -> String {
        String(format: "%.2f ms", Double(duration.nanoseconds) / 1_000_000)
    }

    private func percent(_ ratio: Double) -> String {
        String(format: "%.1f%%", ratio * 100)
    }
}
