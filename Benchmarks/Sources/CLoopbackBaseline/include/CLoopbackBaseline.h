// The physical-limit baseline for the loopback datagram benchmark: plain C,
// one sender thread and one receiver thread, sendmmsg/recvmmsg in batches.
// Chorus's UDPTransport and SwiftNIO are measured against what this reaches.
#ifndef CLOOPBACK_BASELINE_H
#define CLOOPBACK_BASELINE_H

#include <stdint.h>

/// What one blast did.
typedef struct {
    /// Datagrams the sender handed to the kernel.
    uint64_t sent;
    /// Datagrams the receiver got (the rest were dropped by the kernel when
    /// the receive buffer was full).
    uint64_t received;
    /// Nanoseconds from just before the threads started to the last receive.
    uint64_t elapsed_ns;
} CLoopbackResult;

/// Sends `count` datagrams of `payload_size` bytes (at most 65,507) from one
/// UDP socket on 127.0.0.1 to another, `batch` (1...1024) per sendmmsg, as
/// fast as the sender thread can; a receiver thread reads them `batch` per
/// recvmmsg. The run ends when all arrived or, once the sender is done, when
/// nothing arrived for `idle_ms` milliseconds.
///
/// `receive_buffer_bytes` and `send_buffer_bytes` set SO_RCVBUF on the
/// receiving socket and SO_SNDBUF on the sending one (0 keeps the system
/// default; the kernel caps them at net.core.rmem_max / wmem_max).
///
/// With `connected` 0 every datagram carries the receiver's address
/// (`msg_name`), as a transport that talks to many peers sends, and as
/// UDPTransport and SwiftNIO's datagram channel do; with `connected` 1 the
/// sending socket is `connect`ed to the receiver first, a kernel shortcut
/// (the route is looked up once, not per datagram) that only a socket with a
/// single peer can take.
///
/// Returns 0, or an errno value if a socket could not be set up or a thread
/// could not start.
int CLoopback_blast(uint64_t count, uint32_t payload_size, uint32_t batch,
                    int receive_buffer_bytes, int send_buffer_bytes, uint32_t idle_ms,
                    int connected, CLoopbackResult *result);

#endif
