// The C side of smtpscope's capture input: libpcap, plus a few helpers that are easier to write in
// C than to call from Swift. Only Sources/SMTPCapture/PcapSource.swift imports this module.
#ifndef SMTPSCOPE_CPCAP_SHIM_H
#define SMTPSCOPE_CPCAP_SHIM_H

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <pcap/pcap.h>
#include <zlib.h>

// glibc's fopencookie(3), declared under our own names: <stdio.h> only declares it with _GNU_SOURCE,
// which a module header cannot count on. The struct has the layout of cookie_io_functions_t.
typedef struct {
    ssize_t (*read)(void *cookie, char *buffer, size_t size);
    ssize_t (*write)(void *cookie, const char *buffer, size_t size);
    int (*seek)(void *cookie, int64_t *offset, int whence);
    int (*close)(void *cookie);
} smtpscope_cookie_io_functions;

FILE *smtpscope_fopencookie(void *cookie, const char *mode, smtpscope_cookie_io_functions functions)
    __asm__("fopencookie");

static inline ssize_t smtpscope_gzip_read(void *cookie, char *buffer, size_t size) {
    if (size > INT_MAX) {
        size = INT_MAX;
    }
    int count = gzread((gzFile)cookie, buffer, (unsigned)size);
    return count < 0 ? -1 : (ssize_t)count;
}

static inline int smtpscope_gzip_close(void *cookie) {
    return gzclose((gzFile)cookie) == Z_OK ? 0 : EOF;
}

/// What `smtpscope_open_capture_file` found.
typedef struct {
    /// The stream to hand to pcap_fopen_offline, or NULL (then `error` is an errno value).
    FILE *stream;
    /// The zlib handle when the file is gzip-compressed, for progress (gzoffset); else NULL.
    gzFile gzip;
    /// Size of the file on disk.
    int64_t size;
    int error;
} smtpscope_capture_file;

/// Opens `path` for reading a capture. A gzip-compressed file (magic 1f 8b) is opened through zlib and
/// wrapped with fopencookie, so libpcap reads the decompressed bytes and never knows.
static inline smtpscope_capture_file smtpscope_open_capture_file(const char *path) {
    smtpscope_capture_file result = {NULL, NULL, 0, 0};
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        result.error = errno;
        return result;
    }
    struct stat status;
    if (fstat(fileno(file), &status) != 0) {
        result.error = errno;
        fclose(file);
        return result;
    }
    if (S_ISDIR(status.st_mode)) {
        result.error = EISDIR;
        fclose(file);
        return result;
    }
    result.size = (int64_t)status.st_size;
    // libpcap reads each record with two small freads; a large buffer saves most of the syscalls.
    setvbuf(file, NULL, _IOFBF, 1 << 20);
    unsigned char magic[2] = {0, 0};
    size_t got = fread(magic, 1, 2, file);
    if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        fclose(file);
        gzFile gzip = gzopen(path, "rb");
        if (gzip == NULL) {
            result.error = errno != 0 ? errno : ENOMEM;
            return result;
        }
        gzbuffer(gzip, 1 << 16);
        smtpscope_cookie_io_functions functions = {smtpscope_gzip_read, NULL, NULL, smtpscope_gzip_close};
        FILE *stream = smtpscope_fopencookie(gzip, "r", functions);
        if (stream == NULL) {
            result.error = errno;
            gzclose(gzip);
            return result;
        }
        result.stream = stream;
        result.gzip = gzip;
        return result;
    }
    rewind(file);
    result.stream = file;
    return result;
}

/// Bytes of the file consumed so far: the compressed offset for gzip, else the stream position.
static inline int64_t smtpscope_capture_file_offset(FILE *stream, gzFile gzip) {
    if (gzip != NULL) {
        return (int64_t)gzoffset(gzip);
    }
    if (stream != NULL) {
        return (int64_t)ftello(stream);
    }
    return -1;
}

/// A stop request that a signal handler or another thread may set (async-signal-safe).
static inline void smtpscope_flag_set(int *flag) {
    __atomic_store_n(flag, 1, __ATOMIC_SEQ_CST);
}

static inline int smtpscope_flag_get(int *flag) {
    return __atomic_load_n(flag, __ATOMIC_SEQ_CST);
}

#endif
