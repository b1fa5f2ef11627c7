// A heap allocation counter for the benchmarks, loaded with LD_PRELOAD: counts every malloc, calloc,
// realloc and aligned allocation of the process, and their requested octets, with atomics (no lock,
// no allocation of its own). With ALLOC_COUNT_FILE=PATH set, it appends "ALLOCATIONS OCTETS\n" to
// PATH on SIGUSR2 and at exit, so a benchmark takes a reading before and after a load and divides
// the difference by the sessions it sent: start-up costs fall out.
//
//   cc -O2 -shared -fPIC -o alloc-count.so tools/bench/alloc-count.c
//   LD_PRELOAD=./alloc-count.so ALLOC_COUNT_FILE=/tmp/counts smtpscope proxy ...
//   kill -USR2 PID   # a reading
//
// The counting forwards to glibc's own entry points (__libc_malloc and friends), so it needs glibc.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong allocations;
static atomic_ulong octets;
static const char *path;

static void count(size_t size) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&octets, size, memory_order_relaxed);
}

void *malloc(size_t size) {
    count(size);
    return __libc_malloc(size);
}

void *calloc(size_t count_, size_t size) {
    count(count_ * size);
    return __libc_calloc(count_, size);
}

void *realloc(void *pointer, size_t size) {
    count(size);
    return __libc_realloc(pointer, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    count(size);
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return 12;  // ENOMEM
    *out = pointer;
    return 0;
}

void *aligned_alloc(size_t alignment, size_t size) {
    count(size);
    return __libc_memalign(alignment, size);
}

void *memalign(size_t alignment, size_t size) {
    count(size);
    return __libc_memalign(alignment, size);
}

// Async-signal-safe: digits by hand, one open/write/close.
static size_t format(char *buffer, unsigned long value) {
    char digits[24];
    size_t length = 0;
    do {
        digits[length++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    for (size_t index = 0; index < length; index++) buffer[index] = digits[length - 1 - index];
    return length;
}

static void reading(void) {
    if (path == NULL) return;
    char line[64];
    size_t length = format(line, atomic_load(&allocations));
    line[length++] = ' ';
    length += format(line + length, atomic_load(&octets));
    line[length++] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ssize_t written = write(fd, line, length);
    (void)written;
    close(fd);
}

static void on_signal(int signal_) {
    (void)signal_;
    reading();
}

__attribute__((constructor)) static void start(void) {
    path = getenv("ALLOC_COUNT_FILE");
    if (path == NULL) return;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    action.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &action, NULL);
}

__attribute__((destructor)) static void finish(void) {
    reading();
}
