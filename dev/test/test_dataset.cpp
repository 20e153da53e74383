// dev/test/test_dataset.cpp — the Megatron indexed dataset: writer round trip, reading files written by an
// independent numpy writer (dev/test/make_numpy_dataset.py, run with /usr/bin/python3 into a temp dir), and
// every kind of corruption rejected with its own message.
#include <unistd.h>
#include <cstdlib>
#include <string>
#include <vector>
#include "dev/test/test.h"
#include "llmc/dataset.h"

static std::string g_dir;

static std::string slurp(const std::string& path) { return read_file_or_die(path.c_str()); }
static void spit(const std::string& path, const std::string& bytes) {
    FILE* f = fopen_or_die(path.c_str(), "wb");
    fwrite_or_die(bytes.data(), 1, bytes.size(), f, path.c_str());
    fclose(f);
}
static bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

template <class T>
static void poke(std::string& bytes, size_t offset, T v) { memcpy(&bytes[offset], &v, sizeof v); }

// Opens PREFIX and returns the error ("" when it opened).
static std::string open_error(const std::string& prefix, int vocab = GPT2_VOCAB) {
    IndexedDataset ds;
    std::string err;
    return ds.open(prefix, vocab, &err) ? std::string() : err;
}

static bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

// Documents of the round-trip test: doc d has 1 + (d*13)%50 tokens with a deterministic pattern, EOD last.
static std::vector<std::vector<int>> make_docs(int n) {
    std::vector<std::vector<int>> docs(n);
    for (int d = 0; d < n; d++) {
        int len = 1 + (d * 13) % 50;
        for (int k = 0; k + 1 < len; k++) docs[d].push_back((d * 7 + k * 1009) % EOD_ID);
        docs[d].push_back(EOD_ID);
    }
    return docs;
}

static void test_round_trip() {
    std::string prefix = g_dir + "/rt";
    auto docs = make_docs(300);
    IndexedDatasetWriter w;
    std::string err;
    CHECK(w.open(prefix, GPT2_VOCAB, &err), "%s", err.c_str());
    for (auto& d : docs) CHECK(w.add_document(d.data(), d.size(), &err), "%s", err.c_str());
    CHECK(!exists(prefix + ".idx"), "the .idx must not appear before finalize");
    CHECK(w.finalize(&err), "%s", err.c_str());
    CHECK(exists(prefix + ".bin") && exists(prefix + ".idx"), "finalize must create both files");
    CHECK(!exists(w.bin_tmp) && !exists(prefix + ".bin.tmp" + std::to_string(getpid())), "temp files left");

    IndexedDataset ds;
    CHECK(ds.open(prefix, GPT2_VOCAB, &err), "%s", err.c_str());
    CHECK(ds.dtype == DTYPE_UINT16, "dtype %d", ds.dtype);
    CHECK(ds.num_items == 300 && ds.num_doc_idx == 301, "n %ld m %ld", (long)ds.num_items, (long)ds.num_doc_idx);
    int64_t pos = 0;
    bool same = true;
    for (int d = 0; d < 300; d++) {
        same &= ds.item_size(d) == (int32_t)docs[d].size() && ds.item_pointer(d) == 2 * pos && ds.doc_index(d) == d;
        std::vector<int> got(docs[d].size());
        ds.read_tokens(ds.item_start(d), got.size(), got.data());
        same &= got == docs[d];
        pos += docs[d].size();
    }
    CHECK(same, "round trip changed sizes, pointers, doc_idx or tokens");
    CHECK(ds.num_tokens == pos && ds.doc_index(300) == 300, "tokens %ld", (long)ds.num_tokens);
    // The .idx size follows from the layout alone: 34 + 12n + 8m bytes, .bin 2 bytes per token.
    CHECK(ds.idx.size == 34 + 12 * 300 + 8 * 301 && (int64_t)ds.bin.size == 2 * pos, "file sizes");
}

static void test_writer_refusals() {
    std::string prefix = g_dir + "/refuse", err;
    IndexedDatasetWriter w;
    CHECK(w.open(prefix, GPT2_VOCAB, &err), "%s", err.c_str());
    int ok[2] = {1, 2}, eod_plus[2] = {5, GPT2_VOCAB}, neg[1] = {-1};
    CHECK(w.add_document(ok, 2, &err), "%s", err.c_str());
    CHECK(!w.add_document(eod_plus, 2, &err) && contains(err, "token id 50257 at position 1"), "%s", err.c_str());
    CHECK(!w.add_document(neg, 1, &err) && contains(err, "token id -1 at position 0"), "%s", err.c_str());
    w.abort();
    CHECK(!exists(prefix + ".bin") && !exists(prefix + ".idx"), "aborted writer left files");
    std::string tmp = prefix + ".bin.tmp" + std::to_string(getpid());
    CHECK(!exists(tmp), "aborted writer left its temp file");
    IndexedDatasetWriter w2;
    int big[1] = {70000};
    CHECK(w2.open(prefix, 65536, &err), "%s", err.c_str());
    CHECK(!w2.add_document(big, 1, &err) && contains(err, "token id 70000"), "%s", err.c_str());
    CHECK(!w2.open(prefix, 70001, &err) && contains(err, "does not fit"), "%s", err.c_str());
}

// Datasets written by numpy: uint16 and int32, one item per document and several items per document.
static void test_numpy_written() {
    const char* dtypes[2] = {"uint16", "int32"};
    for (int t = 0; t < 2; t++) {
        for (int group : {1, 3}) {
            std::string prefix = g_dir + "/np_" + dtypes[t] + std::to_string(group);
            std::string cmd = "/usr/bin/python3 dev/test/make_numpy_dataset.py " + prefix + " " + dtypes[t] + " " +
                              std::to_string(group);
            int rc = system(cmd.c_str());
            CHECK(rc == 0, "'%s' failed (run from the repository root)", cmd.c_str());
            if (rc != 0) continue;
            IndexedDataset ds;
            std::string err;
            CHECK(ds.open(prefix, GPT2_VOCAB, &err), "%s", err.c_str());
            if (!err.empty()) continue;
            const int n = 101;
            CHECK(ds.dtype == (t == 0 ? 8 : 4) && ds.num_items == n && ds.num_doc_idx == (n + group - 1) / group + 1,
                  "header dtype %d n %ld m %ld", ds.dtype, (long)ds.num_items, (long)ds.num_doc_idx);
            bool same = true;
            for (int i = 0; i < n; i++) {
                int size = 1 + (i * 7919) % 37;
                same &= ds.item_size(i) == size;
                for (int k = 0; k < size; k++) same &= ds.token(ds.item_start(i) + k) == (i * 131 + k * 17) % 50000;
            }
            for (int64_t k = 0; k + 1 < ds.num_doc_idx; k++) same &= ds.doc_index(k) == k * group;
            CHECK(same, "numpy-written %s dataset (group %d) read back differently", dtypes[t], group);
        }
    }
}

// Writes a small valid dataset, then one corrupted copy per case, each rejected with its own message.
static void test_corruptions() {
    std::string good = g_dir + "/good", err;
    auto docs = make_docs(10);  // sizes 1, 14, 27, 40, 3, 16, 29, 42, 5, 18
    IndexedDatasetWriter w;
    w.open_or_die(good);
    for (auto& d : docs) w.add_document_or_die(d.data(), d.size());
    w.finalize_or_die();
    CHECK(open_error(good) == "", "good dataset rejected: %s", open_error(good).c_str());
    const std::string idx = slurp(good + ".idx"), bin = slurp(good + ".bin");
    const size_t n = 10, sizes_at = 34, ptrs_at = 34 + 4 * n, doc_at = 34 + 12 * n;

    struct Case { const char* name; std::string idx, bin; const char* expect; };
    std::vector<Case> cases;
    auto add = [&](const char* name, std::string i, std::string b, const char* expect) {
        cases.push_back({name, i, b, expect});
    };
    { std::string i = idx; i[0] = 'X'; add("magic", i, bin, "bad magic"); }
    { std::string i = idx; poke<uint64_t>(i, 9, 2); add("version", i, bin, "unsupported version 2 (expected 1)"); }
    { std::string i = idx; i[17] = 6; add("float dtype", i, bin, "dtype code 6 (float64) is not supported"); }
    { std::string i = idx; i[17] = 42; add("unknown dtype", i, bin, "unknown dtype code 42"); }
    add("short idx", idx.substr(0, 20), bin, "too short for the 34-byte header");
    add("truncated idx", idx.substr(0, idx.size() - 8), bin, "header says 10 items and 11 doc_idx entries");
    { std::string i = idx; poke<uint64_t>(i, 18, 11); add("count", i, bin, "header says 11 items"); }
    { std::string i = idx; poke<int32_t>(i, sizes_at + 4 * 3, 41);
      add("sizes vs pointers", i, bin, "item 4 points to byte 164, expected 166"); }
    { std::string i = idx; poke<int32_t>(i, sizes_at + 4 * 9, -5); add("negative size", i, bin, "item 9 has negative size -5"); }
    { std::string i = idx; poke<int64_t>(i, ptrs_at, 2); add("first pointer", i, bin, "item 0 points to byte 2, expected 0"); }
    { std::string i = idx; poke<int64_t>(i, doc_at, 1); add("doc_idx start", i, bin, "doc_idx must start at 0 but starts at 1"); }
    { std::string i = idx; poke<int64_t>(i, doc_at + 8 * n, 9);
      add("doc_idx end", i, bin, "doc_idx must end at the item count 10 but ends at 9"); }
    { std::string i = idx; poke<int64_t>(i, doc_at + 8 * 4, 2);
      add("doc_idx order", i, bin, "doc_idx decreases at entry 4 (2 after 3)"); }
    add("truncated bin", idx, bin.substr(0, bin.size() - 2), "(truncated or mismatched .bin)");
    add("long bin", idx, bin + "ab", "(truncated or mismatched .bin)");
    // Token 60000 at item 3 position 7: item 3 starts after 1 + 14 + 27 = 42 tokens.
    { std::string b = bin; poke<uint16_t>(b, 2 * (42 + 7), 60000);
      add("token", idx, b, "token id 60000 at item 3 position 7 is outside the vocabulary [0, 50257)"); }

    for (size_t c = 0; c < cases.size(); c++) {
        std::string prefix = g_dir + "/bad" + std::to_string(c);
        spit(prefix + ".idx", cases[c].idx);
        spit(prefix + ".bin", cases[c].bin);
        std::string e = open_error(prefix);
        CHECK(contains(e, cases[c].expect), "case '%s': got '%s', want '%s'", cases[c].name, e.c_str(),
              cases[c].expect);
        CHECK(contains(e, prefix), "case '%s': message '%s' does not name the file", cases[c].name, e.c_str());
    }
    // The vocabulary limit is the caller's: the EOD (50256) passes at 50257 and fails at 50000.
    std::string e = open_error(good, 50000);
    CHECK(contains(e, "token id 50256 at item 0 position 0"), "got '%s'", e.c_str());
    CHECK(open_error(good, 0) == "", "vocab 0 must skip the scan");
    e = open_error(g_dir + "/missing");
    CHECK(contains(e, "cannot open") && contains(e, "missing.idx"), "got '%s'", e.c_str());
    spit(g_dir + "/nobin.idx", idx);
    e = open_error(g_dir + "/nobin");
    CHECK(contains(e, "cannot open") && contains(e, "nobin.bin"), "got '%s'", e.c_str());
}

// An int32 dataset with a negative id is rejected by the scan too.
static void test_int32_negative() {
    std::string prefix = g_dir + "/np_neg";
    std::string cmd = "/usr/bin/python3 dev/test/make_numpy_dataset.py " + prefix + " int32 1";
    if (system(cmd.c_str()) != 0) { CHECK(false, "'%s' failed", cmd.c_str()); return; }
    std::string b = slurp(prefix + ".bin");
    poke<int32_t>(b, 4 * 1, -3);  // item 0 has 1 token, so global token 1 is item 1 position 0
    spit(prefix + ".bin", b);
    std::string e = open_error(prefix);
    CHECK(contains(e, "token id -3 at item 1 position 0"), "got '%s'", e.c_str());
}

int main() {
    char tmpl[] = "/tmp/llmc_test_dataset_XXXXXX";
    if (!mkdtemp(tmpl)) llmc_die("mkdtemp failed");
    g_dir = tmpl;
    test_round_trip();
    test_writer_refusals();
    test_numpy_written();
    test_corruptions();
    test_int32_negative();
    std::string rm = "rm -rf '" + g_dir + "'";
    if (system(rm.c_str()) != 0) printf("warning: could not remove %s\n", g_dir.c_str());
    return test_summary();
}
