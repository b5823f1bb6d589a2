#if canImport(Glibc)
import Glibc
#endif

/// A one-shot gate: ``wait()`` blocks the calling thread until ``open()``
/// has been called (from any thread), and returns at once after that.
///
/// `EventLoop.shutdown()` uses it so that every caller on another thread,
/// not only the one that joins the loop's thread, returns after the loop has
/// stopped.
final class Latch: @unchecked Sendable {
    // Invariant for `@unchecked Sendable`: `isOpen` is read and written only
    // with `mutex` locked; the pthread mutex and condition live on the heap,
    // at addresses that never change, from `init` until `deinit`, which runs
    // when no thread can be inside `wait()` or `open()`.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var isOpen = false

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Opens the gate, releasing every waiting thread. Idempotent.
    func open() {
        pthread_mutex_lock(mutex)
        isOpen = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Blocks until the gate is open.
    func wait() {
        pthread_mutex_lock(mutex)
        while !isOpen { pthread_cond_wait(condition, mutex) }
        pthread_mutex_unlock(mutex)
    }
}
