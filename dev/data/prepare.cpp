// dev/data/prepare.cpp — text corpus -> Megatron mmap indexed dataset (PREFIX.bin / PREFIX.idx) with the
// project's GPT-2 BPE, the seed's preprocess_data_many_cores semantics (seed_spec §5.2): one item per
// document, empty documents dropped, EOD 50256 appended and counted in the document's size.
//
// Inputs (plain or gzip-compressed, detected from the content) are read in large blocks; each block's
// documents are tokenised by all threads and written in input order, so the output is the same for any
// --threads. Formats: jsonl = one JSON object per line, its "text" field (--json-key) is the document; blank
// lines are skipped. text = documents separated by blank lines (whitespace-only); a document is its lines
// joined by the original newlines, without the final one.
//
// Build: make build/prepare (links zlib: -lz).
#include <zlib.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include "llmc/args.h"        // ArgParser
#include "llmc/dataset.h"     // IndexedDatasetWriter
#include "llmc/json.h"        // json_get_string_field
#include "llmc/tokenizer.h"   // GPT2Tokenizer

static IndexedDatasetWriter g_writer;

// Every error leaves no output behind: the writer's temporary files are removed before exiting.
[[noreturn]] static void fail(const std::string& msg) {
    g_writer.abort();
    llmc_die("%s", msg.c_str());
}

// Reads a file in blocks through zlib, which passes non-gzip files through unchanged.
struct Input {
    gzFile f = nullptr;
    std::string path;
    void open(const std::string& p) {
        path = p;
        FILE* probe = fopen(p.c_str(), "rb");  // for a clear message: gzopen reports no reason
        if (!probe) fail(strfmt("cannot open '%s' (%s)", p.c_str(), strerror(errno)));
        fclose(probe);
        f = gzopen(p.c_str(), "rb");
        if (!f) fail(strfmt("cannot open '%s'", p.c_str()));
        gzbuffer(f, 1 << 20);
    }
    // Appends up to n bytes to buf; returns the count (0 at the end of the file).
    size_t read(std::string& buf, size_t n) {
        size_t old = buf.size();
        buf.resize(old + n);
        int got = gzread(f, &buf[old], (unsigned)n);
        if (got < 0) {
            int code;
            const char* msg = gzerror(f, &code);
            fail(strfmt("cannot read '%s' (%s)", path.c_str(), code == Z_ERRNO ? strerror(errno) : msg));
        }
        buf.resize(old + (size_t)got);
        if ((size_t)got < n) {  // the end: zlib reports a cut-off gzip stream only through gzerror
            int code;
            gzerror(f, &code);
            if (code != Z_OK) fail(strfmt("cannot read '%s': gzip data is truncated or corrupt", path.c_str()));
        }
        return (size_t)got;
    }
    void close() {
        if (f) gzclose(f);
        f = nullptr;
    }
};

// Threads that live for the whole run (the tokeniser's word cache is per thread, so it stays warm across
// blocks); run(job) executes job on every thread, the caller's included, and returns when all are done.
struct Pool {
    std::vector<std::thread> threads;
    std::mutex mu;
    std::condition_variable start_cv, done_cv;
    std::function<void()> job;
    int64_t generation = 0;
    int running = 0;
    bool stop = false;

    explicit Pool(int n) {
        for (int t = 1; t < n; t++) threads.emplace_back([this]() { loop(); });
    }
    void loop() {
        for (int64_t seen = 0;;) {
            std::function<void()> j;
            {
                std::unique_lock<std::mutex> lock(mu);
                start_cv.wait(lock, [&]() { return stop || generation != seen; });
                if (stop) return;
                seen = generation;
                j = job;
            }
            j();
            std::lock_guard<std::mutex> lock(mu);
            if (--running == 0) done_cv.notify_all();
        }
    }
    void run(const std::function<void()>& f) {
        {
            std::lock_guard<std::mutex> lock(mu);
            job = f;
            running = (int)threads.size();
            generation++;
        }
        start_cv.notify_all();
        f();
        std::unique_lock<std::mutex> lock(mu);
        done_cv.wait(lock, [&]() { return running == 0; });
    }
    ~Pool() {
        {
            std::lock_guard<std::mutex> lock(mu);
            stop = true;
        }
        start_cv.notify_all();
        for (auto& t : threads) t.join();
    }
};

struct Record {
    size_t begin, end;  // byte range of the document (jsonl: the JSON line) in the block
    int64_t line;       // 1-based line number where it starts
};

static bool is_blank(const char* s, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (s[k] != ' ' && s[k] != '\t' && s[k] != '\r') return false;
    return true;
}

// Splits buf (starting at line number *line) into complete records. Returns where the incomplete tail begins
// (it is kept for the next block) and sets *line to the tail's line number; at eof everything is complete.
static size_t split_records(const std::string& buf, bool jsonl, bool eof, int64_t* line, std::vector<Record>& out) {
    const char* s = buf.data();
    size_t len = buf.size(), pos = 0, doc_begin = 0, doc_end = 0;
    int64_t ln = *line, doc_line = 0;
    bool open = false;
    while (pos < len) {
        const char* nl = (const char*)memchr(s + pos, '\n', len - pos);
        if (!nl && !eof) break;
        size_t end = nl ? (size_t)(nl - s) : len, trimmed = end;
        if (trimmed > pos && s[trimmed - 1] == '\r') trimmed--;
        bool blank = is_blank(s + pos, end - pos);
        if (jsonl) {
            if (!blank) out.push_back({pos, trimmed, ln});
        } else if (blank) {
            if (open) out.push_back({doc_begin, doc_end, doc_line});
            open = false;
        } else {
            if (!open) doc_begin = pos, doc_line = ln, open = true;
            doc_end = trimmed;
        }
        ln++;
        pos = nl ? end + 1 : len;
    }
    if (open && eof) out.push_back({doc_begin, doc_end, doc_line}), open = false;
    if (open) {  // an unfinished text document is carried over whole
        *line = doc_line;
        return doc_begin;
    }
    *line = ln;
    return pos;
}

struct Stats {
    int64_t docs = 0, empty = 0, tokens = 0, bytes = 0, records = 0;
};

int main(int argc, char** argv) {
    // --input may repeat: collect those first and parse the rest.
    std::vector<std::string> inputs;
    std::vector<char*> rest = take_repeated_flag(argc, argv, "input", inputs);
    std::string input_help, output_prefix, format = "jsonl", key = "text";
    std::string vocab = "dev/data/gpt2-vocab.json", merges = "dev/data/gpt2-merges.txt";
    int threads = (int)std::max(1u, std::thread::hardware_concurrency());
    int64_t max_docs = 0;
    ArgParser args("prepare", "Tokenises JSONL or plain-text files (plain or .gz) into PREFIX.bin / PREFIX.idx "
                              "(Megatron mmap indexed dataset, uint16, EOD appended to every document).");
    args.add_string("input", &input_help, "input file; repeat for several, processed in the given order");
    args.add_string("output-prefix", &output_prefix, "writes OUTPUT_PREFIX.bin and OUTPUT_PREFIX.idx");
    args.add_choice("format", &format, "jsonl|text", "jsonl: one JSON object per line; text: blank-line-separated "
                                                     "documents");
    args.add_string("json-key", &key, "the JSONL field holding the document text");
    args.add_string("vocab", &vocab, "GPT-2 vocabulary (encoder.json)");
    args.add_string("merges", &merges, "GPT-2 BPE merges (vocab.bpe)");
    args.add_int("threads", &threads, "tokeniser threads", 1, 4096);
    args.add_int("max-docs", &max_docs, "stop after this many input documents, empty ones included (0 = all)", 0);
    args.parse((int)rest.size(), rest.data());
    if (inputs.empty()) llmc_die("no --input given (see --help)");
    if (output_prefix.empty()) llmc_die("no --output-prefix given (see --help)");
    for (auto& in : inputs) {  // fail on a missing input before spending time on the others
        FILE* f = fopen(in.c_str(), "rb");
        if (!f) llmc_die("cannot open '%s' (%s)", in.c_str(), strerror(errno));
        fclose(f);
    }
    const bool jsonl = format == "jsonl";

    GPT2Tokenizer tok;
    std::string err;
    if (!tok.try_load(vocab.c_str(), merges.c_str(), &err)) llmc_die("%s", err.c_str());
    if (!g_writer.open(output_prefix, tok.vocab_size(), &err)) fail(err);
    const int eod = tok.eod_id();

    auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&]() { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    double last_report = 0;
    Stats st;
    const size_t BLOCK = 16 << 20;
    std::vector<Record> recs;
    std::vector<std::vector<int>> ids;
    std::vector<std::string> errs;
    bool done = false;
    Pool pool(threads);
    for (size_t f = 0; f < inputs.size() && !done; f++) {
        Input in;
        in.open(inputs[f]);
        std::string buf;
        int64_t line = 1;
        bool eof = false;
        while (!eof && !done) {
            size_t want = std::max(BLOCK, buf.size());  // a record longer than a block doubles the buffer
            size_t got = in.read(buf, want);
            st.bytes += (int64_t)got;
            eof = got < want;  // gzread fills the request unless the file ends
            recs.clear();
            size_t tail = split_records(buf, jsonl, eof, &line, recs);
            if (max_docs > 0 && st.records + (int64_t)recs.size() >= max_docs) {
                recs.resize((size_t)(max_docs - st.records));
                done = true;
            }
            st.records += (int64_t)recs.size();
            // Tokenise the block's records on all threads; each thread takes small runs of records in turn.
            ids.assign(recs.size(), std::vector<int>());
            errs.assign(recs.size(), std::string());
            std::atomic<size_t> next{0};
            auto work = [&]() {
                std::string text, e;
                for (size_t a; (a = next.fetch_add(8)) < recs.size();)
                    for (size_t k = a; k < std::min(a + 8, recs.size()); k++) {
                        const char* p = buf.data() + recs[k].begin;
                        size_t n = recs[k].end - recs[k].begin;
                        if (jsonl) {
                            if (!json_get_string_field(p, n, key.c_str(), text, &e)) { errs[k] = e; continue; }
                            p = text.data();
                            n = text.size();
                        }
                        if (!tok.encode(p, n, ids[k], &e))
                            errs[k] = jsonl ? "in the \"" + key + "\" value: " + e : e;
                    }
            };
            pool.run(work);
            // Write in input order; the first error (in input order) stops everything.
            for (size_t k = 0; k < recs.size(); k++) {
                if (!errs[k].empty())
                    fail(strfmt("%s:%lld: %s", inputs[f].c_str(), (long long)recs[k].line, errs[k].c_str()));
                if (ids[k].empty()) {
                    st.empty++;
                    continue;
                }
                ids[k].push_back(eod);
                if (!g_writer.add_document(ids[k].data(), ids[k].size(), &err)) fail(err);
                st.docs++;
                st.tokens += (int64_t)ids[k].size();
            }
            buf.erase(0, tail);
            if (seconds() - last_report >= 2.0 || eof || done) {
                last_report = seconds();
                printf("prepare: %s: %.1f MB read, %lld docs, %lld tokens, %.1f MB/s\n", inputs[f].c_str(),
                       st.bytes / 1e6, (long long)st.docs, (long long)st.tokens, st.bytes / 1e6 / last_report);
                fflush(stdout);
            }
        }
        in.close();
    }
    if (st.docs == 0) fail("no non-empty documents in the input");
    if (!g_writer.finalize(&err)) fail(err);
    double sec = seconds();
    printf("wrote %s.bin/.idx: %lld documents (%lld empty dropped), %lld tokens incl. EOD, %.1f MB of text in "
           "%.2f s: %.1f MB/s, %.0f tokens/s, %d threads\n", output_prefix.c_str(), (long long)st.docs,
           (long long)st.empty, (long long)st.tokens, st.bytes / 1e6, sec, st.bytes / 1e6 / sec,
           st.tokens / sec, threads);
    return 0;
}
