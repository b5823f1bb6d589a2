// See CLoopbackBaseline.h. Kept deliberately simple: blocking sockets, one
// thread per side, no pacing, so it is the best a straightforward program
// can do on this machine's loopback.
#define _GNU_SOURCE
#include "CLoopbackBaseline.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct {
    int fd;
    uint64_t count;
    uint32_t payload_size;
    uint32_t batch;
    atomic_int sender_done;
    uint64_t sent;
    uint64_t received;
    uint64_t last_receive_ns;
    // Where each datagram goes when the socket is not connected.
    struct sockaddr_in destination;
    int connected;
} Blast;

static void *sender_main(void *argument) {
    Blast *blast = argument;
    uint32_t batch = blast->batch;
    unsigned char *payload = calloc(1, blast->payload_size ? blast->payload_size : 1);
    struct mmsghdr *messages = calloc(batch, sizeof(struct mmsghdr));
    struct iovec iov = {.iov_base = payload, .iov_len = blast->payload_size};
    for (uint32_t i = 0; i < batch; i++) {
        messages[i].msg_hdr.msg_iov = &iov;
        messages[i].msg_hdr.msg_iovlen = 1;
        if (!blast->connected) {
            messages[i].msg_hdr.msg_name = &blast->destination;
            messages[i].msg_hdr.msg_namelen = sizeof blast->destination;
        }
    }
    uint64_t sent = 0;
    while (sent < blast->count) {
        uint64_t left = blast->count - sent;
        unsigned int n = left < batch ? (unsigned int)left : batch;
        int done = sendmmsg(blast->fd, messages, n, 0);
        if (done > 0) {
            sent += (uint64_t)done;
        } else if (done < 0 && errno != EINTR && errno != EAGAIN && errno != ENOBUFS) {
            break;
        }
    }
    blast->sent = sent;
    free(messages);
    free(payload);
    return NULL;
}

static void *receiver_main(void *argument) {
    Blast *blast = argument;
    uint32_t batch = blast->batch;
    size_t slot = blast->payload_size ? blast->payload_size : 1;
    unsigned char *buffers = malloc(slot * batch);
    struct iovec *iovs = calloc(batch, sizeof(struct iovec));
    struct mmsghdr *messages = calloc(batch, sizeof(struct mmsghdr));
    for (uint32_t i = 0; i < batch; i++) {
        iovs[i].iov_base = buffers + slot * i;
        iovs[i].iov_len = slot;
        messages[i].msg_hdr.msg_iov = &iovs[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t received = 0;
    uint64_t last = now_ns();
    while (received < blast->count) {
        int n = recvmmsg(blast->fd, messages, batch, MSG_WAITFORONE, NULL);
        if (n > 0) {
            received += (uint64_t)n;
            last = now_ns();
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // The receive timeout passed with nothing: finished once the
            // sender is done (the rest were dropped).
            if (atomic_load(&blast->sender_done)) break;
        } else if (n < 0 && errno != EINTR) {
            break;
        }
    }
    blast->received = received;
    blast->last_receive_ns = last;
    free(messages);
    free(iovs);
    free(buffers);
    return NULL;
}

int CLoopback_blast(uint64_t count, uint32_t payload_size, uint32_t batch,
                    int receive_buffer_bytes, int send_buffer_bytes, uint32_t idle_ms,
                    int connected, CLoopbackResult *result) {
    memset(result, 0, sizeof *result);
    if (batch < 1) batch = 1;
    if (batch > 1024) batch = 1024;
    if (payload_size > 65507) return EMSGSIZE;

    int error = 0;
    int rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (rx < 0) return errno;
    int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (tx < 0) {
        error = errno;
        close(rx);
        return error;
    }

    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    struct timeval timeout = {.tv_sec = idle_ms / 1000, .tv_usec = (idle_ms % 1000) * 1000};
    if (receive_buffer_bytes > 0 &&
        setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof receive_buffer_bytes) != 0) {
        error = errno;
    } else if (send_buffer_bytes > 0 &&
               setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &send_buffer_bytes, sizeof send_buffer_bytes) != 0) {
        error = errno;
    } else if (setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0 ||
               bind(rx, (struct sockaddr *)&address, sizeof address) != 0 ||
               getsockname(rx, (struct sockaddr *)&address, &length) != 0 ||
               (connected && connect(tx, (struct sockaddr *)&address, sizeof address) != 0)) {
        error = errno;
    }
    if (error) {
        close(tx);
        close(rx);
        return error;
    }

    // One record per thread; the receiver learns that the sender is done
    // from its own record, set once the sender thread has been joined.
    Blast send_side = {.fd = tx, .count = count, .payload_size = payload_size, .batch = batch,
                       .destination = address, .connected = connected};
    Blast receive_side = {.fd = rx, .count = count, .payload_size = payload_size, .batch = batch};

    uint64_t start = now_ns();
    pthread_t receiver, sender;
    if ((error = pthread_create(&receiver, NULL, receiver_main, &receive_side)) != 0) {
        close(tx);
        close(rx);
        return error;
    }
    if ((error = pthread_create(&sender, NULL, sender_main, &send_side)) != 0) {
        atomic_store(&receive_side.sender_done, 1);
        pthread_join(receiver, NULL);
        close(tx);
        close(rx);
        return error;
    }
    pthread_join(sender, NULL);
    atomic_store(&receive_side.sender_done, 1);
    pthread_join(receiver, NULL);

    result->sent = send_side.sent;
    result->received = receive_side.received;
    result->elapsed_ns = receive_side.last_receive_ns > start ? receive_side.last_receive_ns - start : 0;
    close(tx);
    close(rx);
    return 0;
}
