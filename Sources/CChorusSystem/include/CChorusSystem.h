// CChorusSystem: the Linux system calls and constants that Swift's Glibc
// module does not expose (epoll, eventfd, recvmmsg/sendmmsg and
// struct mmsghdr), and the one CPU instruction Swift cannot reach (SSE 4.2's
// crc32, for CRC-32C). Thin wrappers only: no logic lives in C.
#ifndef C_CHORUS_SYSTEM_H
#define C_CHORUS_SYSTEM_H

// The header is included without _GNU_SOURCE so that it agrees with Swift's
// Glibc module; struct mmsghdr (a GNU extension) stays inside the .c file and
// is handled through opaque pointers.
#ifdef __linux__
#include <stdint.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <errno.h>

// epoll event bits, as plain constants Swift can import.
static const uint32_t CChorus_EPOLLIN = EPOLLIN;
static const uint32_t CChorus_EPOLLOUT = EPOLLOUT;
static const uint32_t CChorus_EPOLLERR = EPOLLERR;
static const uint32_t CChorus_EPOLLHUP = EPOLLHUP;
static const uint32_t CChorus_EPOLLRDHUP = EPOLLRDHUP;
static const int CChorus_EPOLL_CTL_ADD = EPOLL_CTL_ADD;
static const int CChorus_EPOLL_CTL_MOD = EPOLL_CTL_MOD;
static const int CChorus_EPOLL_CTL_DEL = EPOLL_CTL_DEL;
static const int CChorus_EPOLL_CLOEXEC = EPOLL_CLOEXEC;
static const int CChorus_EFD_CLOEXEC = EFD_CLOEXEC;
static const int CChorus_EFD_NONBLOCK = EFD_NONBLOCK;
static const int CChorus_MSG_DONTWAIT = MSG_DONTWAIT;
static const int CChorus_MSG_TRUNC = MSG_TRUNC;

int CChorus_epoll_create1(int flags);
int CChorus_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// Waits for events; writes up to `max` (events, data) pairs into the two arrays.
int CChorus_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms);
int CChorus_eventfd(unsigned int initval, int flags);

/// The size of struct mmsghdr, so Swift can allocate arrays of them.
size_t CChorus_mmsghdr_size(void);
/// Points mmsghdr `index` of `vec` at one iovec and one address buffer.
void CChorus_mmsghdr_set(void *vec, unsigned int index, struct iovec *iov,
                         void *addr, socklen_t addrlen);
/// Sets the address buffer length of mmsghdr `index` (recvmmsg replaces it
/// with the length of the sender's address, so it is reset before each call).
void CChorus_mmsghdr_set_namelen(void *vec, unsigned int index, socklen_t addrlen);
/// The byte count the kernel reported for mmsghdr `index`.
unsigned int CChorus_mmsghdr_len(const void *vec, unsigned int index);
/// The address length the kernel reported for mmsghdr `index`.
socklen_t CChorus_mmsghdr_namelen(const void *vec, unsigned int index);
/// The msg_flags the kernel reported for mmsghdr `index` (MSG_TRUNC, ...).
int CChorus_mmsghdr_flags(const void *vec, unsigned int index);
int CChorus_recvmmsg(int fd, void *vec, unsigned int vlen, int flags);
int CChorus_sendmmsg(int fd, void *vec, unsigned int vlen, int flags);
#endif

#include <stdint.h>
#include <stddef.h>

/// Whether this CPU has the CRC-32C instruction (x86-64 with SSE 4.2).
int CChorus_crc32c_hardware_available(void);
/// Runs the CRC-32C register `crc` (before the final XOR) over `count` bytes
/// with the CPU's crc32 instruction. Only when
/// CChorus_crc32c_hardware_available() returned non-zero.
uint32_t CChorus_crc32c_update_hardware(uint32_t crc, const void *bytes, size_t count);

#endif
