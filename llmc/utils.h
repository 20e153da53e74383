// llmc/utils.h — error reporting and checked file I/O shared by every program (host side).
// Every failure a user can cause ends in one line "error: <what>" on stderr and exit status 1.
#pragma once
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

// Host/device qualifier so the same inline helpers compile in C++ and CUDA translation units.
#ifdef __CUDACC__
#define LLMC_HD __host__ __device__
#else
#define LLMC_HD
#endif

[[noreturn]] inline void llmc_die(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

inline FILE* fopen_or_die(const char* path, const char* mode) {
    FILE* f = fopen(path, mode);
    if (!f) llmc_die("cannot open '%s' (%s)", path, strerror(errno));
    return f;
}

inline void fread_or_die(void* dst, size_t size, size_t count, FILE* f, const char* what) {
    if (count && fread(dst, size, count, f) != count) llmc_die("%s: file is truncated or unreadable", what);
}

inline void fwrite_or_die(const void* src, size_t size, size_t count, FILE* f, const char* what) {
    if (count && fwrite(src, size, count, f) != count) llmc_die("%s: write failed (%s)", what, strerror(errno));
}

// Reads a whole file into a string (tokenizer files, JSONL inputs of moderate size).
inline std::string read_file_or_die(const char* path) {
    FILE* f = fopen_or_die(path, "rb");
    std::string s;
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    if (ferror(f)) llmc_die("cannot read '%s' (%s)", path, strerror(errno));
    fclose(f);
    return s;
}
