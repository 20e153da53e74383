// llmc/dataset.h — the Megatron mmap indexed dataset (seed_spec §5.3): reader with full validation, and writer.
//
// PREFIX.bin holds every item's token ids back to back (no header); PREFIX.idx is, little-endian and packed:
//   9 bytes magic "MMIDIDX\0\0" | u64 version = 1 | u8 dtype code (8 = uint16, 4 = int32) | u64 n items |
//   u64 m doc_idx entries | int32 sizes[n] | int64 pointers[n] (byte offsets into .bin) | int64 doc_idx[m]
// The seed writes one item per document (its size includes the appended EOD) and doc_idx = 0, 1, ..., n.
//
// The reader maps both files and never copies them: the header arrays start at offset 34, which is not
// aligned for int32/int64, so every element is read with memcpy (free on x86, and defined behaviour).
#pragma once
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include "config.h"
#include "utils.h"

constexpr uint8_t DTYPE_INT32 = 4;
constexpr uint8_t DTYPE_UINT16 = 8;
constexpr size_t IDX_HEADER_BYTES = 34;
static const char IDX_MAGIC[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};

// numpy names of Megatron's dtype codes, for error messages; nullptr for a code Megatron never writes.
inline const char* idx_dtype_name(int code) {
    static const char* names[9] = {nullptr, "uint8", "int8", "int16", "int32", "int64", "float64", "float32",
                                   "uint16"};
    return code >= 1 && code <= 8 ? names[code] : nullptr;
}

// printf-style std::string, so error messages read like the llmc_die ones.
inline std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string strfmt(const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

// A read-only memory map of a whole file (an empty file maps to nullptr with size 0).
struct MappedFile {
    const unsigned char* data = nullptr;
    size_t size = 0;

    bool open(const std::string& path, std::string* err) {
        close();
        int fd = ::open(path.c_str(), O_RDONLY);
        if (fd < 0) return *err = strfmt("cannot open '%s' (%s)", path.c_str(), strerror(errno)), false;
        struct stat st;
        if (fstat(fd, &st) != 0) {
            *err = strfmt("cannot stat '%s' (%s)", path.c_str(), strerror(errno));
            ::close(fd);
            return false;
        }
        size = (size_t)st.st_size;
        if (size > 0) {
            void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
            if (p == MAP_FAILED) {
                *err = strfmt("cannot map '%s' (%s)", path.c_str(), strerror(errno));
                ::close(fd);
                size = 0;
                return false;
            }
            data = (const unsigned char*)p;
        }
        ::close(fd);  // the mapping keeps the file alive
        return true;
    }
    void close() {
        if (data) munmap((void*)data, size);
        data = nullptr;
        size = 0;
    }
    ~MappedFile() { close(); }
};

template <class T>
inline T load_le(const unsigned char* p) {
    T v;
    memcpy(&v, p, sizeof v);
    return v;
}

struct IndexedDataset {
    std::string idx_path, bin_path;
    uint8_t dtype = 0;
    size_t itemsize = 0;
    int64_t num_items = 0;    // n: entries of sizes/pointers (= documents for the seed's files)
    int64_t num_doc_idx = 0;  // m: entries of doc_idx (= documents + 1)
    int64_t num_tokens = 0;   // Σ sizes
    MappedFile idx, bin;

    IndexedDataset() = default;
    IndexedDataset(const IndexedDataset&) = delete;
    IndexedDataset& operator=(const IndexedDataset&) = delete;

    int32_t item_size(int64_t i) const { return load_le<int32_t>(idx.data + IDX_HEADER_BYTES + 4 * i); }
    int64_t item_pointer(int64_t i) const {
        return load_le<int64_t>(idx.data + IDX_HEADER_BYTES + 4 * num_items + 8 * i);
    }
    int64_t doc_index(int64_t k) const {
        return load_le<int64_t>(idx.data + IDX_HEADER_BYTES + 12 * num_items + 8 * k);
    }
    // Position of item i's first token in the .bin, counted in tokens.
    int64_t item_start(int64_t i) const { return item_pointer(i) / (int64_t)itemsize; }

    int token(int64_t pos) const {
        const unsigned char* p = bin.data + pos * itemsize;
        return dtype == DTYPE_UINT16 ? (int)load_le<uint16_t>(p) : (int)load_le<int32_t>(p);
    }
    // Tokens [pos, pos + n) of the whole .bin token stream, widened to int.
    void read_tokens(int64_t pos, int64_t n, int* out) const {
        if (dtype == DTYPE_UINT16) {
            const unsigned char* p = bin.data + pos * 2;
            for (int64_t k = 0; k < n; k++) out[k] = load_le<uint16_t>(p + 2 * k);
        } else {
            memcpy(out, bin.data + pos * 4, (size_t)n * 4);
        }
    }
    // The item whose token range holds global token position pos (binary search over the pointers).
    int64_t item_of_token(int64_t pos) const {
        int64_t lo = 0, hi = num_items - 1;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo + 1) / 2;
            if (item_start(mid) <= pos) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    // Opens PREFIX.idx / PREFIX.bin and checks every field. vocab_limit > 0 also scans all tokens for ids
    // outside [0, vocab_limit) (a full read of the .bin); 0 skips that scan. Returns false with *err set.
    bool open(const std::string& prefix, int vocab_limit, std::string* err) {
        close();
        idx_path = prefix + ".idx";
        bin_path = prefix + ".bin";
        const char* ip = idx_path.c_str();
        if (!idx.open(idx_path, err)) return false;
        if (idx.size < IDX_HEADER_BYTES)
            return fail(err, strfmt("'%s' is %zu bytes, too short for the 34-byte header", ip, idx.size));
        if (memcmp(idx.data, IDX_MAGIC, 9) != 0)
            return fail(err, strfmt("'%s': bad magic (not a Megatron mmap indexed dataset .idx file)", ip));
        uint64_t version = load_le<uint64_t>(idx.data + 9);
        if (version != 1)
            return fail(err, strfmt("'%s': unsupported version %" PRIu64 " (expected 1)", ip, version));
        dtype = idx.data[17];
        if (dtype != DTYPE_UINT16 && dtype != DTYPE_INT32) {
            if (idx_dtype_name(dtype))
                return fail(err, strfmt("'%s': dtype code %d (%s) is not supported (expected 8 = uint16 or "
                                        "4 = int32)", ip, dtype, idx_dtype_name(dtype)));
            return fail(err, strfmt("'%s': unknown dtype code %d", ip, dtype));
        }
        itemsize = dtype == DTYPE_UINT16 ? 2 : 4;
        uint64_t n = load_le<uint64_t>(idx.data + 18), m = load_le<uint64_t>(idx.data + 26);
        // Compare counts against the file size without overflowing on garbage headers.
        size_t body = idx.size - IDX_HEADER_BYTES;
        if (n > body / 12 || m > body / 8 || 12 * n + 8 * m != body)
            return fail(err, strfmt("'%s': header says %" PRIu64 " items and %" PRIu64 " doc_idx entries "
                                    "(%.0f bytes) but the file has %zu bytes", ip, n, m,
                                    34.0 + 12.0 * (double)n + 8.0 * (double)m, idx.size));
        num_items = (int64_t)n;
        num_doc_idx = (int64_t)m;
        int64_t expect = 0;
        for (int64_t i = 0; i < num_items; i++) {
            int32_t s = item_size(i);
            if (s < 0) return fail(err, strfmt("'%s': item %" PRId64 " has negative size %d", ip, i, s));
            int64_t p = item_pointer(i);
            if (p != expect)
                return fail(err, strfmt("'%s': pointers are not the prefix sums of sizes: item %" PRId64
                                        " points to byte %" PRId64 ", expected %" PRId64, ip, i, p, expect));
            expect += (int64_t)s * (int64_t)itemsize;
        }
        num_tokens = expect / (int64_t)itemsize;
        if (num_doc_idx == 0) return fail(err, strfmt("'%s': doc_idx is empty (it must start at 0)", ip));
        if (doc_index(0) != 0)
            return fail(err, strfmt("'%s': doc_idx must start at 0 but starts at %" PRId64, ip, doc_index(0)));
        if (doc_index(num_doc_idx - 1) != num_items)
            return fail(err, strfmt("'%s': doc_idx must end at the item count %" PRId64 " but ends at %" PRId64,
                                    ip, num_items, doc_index(num_doc_idx - 1)));
        for (int64_t k = 1; k < num_doc_idx; k++)
            if (doc_index(k) < doc_index(k - 1))
                return fail(err, strfmt("'%s': doc_idx decreases at entry %" PRId64 " (%" PRId64 " after %" PRId64
                                        ")", ip, k, doc_index(k), doc_index(k - 1)));
        if (!bin.open(bin_path, err)) {
            close();
            return false;
        }
        if ((int64_t)bin.size != expect)
            return fail(err, strfmt("'%s' has %zu bytes but '%s' describes %" PRId64 " tokens = %" PRId64
                                    " bytes (truncated or mismatched .bin)", bin_path.c_str(), bin.size, ip,
                                    num_tokens, expect));
        if (vocab_limit > 0) {
            int64_t bad = first_token_outside(vocab_limit);
            if (bad >= 0) {
                int64_t item = item_of_token(bad);
                return fail(err, strfmt("'%s': token id %d at item %" PRId64 " position %" PRId64 " is outside "
                                        "the vocabulary [0, %d)", bin_path.c_str(), token(bad), item,
                                        bad - item_start(item), vocab_limit));
            }
        }
        return true;
    }

    void open_or_die(const std::string& prefix, int vocab_limit = GPT2_VOCAB) {
        std::string err;
        if (!open(prefix, vocab_limit, &err)) llmc_die("%s", err.c_str());
    }

    // Global position of the first token id outside [0, limit), or -1. Branch-free inner loop so it vectorises.
    int64_t first_token_outside(int limit) const {
        const int64_t block = 1 << 16;
        for (int64_t b = 0; b < num_tokens; b += block) {
            int64_t e = b + block < num_tokens ? b + block : num_tokens;
            bool any = false;
            if (dtype == DTYPE_UINT16) {
                const uint16_t* p = (const uint16_t*)(bin.data);  // .bin data is page-aligned
                uint16_t mx = 0;
                for (int64_t k = b; k < e; k++) mx = p[k] > mx ? p[k] : mx;
                any = (int)mx >= limit;
            } else {
                const int32_t* p = (const int32_t*)(bin.data);
                uint32_t mx = 0;  // negative ids become huge as uint32, so one max catches both ends
                for (int64_t k = b; k < e; k++) mx = (uint32_t)p[k] > mx ? (uint32_t)p[k] : mx;
                any = mx >= (uint32_t)limit;
            }
            if (any)
                for (int64_t k = b; k < e; k++)
                    if (token(k) < 0 || token(k) >= limit) return k;
        }
        return -1;
    }

    void close() {
        idx.close();
        bin.close();
        num_items = num_doc_idx = num_tokens = 0;
    }

private:
    bool fail(std::string* err, const std::string& msg) {
        *err = msg;
        close();
        return false;
    }
};

// Writes PREFIX.bin / PREFIX.idx in the seed's layout (uint16, one item per document, doc_idx = 0..n).
// Both files are written under temporary names and renamed only by finalize(), so an interrupted run never
// leaves a half-written dataset under the real name; abort() (also run by the destructor) removes them.
struct IndexedDatasetWriter {
    std::string prefix, bin_tmp, idx_tmp;
    FILE* bin = nullptr;
    int vocab_size = GPT2_VOCAB;
    std::vector<int32_t> sizes;
    int64_t num_tokens = 0;
    std::vector<uint16_t> buf;

    IndexedDatasetWriter() = default;
    IndexedDatasetWriter(const IndexedDatasetWriter&) = delete;
    IndexedDatasetWriter& operator=(const IndexedDatasetWriter&) = delete;
    ~IndexedDatasetWriter() { abort(); }

    bool open(const std::string& out_prefix, int vocab, std::string* err) {
        abort();
        if (vocab < 1 || vocab > 65536)
            return *err = strfmt("vocabulary size %d does not fit the uint16 dataset format", vocab), false;
        prefix = out_prefix;
        vocab_size = vocab;
        std::string suffix = strfmt(".tmp%d", (int)getpid());
        bin_tmp = prefix + ".bin" + suffix;
        idx_tmp = prefix + ".idx" + suffix;
        bin = fopen(bin_tmp.c_str(), "wb");
        if (!bin) return *err = strfmt("cannot create '%s' (%s)", bin_tmp.c_str(), strerror(errno)), false;
        setvbuf(bin, nullptr, _IOFBF, 1 << 20);
        sizes.clear();
        num_tokens = 0;
        return true;
    }

    // Appends one document (its ids already include the EOD, if any) as one item.
    bool add_document(const int* ids, size_t n, std::string* err) {
        if (!bin) return *err = "dataset writer is not open", false;
        if (n > (size_t)INT32_MAX)
            return *err = strfmt("document %zu has %zu tokens, more than an int32 size allows", sizes.size(), n),
                   false;
        buf.resize(n);
        for (size_t k = 0; k < n; k++) {
            if (ids[k] < 0 || ids[k] >= vocab_size)
                return *err = strfmt("document %zu: token id %d at position %zu is outside the vocabulary "
                                     "[0, %d)", sizes.size(), ids[k], k, vocab_size), false;
            buf[k] = (uint16_t)ids[k];
        }
        if (n && fwrite(buf.data(), 2, n, bin) != n)
            return *err = strfmt("write to '%s' failed (%s)", bin_tmp.c_str(), strerror(errno)), false;
        sizes.push_back((int32_t)n);
        num_tokens += (int64_t)n;
        return true;
    }

    bool finalize(std::string* err) {
        if (!bin) return *err = "dataset writer is not open", false;
        bool ok = fclose(bin) == 0;
        bin = nullptr;
        if (!ok) return *err = strfmt("write to '%s' failed (%s)", bin_tmp.c_str(), strerror(errno)), false;
        FILE* f = fopen(idx_tmp.c_str(), "wb");
        if (!f) return *err = strfmt("cannot create '%s' (%s)", idx_tmp.c_str(), strerror(errno)), false;
        uint64_t version = 1, n = sizes.size(), m = n + 1;
        uint8_t code = DTYPE_UINT16;
        ok = fwrite(IDX_MAGIC, 1, 9, f) == 9 && fwrite(&version, 8, 1, f) == 1 && fwrite(&code, 1, 1, f) == 1 &&
             fwrite(&n, 8, 1, f) == 1 && fwrite(&m, 8, 1, f) == 1 &&
             (n == 0 || fwrite(sizes.data(), 4, n, f) == n);
        // pointers (byte offsets) and doc_idx (0..n) are streamed in blocks rather than materialised.
        std::vector<int64_t> block;
        int64_t offset = 0;
        for (uint64_t b = 0; ok && b < n; b += 65536) {
            block.clear();
            for (uint64_t i = b; i < n && i < b + 65536; i++) block.push_back(offset), offset += 2 * sizes[i];
            ok = fwrite(block.data(), 8, block.size(), f) == block.size();
        }
        for (uint64_t b = 0; ok && b < m; b += 65536) {
            block.clear();
            for (uint64_t i = b; i < m && i < b + 65536; i++) block.push_back((int64_t)i);
            ok = fwrite(block.data(), 8, block.size(), f) == block.size();
        }
        ok = (fclose(f) == 0) && ok;
        if (!ok) return *err = strfmt("write to '%s' failed (%s)", idx_tmp.c_str(), strerror(errno)), false;
        // .bin first: a reader that sees the new .idx is then guaranteed to see the matching .bin.
        std::string bin_final = prefix + ".bin", idx_final = prefix + ".idx";
        if (rename(bin_tmp.c_str(), bin_final.c_str()) != 0)
            return *err = strfmt("cannot rename '%s' to '%s' (%s)", bin_tmp.c_str(), bin_final.c_str(),
                                 strerror(errno)), false;
        if (rename(idx_tmp.c_str(), idx_final.c_str()) != 0)
            return *err = strfmt("cannot rename '%s' to '%s' (%s)", idx_tmp.c_str(), idx_final.c_str(),
                                 strerror(errno)), false;
        bin_tmp.clear();
        idx_tmp.clear();
        return true;
    }

    // Drops an unfinished dataset: closes and deletes the temporary files.
    void abort() {
        if (bin) fclose(bin);
        bin = nullptr;
        if (!bin_tmp.empty()) remove(bin_tmp.c_str());
        if (!idx_tmp.empty()) remove(idx_tmp.c_str());
        bin_tmp.clear();
        idx_tmp.clear();
    }

    void open_or_die(const std::string& out_prefix, int vocab = GPT2_VOCAB) {
        std::string err;
        if (!open(out_prefix, vocab, &err)) llmc_die("%s", err.c_str());
    }
    void add_document_or_die(const int* ids, size_t n) {
        std::string err;
        if (!add_document(ids, n, &err)) abort(), llmc_die("%s", err.c_str());
    }
    void finalize_or_die() {
        std::string err;
        if (!finalize(&err)) abort(), llmc_die("%s", err.c_str());
    }
};
