import Benchmark
import CChecksumBaseline
import SwiftProtobuf
import WireCodec

// WireCodec measured beside its peers, in one run:
// - SWIM ping and Raft AppendEntries encode/decode: WireCodec vs
//   swift-protobuf on the same field values (Messages.swift,
//   Protobuf/chorus_bench.proto). Targets: no allocation per ping decode;
//   AppendEntries decode at least 3x faster than swift-protobuf.
// - A whole frame (header + CRC32C + ping body) encoded and verified, beside
//   the bare ping, to show what framing costs.
// - CRC32C over 1 KiB and 64 KiB: WireCodec's slicing-by-8 vs the SSE4.2
//   instruction in C.
// Every benchmark runs its operation 1,000 times per iteration
// (scalingFactor .kilo); Scripts/bench divides by that.

/// Encodes `message` `times` times into one reused writer: after the first
/// call the writer's buffer never grows, so this measures encoding alone.
@inline(never)
func encodeRepeatedly<Message: WireEncodable>(_ message: Message, into writer: inout WireWriter, times: Int) {
    for _ in 0..<times {
        writer.removeAll()
        message.encode(to: &writer)
        blackHole(writer.count)
    }
}

/// Decodes a `Message` that fills `bytes`, `times` times.
@inline(never)
func decodeRepeatedly<Message: WireDecodable>(_ type: Message.Type, from bytes: UnsafeRawBufferPointer, times: Int) {
    for _ in 0..<times {
        do {
            blackHole(try Message(decoding: bytes))
        } catch {
            fatalError("benchmark input does not decode: \(error)")
        }
    }
}

/// Builds a SWIM frame around the ping body, `times` times, in one reused writer.
@inline(never)
func encodeFramesRepeatedly(into writer: inout WireWriter, times: Int) {
    for _ in 0..<times {
        writer.removeAll()
        do {
            try Frame.encode(protocol: .swim, into: &writer) { samplePing.encode(to: &$0) }
        } catch {
            fatalError("frame does not encode: \(error)")
        }
        blackHole(writer.count)
    }
}

/// Verifies a frame (magic, version, length, CRC32C) and decodes its ping
/// body, `times` times: what a receiver does per datagram.
@inline(never)
func decodeFramesRepeatedly(from datagram: UnsafeRawBufferPointer, times: Int) {
    for _ in 0..<times {
        do {
            let (header, body) = try Frame.decode(datagram)
            blackHole(header)
            blackHole(try SWIMPing(decoding: body))
        } catch {
            fatalError("benchmark frame does not decode: \(error)")
        }
    }
}

/// Encoded inputs and reusable buffers, made once.
final class CodecFixture {
    var writer = WireWriter(capacity: 2048)
    let pingBytes: UnsafeRawBufferPointer
    let appendEntriesBytes: UnsafeRawBufferPointer
    let frameBytes: UnsafeRawBufferPointer
    let protobufPing = Chorus_Bench_SwimPing(samplePing)
    let protobufAppendEntries = Chorus_Bench_AppendEntries(sampleAppendEntries)
    let protobufPingBytes: [UInt8]
    let protobufAppendEntriesBytes: [UInt8]
    let kibibyte: UnsafeRawBufferPointer
    let sixtyFourKibibytes: UnsafeRawBufferPointer

    init() throws {
        func stable(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
            // Lives as long as the benchmark process.
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
            copy.copyBytes(from: bytes)
            return UnsafeRawBufferPointer(copy)
        }
        func encoded(_ message: some WireEncodable) -> [UInt8] {
            var writer = WireWriter()
            message.encode(to: &writer)
            return writer.takeBytes()
        }
        pingBytes = stable(encoded(samplePing))
        appendEntriesBytes = stable(encoded(sampleAppendEntries))
        var frameWriter = WireWriter()
        try Frame.encode(protocol: .swim, into: &frameWriter) { samplePing.encode(to: &$0) }
        frameBytes = stable(frameWriter.takeBytes())
        protobufPingBytes = try protobufPing.serializedBytes()
        protobufAppendEntriesBytes = try protobufAppendEntries.serializedBytes()
        var random = SplitMix(seed: 0xC4C)
        kibibyte = stable((0..<1024).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        sixtyFourKibibytes = stable((0..<65_536).map { _ in UInt8(truncatingIfNeeded: random.next()) })

        // The inputs must say the same thing in both encodings.
        let decodedPing = try SWIMPing(decoding: pingBytes)
        let decodedAppendEntries = try AppendEntries(decoding: appendEntriesBytes)
        let decodedProtobufPing = try Chorus_Bench_SwimPing(serializedBytes: protobufPingBytes)
        let decodedProtobufAppendEntries = try Chorus_Bench_AppendEntries(serializedBytes: protobufAppendEntriesBytes)
        precondition(decodedPing == samplePing && decodedAppendEntries == sampleAppendEntries)
        precondition(decodedProtobufPing == protobufPing && decodedProtobufAppendEntries == protobufAppendEntries)
        precondition(
            CChecksum_hasHardwareCRC32C() == 0
                || CChecksum_hardwareCRC32C(kibibyte.baseAddress, kibibyte.count) == CRC32C.checksum(kibibyte))
    }
}

/// A tiny deterministic generator for test bytes.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func benchmarks() {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 2_000
    )
    let fixture: CodecFixture
    do {
        fixture = try CodecFixture()
    } catch {
        fatalError("cannot build the codec benchmark inputs: \(error)")
    }

    // MARK: SWIM ping (about 20 bytes)

    Benchmark("SWIMPing.encode.WireCodec") { benchmark in
        encodeRepeatedly(samplePing, into: &fixture.writer, times: benchmark.scaledIterations.count)
    }
    Benchmark("SWIMPing.encode.protobuf") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! fixture.protobufPing.serializedBytes() as [UInt8])
        }
    }
    Benchmark("SWIMPing.decode.WireCodec") { benchmark in
        decodeRepeatedly(SWIMPing.self, from: fixture.pingBytes, times: benchmark.scaledIterations.count)
    }
    Benchmark("SWIMPing.decode.protobuf") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! Chorus_Bench_SwimPing(serializedBytes: fixture.protobufPingBytes))
        }
    }

    // MARK: Raft AppendEntries, 8 entries of 64 bytes (about 600 bytes)

    Benchmark("AppendEntries.encode.WireCodec") { benchmark in
        encodeRepeatedly(sampleAppendEntries, into: &fixture.writer, times: benchmark.scaledIterations.count)
    }
    Benchmark("AppendEntries.encode.protobuf") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! fixture.protobufAppendEntries.serializedBytes() as [UInt8])
        }
    }
    Benchmark("AppendEntries.decode.WireCodec") { benchmark in
        decodeRepeatedly(AppendEntries.self, from: fixture.appendEntriesBytes, times: benchmark.scaledIterations.count)
    }
    Benchmark("AppendEntries.decode.protobuf") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! Chorus_Bench_AppendEntries(serializedBytes: fixture.protobufAppendEntriesBytes))
        }
    }

    // MARK: Frames: 13-byte header + CRC32C around the ping

    Benchmark("Frame.encode.WireCodec") { benchmark in
        encodeFramesRepeatedly(into: &fixture.writer, times: benchmark.scaledIterations.count)
    }
    Benchmark("Frame.decode.WireCodec") { benchmark in
        decodeFramesRepeatedly(from: fixture.frameBytes, times: benchmark.scaledIterations.count)
    }

    // MARK: CRC32C

    for (label, bytes) in [("1KiB", fixture.kibibyte), ("64KiB", fixture.sixtyFourKibibytes)] {
        Benchmark("CRC32C.\(label).WireCodec") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(CRC32C.checksum(bytes))
            }
        }
        if CChecksum_hasHardwareCRC32C() != 0 {
            Benchmark("CRC32C.\(label).SSE42") { benchmark in
                for _ in benchmark.scaledIterations {
                    blackHole(CChecksum_hardwareCRC32C(bytes.baseAddress, bytes.count))
                }
            }
        }
    }
}
