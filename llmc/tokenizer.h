// llmc/tokenizer.h — exact GPT-2 byte-level BPE (seed_spec §6), byte-identical to tiktoken's "gpt2" encoding
// (encode_ordinary) and to HF's GPT-2 tokenizer on ordinary text.
//
//   1. Pre-tokenisation reproduces the regex
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      with a hand-written matcher; \p{L}, \p{N} and \s are the Unicode 16.0 classes of llmc/unicode_data.h
//      (\s = White_Space, as in tiktoken's regex engine; U+001C..U+001F are NOT whitespace).
//   2. Each piece's UTF-8 bytes start as one symbol per byte (the GPT-2 byte->unicode table of §6).
//   3. BPE: merge every occurrence of the lowest-ranked adjacent pair (merges.txt line order), repeat.
//
// Policy decisions:
//   * No special tokens: "<|endoftext|>" inside text is ordinary text (tiktoken encode_ordinary, Megatron's
//     GPT2BPETokenizer); the caller appends eod_id() itself.
//   * Invalid UTF-8 input is rejected (encode returns false, the message names the byte offset and why):
//     overlong forms, UTF-8-encoded surrogates, code points above U+10FFFF, stray or missing continuation
//     bytes. Python-based pipelines cannot even represent such input as str, so there is no reference to match.
//   * decode() returns raw bytes; decode_utf8() replaces each maximal ill-formed subsequence by U+FFFD,
//     exactly like Python's bytes.decode("utf-8", errors="replace").
// Speed: pieces are memoised in a per-thread cache (English text hits it >90% of the time), pair ranks live in
// an open-addressing hash table, and long pieces use an O(n log n) heap-based merge instead of O(n^2) scans.
#pragma once
#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstring>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llmc/json.h"
#include "llmc/unicode_data.h"
#include "llmc/utils.h"

// Decodes the UTF-8 sequence at s[i] (i < n). Returns its length (1..4) and sets *cp, or returns -k where k >= 1
// is the length of the maximal ill-formed subpart (the unit Python replaces by one U+FFFD).
inline int utf8_next(const unsigned char* s, size_t n, size_t i, uint32_t* cp) {
    unsigned c = s[i];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    uint32_t v;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte; it is narrower for a few lead bytes
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; lo = c == 0xE0 ? 0xA0 : 0x80; hi = c == 0xED ? 0x9F : 0xBF; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; lo = c == 0xF0 ? 0x90 : 0x80; hi = c == 0xF4 ? 0x8F : 0xBF; }
    else return -1;
    for (int k = 1; k < len; k++) {
        if (i + k >= n) return -k;
        unsigned b = s[i + k];
        if (b < lo || b > hi) return -k;
        lo = 0x80, hi = 0xBF;
        v = v << 6 | (b & 0x3F);
    }
    *cp = v;
    return len;
}

// Checks that s[0, n) is valid UTF-8; on failure sets *err to a message naming the byte offset and the reason.
inline bool utf8_validate(const char* text, size_t n, std::string* err) {
    const unsigned char* s = (const unsigned char*)text;
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {  // skip 8 ASCII bytes at a time
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) { i += 8; continue; }
        }
        uint32_t cp;
        int len = utf8_next(s, n, i, &cp);
        if (len > 0) { i += len; continue; }
        if (!err) return false;
        unsigned c = s[i], c2 = i + 1 < n ? s[i + 1] : 0;
        int k = -len;
        char why[96];
        if (c >= 0x80 && c <= 0xBF) snprintf(why, sizeof why, "unexpected continuation byte 0x%02X", c);
        else if (c == 0xC0 || c == 0xC1 || (c == 0xE0 && i + 1 < n && c2 < 0xA0) || (c == 0xF0 && i + 1 < n && c2 < 0x90))
            snprintf(why, sizeof why, "overlong encoding (lead byte 0x%02X)", c);
        else if (c == 0xED && i + 1 < n && c2 >= 0xA0 && c2 <= 0xBF)
            snprintf(why, sizeof why, "UTF-16 surrogate encoded in UTF-8 (bytes 0xED 0x%02X)", c2);
        else if ((c == 0xF4 && i + 1 < n && c2 >= 0x90 && c2 <= 0xBF) || (c >= 0xF5 && c <= 0xF7))
            snprintf(why, sizeof why, "code point above U+10FFFF (lead byte 0x%02X)", c);
        else if (c >= 0xF8) snprintf(why, sizeof why, "invalid byte 0x%02X", c);
        else if (i + k >= n) snprintf(why, sizeof why, "truncated %d-byte sequence at end of text", c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2);
        else snprintf(why, sizeof why, "truncated sequence (byte 0x%02X at offset %zu is not a continuation byte)", s[i + k], i + k);
        char buf[160];
        snprintf(buf, sizeof buf, "invalid UTF-8 at byte offset %zu: %s", i, why);
        *err = buf;
        return false;
    }
    return true;
}

// Python's bytes.decode("utf-8", errors="replace"): each maximal ill-formed subpart becomes U+FFFD.
inline std::string utf8_replace_invalid(const std::string& in) {
    std::string out;
    out.reserve(in.size());
    const unsigned char* s = (const unsigned char*)in.data();
    size_t n = in.size(), i = 0;
    while (i < n) {
        uint32_t cp;
        int len = utf8_next(s, n, i, &cp);
        if (len > 0) { out.append(in, i, len); i += len; }
        else { out += "\xEF\xBF\xBD"; i += -len; }
    }
    return out;
}

// Class (UCLS_*) of every BMP code point, expanded once from the range table; planes 1-16 use binary search.
inline const uint8_t* unicode_bmp_classes() {
    static const std::vector<uint8_t> table = [] {
        std::vector<uint8_t> t(0x10000, UCLS_OTHER);
        for (int r = 0; r < kUnicodeRangeCount && kUnicodeRanges[r].lo < 0x10000; r++)
            for (uint32_t c = kUnicodeRanges[r].lo; c <= kUnicodeRanges[r].hi && c < 0x10000; c++) t[c] = kUnicodeRanges[r].cls;
        return t;
    }();
    return table.data();
}
inline uint8_t unicode_class(uint32_t cp) {
    if (cp < 0x10000) return unicode_bmp_classes()[cp];
    int lo = 0, hi = kUnicodeRangeCount - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < kUnicodeRanges[mid].lo) hi = mid - 1;
        else if (cp > kUnicodeRanges[mid].hi) lo = mid + 1;
        else return kUnicodeRanges[mid].cls;
    }
    return UCLS_OTHER;
}

// GPT-2's byte -> code point table (§6): printable bytes map to themselves, the 68 others to 256, 257, ...
inline uint32_t gpt2_byte_to_unicode(int b) {
    auto keep = [](int x) { return (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255); };
    if (keep(b)) return (uint32_t)b;
    int k = 0;
    for (int x = 0; x < b; x++) k += !keep(x);
    return 256 + (uint32_t)k;
}

inline uint64_t tok_hash_bytes_(const char* p, size_t n) {  // fast 64-bit hash for short byte strings
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xC2B2AE3D27D4EB4FULL);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
        p += 8, n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n);
    h = (h ^ v) * 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 29;
    return h ? h : 1;  // 0 marks an empty cache slot
}

struct GPT2Tokenizer {
    static constexpr int kVocab = 50257, kMerges = 50000, kEod = 50256;

    void load(const char* vocab_json_path, const char* merges_path) {
        std::string v = read_file_or_die(vocab_json_path), m = read_file_or_die(merges_path), err;
        if (!load_from_strings(v, m, vocab_json_path, merges_path, &err)) llmc_die("%s", err.c_str());
    }
    // Non-dying variants (tests check the messages): false + *err naming the file and the problem.
    bool try_load(const char* vocab_json_path, const char* merges_path, std::string* err) {
        std::string v, m;
        if (!read_file_(vocab_json_path, v, err) || !read_file_(merges_path, m, err)) return false;
        return load_from_strings(v, m, vocab_json_path, merges_path, err);
    }
    bool load_from_strings(const std::string& vocab_json, const std::string& merges_txt, const char* vocab_name,
                           const char* merges_name, std::string* err);

    bool encode(const char* text, size_t len, std::vector<int>& out, std::string* err) const;
    std::string decode(const int* ids, size_t n) const;
    std::string decode_utf8(const int* ids, size_t n) const { return utf8_replace_invalid(decode(ids, n)); }
    int vocab_size() const { return kVocab; }
    int eod_id() const { return kEod; }

    // Internals exposed for tests: the pre-tokenizer alone, and BPE of one piece with a chosen algorithm
    // (0 = automatic, 1 = quadratic scan, 2 = heap), bypassing the cache.
    template <class F> void pretokenize(const char* text, size_t len, F emit) const;  // emit(begin, end); valid UTF-8 only
    void bpe_piece(const char* p, size_t n, std::vector<int>& out, int algo = 0) const;

   private:
    struct PairSlot { uint64_t key; int rank, merged; };  // key = (left << 32 | right) + 1; 0 = empty slot
    std::vector<PairSlot> pairs_;
    uint64_t pair_mask_ = 0;
    std::string tok_bytes_;          // all tokens' bytes, concatenated
    std::vector<uint32_t> tok_off_;  // token i = tok_bytes_[tok_off_[i], tok_off_[i+1])
    int byte_id_[256] = {};
    uint8_t ascii_class_[128] = {};
    const uint8_t* bmp_class_ = nullptr;
    uint64_t serial_ = 0;  // identifies this loaded instance to the per-thread caches

    static bool read_file_(const char* path, std::string& out, std::string* err) {
        FILE* f = fopen(path, "rb");
        if (!f) {
            if (err) *err = std::string("cannot open '") + path + "' (" + strerror(errno) + ")";
            return false;
        }
        char buf[1 << 16];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, k);
        bool ok = !ferror(f);
        fclose(f);
        if (!ok && err) *err = std::string("cannot read '") + path + "'";
        return ok;
    }
    static uint64_t pair_key_(int a, int b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }
    const PairSlot* find_pair_(int a, int b) const {
        uint64_t key = pair_key_(a, b) + 1;  // +1 so that no real key is 0 (the empty marker)
        for (uint64_t h = (key * 0x9E3779B97F4A7C15ULL) >> 32 & pair_mask_;; h = (h + 1) & pair_mask_) {
            const PairSlot& s = pairs_[h];
            if (s.key == key) return &s;
            if (s.key == 0) return nullptr;
        }
    }
    int rank_(int a, int b) const {
        const PairSlot* s = find_pair_(a, b);
        return s ? s->rank : INT_MAX;
    }
    uint8_t class_at_(const unsigned char* s, size_t n, size_t i, int* len) const {
        if (s[i] < 0x80) { *len = 1; return ascii_class_[s[i]]; }
        uint32_t cp = 0;
        *len = utf8_next(s, n, i, &cp);
        return cp < 0x10000 ? bmp_class_[cp] : unicode_class(cp);
    }
    void bpe_scan_(std::vector<int>& ids) const;
    void bpe_heap_(std::vector<int>& ids) const;
};

inline bool GPT2Tokenizer::load_from_strings(const std::string& vocab_json, const std::string& merges_txt,
                                             const char* vocab_name, const char* merges_name, std::string* err) {
    auto fail = [&](const char* file, const std::string& what) {
        if (err) *err = std::string(file) + ": " + what;
        return false;
    };
    std::vector<std::pair<std::string, int>> entries;
    std::string jerr;
    if (!json_parse_string_int_object(vocab_json.data(), vocab_json.size(), entries, &jerr)) return fail(vocab_name, jerr);
    if (entries.size() != (size_t)kVocab)
        return fail(vocab_name, "has " + std::to_string(entries.size()) + " entries, expected " + std::to_string(kVocab));

    // Inverse of the byte table, to turn each vocab key (byte-table characters) back into raw bytes.
    std::unordered_map<uint32_t, int> unicode_to_byte;
    for (int b = 0; b < 256; b++) unicode_to_byte[gpt2_byte_to_unicode(b)] = b;
    std::vector<std::string> bytes_of(kVocab);
    std::vector<char> seen(kVocab, 0);
    std::unordered_map<std::string, int> id_of;
    id_of.reserve(kVocab * 2);
    for (auto& [key, id] : entries) {
        if (id < 0 || id >= kVocab) return fail(vocab_name, "token id " + std::to_string(id) + " out of range [0, 50257)");
        if (seen[id]) return fail(vocab_name, "token id " + std::to_string(id) + " appears twice");
        if (!id_of.emplace(key, id).second) return fail(vocab_name, "token \"" + key + "\" appears twice");
        seen[id] = 1;
        if (key == "<|endoftext|>") {
            if (id != kEod) return fail(vocab_name, "\"<|endoftext|>\" has id " + std::to_string(id) + ", expected 50256");
            bytes_of[id] = key;  // decodes to its literal text, as in HF and tiktoken
            continue;
        }
        const unsigned char* s = (const unsigned char*)key.data();
        for (size_t i = 0; i < key.size();) {
            uint32_t cp = 0;
            int len = utf8_next(s, key.size(), i, &cp);
            auto it = len > 0 ? unicode_to_byte.find(cp) : unicode_to_byte.end();
            if (it == unicode_to_byte.end())
                return fail(vocab_name, "token id " + std::to_string(id) + " contains a character outside the GPT-2 byte alphabet");
            bytes_of[id].push_back((char)it->second);
            i += len;
        }
        if (key.empty()) return fail(vocab_name, "token id " + std::to_string(id) + " is empty");
    }
    if (!seen[kEod]) return fail(vocab_name, "\"<|endoftext|>\" (id 50256) is missing");
    int byte_id[256];
    for (int b = 0; b < 256; b++) {
        std::string ch;
        json_put_utf8_(ch, gpt2_byte_to_unicode(b));
        auto it = id_of.find(ch);
        if (it == id_of.end()) return fail(vocab_name, "no token for single byte " + std::to_string(b));
        byte_id[b] = it->second;
    }

    // merges.txt: "#version" header, then one "left right" rule per line (rank = order), final newline.
    std::vector<PairSlot> table(1 << 17, PairSlot{0, 0, 0});
    uint64_t mask = table.size() - 1;
    size_t p = merges_txt.find('\n');
    if (merges_txt.compare(0, 8, "#version") != 0 || p == std::string::npos)
        return fail(merges_name, "line 1: expected the \"#version\" header line");
    p++;
    int rank = 0, lineno = 1;
    while (p < merges_txt.size()) {
        lineno++;
        size_t e = merges_txt.find('\n', p);
        if (e == std::string::npos) e = merges_txt.size();
        std::string line = merges_txt.substr(p, e - p);
        p = e + 1;
        size_t sp = line.find(' ');
        if (line.empty() || sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
            return fail(merges_name, "line " + std::to_string(lineno) + ": expected \"<left> <right>\", got \"" + line + "\"");
        std::string a = line.substr(0, sp), b = line.substr(sp + 1);
        auto ia = id_of.find(a), ib = id_of.find(b), im = id_of.find(a + b);
        if (ia == id_of.end() || ib == id_of.end() || im == id_of.end())
            return fail(merges_name, "line " + std::to_string(lineno) + ": \"" + line + "\" uses or makes a token missing from the vocabulary");
        if (rank >= kMerges) return fail(merges_name, "has more than " + std::to_string(kMerges) + " merge rules");
        uint64_t key = pair_key_(ia->second, ib->second) + 1;
        uint64_t h = (key * 0x9E3779B97F4A7C15ULL) >> 32 & mask;
        while (table[h].key != 0 && table[h].key != key) h = (h + 1) & mask;
        if (table[h].key == key) return fail(merges_name, "line " + std::to_string(lineno) + ": duplicate merge rule \"" + line + "\"");
        table[h] = PairSlot{key, rank++, im->second};
    }
    if (rank != kMerges)
        return fail(merges_name, "has " + std::to_string(rank) + " merge rules, expected " + std::to_string(kMerges));

    // Commit only now, so a failed load leaves a previously loaded tokenizer intact.
    pairs_ = std::move(table);
    pair_mask_ = mask;
    memcpy(byte_id_, byte_id, sizeof byte_id);
    tok_bytes_.clear();
    tok_off_.assign(1, 0);
    for (int i = 0; i < kVocab; i++) {
        tok_bytes_ += bytes_of[i];
        tok_off_.push_back((uint32_t)tok_bytes_.size());
    }
    bmp_class_ = unicode_bmp_classes();
    for (int c = 0; c < 128; c++) ascii_class_[c] = bmp_class_[c];
    static std::atomic<uint64_t> counter{0};
    serial_ = ++counter;
    return true;
}

// The regex, alternative by alternative, at each position (every character matches some alternative, so
// the pieces tile the text):
//   contraction | optional ' ' + run of one class (letters, numbers, or "other" = not space/letter/number) |
//   whitespace run not followed by non-space (i.e. all but its last char if a non-space follows) | \s+.
template <class F>
inline void GPT2Tokenizer::pretokenize(const char* text, size_t n, F emit) const {
    const unsigned char* s = (const unsigned char*)text;
    size_t i = 0;
    while (i < n) {
        size_t j = 0;
        if (s[i] == '\'' && i + 1 < n) {
            unsigned c1 = s[i + 1], c2 = i + 2 < n ? s[i + 2] : 0;
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') j = i + 2;
            else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) j = i + 3;
        }
        if (!j) {
            int len;
            uint8_t c = class_at_(s, n, i, &len);
            size_t k = i;
            if (s[i] == ' ' && i + 1 < n) {  // ` ?X+`: the space attaches to a following non-space run
                int l2;
                uint8_t c2 = class_at_(s, n, i + 1, &l2);
                if (c2 != UCLS_SPACE) c = c2, k = i + 1, len = l2;
            }
            if (c != UCLS_SPACE) {
                j = k + len;
                while (j < n) {
                    int l;
                    if (class_at_(s, n, j, &l) != c) break;
                    j += l;
                }
            } else {
                size_t e = i, last = i;
                while (e < n) {
                    int l;
                    if (class_at_(s, n, e, &l) != UCLS_SPACE) break;
                    last = e;
                    e += l;
                }
                // \s+(?!\S) backs off one char when a non-space follows; a single char falls to \s+.
                j = (e < n && last > i) ? last : e;
            }
        }
        emit(i, j);
        i = j;
    }
}

// Quadratic reference algorithm (what GPT-2's Python does), fast for the short pieces that dominate text.
inline void GPT2Tokenizer::bpe_scan_(std::vector<int>& ids) const {
    size_t m = ids.size();
    while (m > 1) {
        int best = INT_MAX;
        size_t at = 0;
        for (size_t k = 0; k + 1 < m; k++) {
            int r = rank_(ids[k], ids[k + 1]);
            if (r < best) best = r, at = k;
        }
        if (best == INT_MAX) break;
        int a = ids[at], b = ids[at + 1], merged = find_pair_(a, b)->merged;
        size_t w = at;
        for (size_t k = at; k < m;) {  // merge all non-overlapping occurrences, left to right
            if (k + 1 < m && ids[k] == a && ids[k + 1] == b) ids[w++] = merged, k += 2;
            else ids[w++] = ids[k++];
        }
        m = w;
    }
    ids.resize(m);
}

// Same result in O(n log n) for long pieces (e.g. unspaced CJK paragraphs): a min-heap of candidate pairs over
// a linked list of symbols. All entries of the lowest rank are popped as one batch (ties pop in position
// order, i.e. left to right) and applied like one pass of the scan above before the pairs they create are queued.
inline void GPT2Tokenizer::bpe_heap_(std::vector<int>& ids) const {
    int m = (int)ids.size();
    if (m < 2) return;
    std::vector<int> prev(m), next(m);
    for (int k = 0; k < m; k++) prev[k] = k - 1, next[k] = k + 1 < m ? k + 1 : -1;
    struct Cand { int rank, pos, left, right; };
    auto later = [](const Cand& x, const Cand& y) { return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos; };
    std::priority_queue<Cand, std::vector<Cand>, decltype(later)> heap(later);
    auto push = [&](int pos) {
        if (pos < 0 || next[pos] < 0) return;
        int r = rank_(ids[pos], ids[next[pos]]);
        if (r != INT_MAX) heap.push(Cand{r, pos, ids[pos], ids[next[pos]]});
    };
    auto valid = [&](const Cand& c) { return ids[c.pos] == c.left && next[c.pos] >= 0 && ids[next[c.pos]] == c.right; };
    for (int k = 0; k + 1 < m; k++) push(k);
    std::vector<Cand> batch;
    std::vector<int> merged_at;
    while (!heap.empty()) {
        batch.clear();
        int r = heap.top().rank;
        while (!heap.empty() && heap.top().rank == r) {
            if (valid(heap.top())) batch.push_back(heap.top());
            heap.pop();
        }
        merged_at.clear();
        for (const Cand& c : batch) {
            if (!valid(c)) continue;  // overlapped by the previous merge (e.g. "a a a")
            int right = next[c.pos];
            ids[c.pos] = find_pair_(c.left, c.right)->merged;
            ids[right] = -1;  // dead symbols never validate again
            next[c.pos] = next[right];
            if (next[right] >= 0) prev[next[right]] = c.pos;
            merged_at.push_back(c.pos);
        }
        for (int pos : merged_at) push(prev[pos]), push(pos);
    }
    int w = 0;
    for (int k = 0; k >= 0; k = next[k]) ids[w++] = ids[k];
    ids.resize(w);
}

inline void GPT2Tokenizer::bpe_piece(const char* p, size_t n, std::vector<int>& out, int algo) const {
    std::vector<int> ids(n);
    for (size_t k = 0; k < n; k++) ids[k] = byte_id_[(unsigned char)p[k]];
    if (algo == 2 || (algo == 0 && n > 64)) bpe_heap_(ids);
    else bpe_scan_(ids);
    out.insert(out.end(), ids.begin(), ids.end());
}

// Per-thread memo of piece -> ids: open addressing over (hash, key span, value span) slots with byte/id arenas.
// It is emptied when it would exceed its size cap or when used with a different tokenizer instance.
struct TokenizerPieceCache_ {
    struct Slot { uint64_t hash; uint32_t koff, klen, voff, vlen; };
    static constexpr size_t kMaxSlots = 1 << 20, kMaxPiece = 128;
    uint64_t owner = 0;
    std::vector<Slot> slots;
    size_t used = 0;
    std::string keys;
    std::vector<int> vals;
    void reset(uint64_t who, size_t cap) {
        owner = who;
        slots.assign(cap, Slot{0, 0, 0, 0, 0});
        used = 0;
        keys.clear();
        vals.clear();
    }
    Slot* find(const char* p, size_t n, uint64_t h) {
        size_t mask = slots.size() - 1;
        for (size_t i = h & mask;; i = (i + 1) & mask) {
            Slot& s = slots[i];
            if (s.hash == 0 || (s.hash == h && s.klen == n && memcmp(keys.data() + s.koff, p, n) == 0)) return &s;
        }
    }
    void grow() {
        std::vector<Slot> old;
        old.swap(slots);
        slots.assign(old.size() * 2, Slot{0, 0, 0, 0, 0});
        size_t mask = slots.size() - 1;
        for (const Slot& s : old) {
            if (!s.hash) continue;
            size_t i = s.hash & mask;
            while (slots[i].hash) i = (i + 1) & mask;
            slots[i] = s;
        }
    }
};
inline TokenizerPieceCache_& tokenizer_piece_cache_() {
    thread_local TokenizerPieceCache_ cache;
    return cache;
}

inline bool GPT2Tokenizer::encode(const char* text, size_t len, std::vector<int>& out, std::string* err) const {
    if (!serial_) llmc_die("GPT2Tokenizer::encode called before load()");
    if (!utf8_validate(text, len, err)) return false;
    TokenizerPieceCache_& cache = tokenizer_piece_cache_();
    if (cache.owner != serial_) cache.reset(serial_, 1 << 14);
    pretokenize(text, len, [&](size_t a, size_t b) {
        const char* p = text + a;
        size_t n = b - a;
        if (n == 1) {  // single bytes need no merging
            out.push_back(byte_id_[(unsigned char)*p]);
            return;
        }
        if (n > TokenizerPieceCache_::kMaxPiece) {
            bpe_piece(p, n, out);
            return;
        }
        uint64_t h = tok_hash_bytes_(p, n);
        TokenizerPieceCache_::Slot* s = cache.find(p, n, h);
        if (s->hash) {
            out.insert(out.end(), cache.vals.begin() + s->voff, cache.vals.begin() + s->voff + s->vlen);
            return;
        }
        size_t start = out.size();
        bpe_piece(p, n, out);
        if (cache.used + 1 > cache.slots.size() / 2) {  // keep the load factor <= 1/2
            if (cache.slots.size() >= TokenizerPieceCache_::kMaxSlots) cache.reset(serial_, 1 << 14);
            else cache.grow();
            s = cache.find(p, n, h);
        }
        *s = TokenizerPieceCache_::Slot{h, (uint32_t)cache.keys.size(), (uint32_t)n, (uint32_t)cache.vals.size(),
                                        (uint32_t)(out.size() - start)};
        cache.keys.append(p, n);
        cache.vals.insert(cache.vals.end(), out.begin() + start, out.end());
        cache.used++;
    });
    return true;
}

inline std::string GPT2Tokenizer::decode(const int* ids, size_t n) const {
    if (!serial_) llmc_die("GPT2Tokenizer::decode called before load()");
    std::string s;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= kVocab) llmc_die("decode: token id %d out of range [0, %d)", ids[i], kVocab);
        s.append(tok_bytes_, tok_off_[ids[i]], tok_off_[ids[i] + 1] - tok_off_[ids[i]]);
    }
    return s;
}
