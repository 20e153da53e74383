// dev/test/test_tokenizer.cpp — GPT-2 BPE tokenizer and JSON helper tests. Run from the repo root:
//   make build/test_tokenizer && ./build/test_tokenizer
//   ./build/test_tokenizer --bench FILE.jsonl    (single-thread encode speed on the "text" fields)
// Goldens come from tiktoken + HF tokenizers (dev/test/make_tokenizer_goldens.py). load()'s dying path is
// only checked through its non-dying twin load_from_strings()/try_load() here; the exit-status path is left
// to the tool tests (prepare). Byte values below come from the UTF-8 / Unicode standards and Python's
// bytes.decode(errors="replace"), not from this code.
#include <chrono>
#include <ctime>

#include "dev/test/test.h"
#include "llmc/tokenizer.h"

static const char* kVocabPath = "dev/data/gpt2-vocab.json";
static const char* kMergesPath = "dev/data/gpt2-merges.txt";

static bool contains(const std::string& s, const char* sub) { return s.find(sub) != std::string::npos; }

static std::vector<std::string> read_lines(const char* path) {
    std::string data = read_file_or_die(path);
    std::vector<std::string> lines;
    for (size_t p = 0; p < data.size();) {
        size_t e = data.find('\n', p);
        if (e == std::string::npos) e = data.size();
        lines.push_back(data.substr(p, e - p));
        p = e + 1;
    }
    return lines;
}

// Golden line {"text": "...", "ids": [1, 2, ...]}: the ids array is read here with the walker from json.h.
static bool parse_golden(const std::string& line, std::string& text, std::vector<int>& ids) {
    std::string err;
    if (!json_get_string_field(line.data(), line.size(), "text", text, &err)) return false;
    ids.clear();
    const char* s = line.data();
    size_t n = line.size();
    return json_walk_object_(s, n, &err, [&](size_t ka, size_t kb, bool, size_t* vp) {
        if (!json_key_equals_(s, ka, kb, false, "ids", 3)) return json_skip_value_(s, n, vp, &err);
        size_t p = *vp;
        if (s[p++] != '[') return false;
        while (p < n && s[p] != ']') {
            if (s[p] == ',' || s[p] == ' ') { p++; continue; }
            char* end;
            ids.push_back((int)strtol(s + p, &end, 10));
            if (end == s + p) return false;
            p = end - s;
        }
        *vp = p + 1;
        return true;
    });
}

static std::string show_ids(const std::vector<int>& v, size_t from, size_t count) {
    std::string s;
    for (size_t i = from; i < v.size() && i < from + count; i++) s += std::to_string(v[i]) + " ";
    return s;
}

static void test_goldens(const GPT2Tokenizer& tok) {
    std::vector<std::string> golden = read_lines("dev/test/data/tokenizer_golden.jsonl");
    std::vector<std::string> corpus = read_lines("dev/test/data/tokenizer_corpus.jsonl");
    CHECK(golden.size() == corpus.size() && golden.size() > 100, "golden %zu lines, corpus %zu lines", golden.size(), corpus.size());
    bool shown = false;
    int bad_golden = 0, bad_roundtrip = 0, bad_algo = 0, bad_cache = 0;
    std::vector<std::string> texts;
    std::vector<std::vector<int>> expected;
    for (size_t i = 0; i < golden.size(); i++) {
        std::string text, ctext, err;
        std::vector<int> ids, got;
        bool parsed = parse_golden(golden[i], text, ids);
        CHECK(parsed, "golden line %zu does not parse", i + 1);
        if (!parsed) continue;
        bool cparsed = i < corpus.size() && json_get_string_field(corpus[i].data(), corpus[i].size(), "text", ctext, &err);
        CHECK(cparsed && ctext == text, "corpus line %zu differs from golden text (%s)", i + 1, err.c_str());
        texts.push_back(text);
        expected.push_back(ids);
        bool ok = tok.encode(text.data(), text.size(), got, &err);
        if (!ok || got != ids) {
            bad_golden++;
            if (!shown) {  // the first mismatch in detail
                shown = true;
                size_t at = 0;
                while (at < got.size() && at < ids.size() && got[at] == ids[at]) at++;
                size_t from = at > 3 ? at - 3 : 0;
                printf("golden mismatch, line %zu (%zu bytes, starts \"%.40s\"): encode ok=%d %s\n", i + 1, text.size(),
                       text.c_str(), ok, err.c_str());
                printf("  %zu expected ids, %zu got; first difference at index %zu\n  expected[%zu..]: %s\n  got     [%zu..]: %s\n",
                       ids.size(), got.size(), at, from, show_ids(ids, from, 8).c_str(), from, show_ids(got, from, 8).c_str());
            }
        }
        if (tok.decode(got.data(), got.size()) != text) bad_roundtrip++;
        if (tok.decode_utf8(got.data(), got.size()) != text) bad_roundtrip++;
        // Both merge algorithms must agree on every piece (the heap one is otherwise used only for long pieces).
        tok.pretokenize(text.data(), text.size(), [&](size_t a, size_t b) {
            std::vector<int> scan, heap;
            tok.bpe_piece(text.data() + a, b - a, scan, 1);
            tok.bpe_piece(text.data() + a, b - a, heap, 2);
            if (scan != heap) bad_algo++;
        });
        std::vector<int> again;  // second encode is served from the piece cache
        tok.encode(text.data(), text.size(), again, &err);
        if (again != got) bad_cache++;
    }
    CHECK(bad_golden == 0, "%d of %zu golden texts encode differently", bad_golden, golden.size());
    CHECK(bad_roundtrip == 0, "%d decode/decode_utf8 round trips differ from the text", bad_roundtrip);
    CHECK(bad_algo == 0, "%d pieces merge differently with the scan and heap algorithms", bad_algo);
    CHECK(bad_cache == 0, "%d texts encode differently on the second (cached) pass", bad_cache);

    // Thread safety: both threads encode everything concurrently, each with its own cache.
    int bad_threads = 0;
#pragma omp parallel for num_threads(2) schedule(dynamic) reduction(+ : bad_threads)
    for (int rep = 0; rep < 8; rep++) {
        for (size_t i = 0; i < texts.size(); i++) {
            std::vector<int> got;
            std::string err;
            tok.encode(texts[i].data(), texts[i].size(), got, &err);
            bad_threads += got != expected[i];
        }
    }
    CHECK(bad_threads == 0, "%d encodes differ under concurrent use", bad_threads);
}

static void test_pretokenizer(const GPT2Tokenizer& tok) {
    // Expected splits worked out by hand from the regex (and Unicode White_Space: U+001C..U+001F are not \s).
    struct Case { const char* text; std::vector<std::string> pieces; };
    std::vector<Case> cases = {
        {"Hello  world", {"Hello", " ", " world"}},
        {"it's 'S 'll", {"it", "'s", " '", "S", " '", "ll"}},
        {"a\x1f b", {"a", "\x1f", " b"}},
        {"x\x1c ", {"x", "\x1c", " "}},
        {"a\xc2\x85 ", {"a", "\xc2\x85 "}},  // U+0085 NEL is whitespace
        {" \n x", {" \n", " x"}},
        {"a  \nb", {"a", "  ", "\n", "b"}},
        {"abc\t\t", {"abc", "\t\t"}},
        {"x 12!!  ", {"x", " 12", "!!", "  "}},
        {"\xe4\xb8\xad\xe6\x96\x87 \xd9\xa3\xc2\xbd", {"\xe4\xb8\xad\xe6\x96\x87", " \xd9\xa3\xc2\xbd"}},  // 中文 ٣½
        {"e\xcc\x81t\xe2\x80\x8b!", {"e", "\xcc\x81", "t", "\xe2\x80\x8b!"}},  // combining acute, ZWSP are "other"
        {"a\xe3\x80\x80\xe3\x80\x80" "b", {"a", "\xe3\x80\x80", "\xe3\x80\x80", "b"}},  // U+3000 is \s
        {"", {}},
    };
    for (const Case& c : cases) {
        std::vector<std::string> got;
        tok.pretokenize(c.text, strlen(c.text), [&](size_t a, size_t b) { got.emplace_back(c.text + a, b - a); });
        std::string shown;
        for (auto& p : got) shown += "[" + p + "]";
        CHECK(got == c.pieces, "pretokenize(\"%s\") gave %s", c.text, shown.c_str());
    }
}

static void test_unicode_tables() {
    struct Fact { uint32_t cp; uint8_t cls; };
    const Fact facts[] = {
        {'A', UCLS_LETTER}, {'z', UCLS_LETTER}, {0xE9, UCLS_LETTER}, {0x4E2D, UCLS_LETTER}, {0x01C5, UCLS_LETTER},
        {0x02B0, UCLS_LETTER} /* Lm */, {0x1D518, UCLS_LETTER}, {0x105C0, UCLS_LETTER} /* Unicode 16.0 */,
        {'7', UCLS_NUMBER}, {0x0663, UCLS_NUMBER}, {0xBD, UCLS_NUMBER} /* No */, {0x2167, UCLS_NUMBER} /* Nl */,
        {0x1D7D8, UCLS_NUMBER}, {0x10D40, UCLS_NUMBER} /* Unicode 16.0 */, {0x10940, UCLS_OTHER} /* 17.0 */,
        {' ', UCLS_SPACE}, {'\t', UCLS_SPACE}, {0x0B, UCLS_SPACE}, {0x0D, UCLS_SPACE}, {0x85, UCLS_SPACE},
        {0xA0, UCLS_SPACE}, {0x1680, UCLS_SPACE}, {0x200A, UCLS_SPACE}, {0x2028, UCLS_SPACE}, {0x3000, UCLS_SPACE},
        {0x1C, UCLS_OTHER}, {0x1F, UCLS_OTHER}, {0x200B, UCLS_OTHER}, {0xFEFF, UCLS_OTHER}, {0x180E, UCLS_OTHER},
        {0x0301, UCLS_OTHER}, {'\'', UCLS_OTHER}, {0x1F600, UCLS_OTHER}, {0xE000, UCLS_OTHER}, {0x10FFFF, UCLS_OTHER},
    };
    for (const Fact& f : facts) CHECK(unicode_class(f.cp) == f.cls, "class of U+%04X is %d, expected %d", f.cp, unicode_class(f.cp), f.cls);
    // GPT-2 byte table: 'a' stays, '\n' -> U+010A 'Ċ', ' ' -> U+0120 'Ġ', 0xAD (soft hyphen) -> U+0143 'Ń'.
    CHECK(gpt2_byte_to_unicode('a') == 'a' && gpt2_byte_to_unicode(0xFF) == 0xFF, "printable bytes map to themselves");
    CHECK(gpt2_byte_to_unicode(0) == 256 && gpt2_byte_to_unicode('\n') == 0x10A && gpt2_byte_to_unicode(' ') == 0x120 &&
              gpt2_byte_to_unicode(0x7F) == 0x121 && gpt2_byte_to_unicode(0xAD) == 0x143,
          "remapped bytes");
}

static void test_utf8(const GPT2Tokenizer& tok) {
    // Python: bytes.decode("utf-8", errors="replace").
    const char* R = "\xef\xbf\xbd";
    struct Case { std::string in, out; };
    std::vector<Case> cases = {
        {"\xe4\xb8", R}, {"\xe4\xb8" "a", std::string(R) + "a"}, {"\xed\xa0\x80", std::string(R) + R + R},
        {"\xf0\x80\x80", std::string(R) + R + R}, {"\xf0\x9f\x98", R}, {"\xc0\xaf", std::string(R) + R}, {"\xff", R},
        {"\xf4\x90\x80\x80", std::string(R) + R + R + R}, {"a\x80" "b", std::string("a") + R + "b"},
        {"\xf0\x9f\x98\x80\xf0", std::string("\xf0\x9f\x98\x80") + R}, {"ok \xc3\xa9", "ok \xc3\xa9"},
    };
    for (const Case& c : cases) CHECK(utf8_replace_invalid(c.in) == c.out, "replacement of %zu-byte input", c.in.size());

    // decode_utf8 on partial multibyte tokens: the byte tokens of U+4E2D (E4 B8 AD), ids read from the vocab.
    std::vector<std::pair<std::string, int>> vocab;
    std::string v = read_file_or_die(kVocabPath), err;
    CHECK(json_parse_string_int_object(v.data(), v.size(), vocab, &err), "vocab parses: %s", err.c_str());
    auto id_of = [&](const char* key) {
        for (auto& kv : vocab) if (kv.first == key) return kv.second;
        return -1;
    };
    int e4 = id_of("\xc3\xa4"), b8 = id_of("\xc2\xb8"), ad = id_of("\xc5\x83"), a = id_of("a");  // ä ¸ Ń a
    CHECK(e4 >= 0 && b8 >= 0 && ad >= 0 && a >= 0, "byte tokens found in vocab");
    int part[] = {e4, b8}, part_a[] = {e4, b8, a}, whole[] = {e4, b8, ad};
    CHECK(tok.decode(part, 2) == "\xe4\xb8", "raw decode keeps partial bytes");
    CHECK(tok.decode_utf8(part, 2) == R, "partial char -> one U+FFFD");
    CHECK(tok.decode_utf8(part_a, 3) == std::string(R) + "a", "partial char then 'a'");
    CHECK(tok.decode_utf8(whole, 3) == "\xe4\xb8\xad", "complete char");
    std::vector<int> ids;  // a real encoding that splits characters across tokens: "你好" -> 4 tokens
    CHECK(tok.encode("\xe4\xbd\xa0\xe5\xa5\xbd", 6, ids, &err) && ids.size() == 4, "你好 encodes to %zu tokens", ids.size());
    if (ids.size() == 4) {
        CHECK(contains(tok.decode_utf8(ids.data(), 1), R), "first token of 你好 alone is a partial character");
        CHECK(tok.decode_utf8(ids.data(), 4) == "\xe4\xbd\xa0\xe5\xa5\xbd", "all four tokens decode to 你好");
    }
    int eod = tok.eod_id();
    CHECK(tok.decode(&eod, 1) == "<|endoftext|>", "EOD decodes to its literal text");
    ids.clear();
    CHECK(tok.encode("<|endoftext|>", 13, ids, &err) && ids.size() > 1, "special-token text is ordinary text");
    for (int x : ids) CHECK(x != 50256, "no EOD id produced from text");
    CHECK(tok.vocab_size() == 50257 && tok.eod_id() == 50256, "sizes");

    // Invalid UTF-8 is rejected with the offending byte offset, and nothing is appended.
    struct Bad { std::string text; const char* offset; const char* why; };
    std::vector<Bad> bad = {
        {"ab\xc0\xaf", "byte offset 2", "overlong"}, {"\xe0\x80\xaf", "byte offset 0", "overlong"},
        {"x\xed\xa0\x80", "byte offset 1", "surrogate"}, {"abc\xe4\xb8", "byte offset 3", "truncated"},
        {"\xe4\xb8" "a", "byte offset 0", "truncated"}, {"ok\xff", "byte offset 2", "0xFF"},
        {std::string("Hello world, this is long ascii\x80"), "byte offset 31", "continuation"},
        {"\xf4\x90\x80\x80", "byte offset 0", "U+10FFFF"}, {"\xf0\x9f\x98\x80\xf8", "byte offset 4", "invalid byte"},
    };
    for (const Bad& b : bad) {
        std::vector<int> out = {7};
        std::string e;
        bool ok = tok.encode(b.text.data(), b.text.size(), out, &e);
        CHECK(!ok && contains(e, b.offset) && contains(e, b.why) && out.size() == 1, "bad UTF-8 (%s): ok=%d msg '%s'", b.why, ok, e.c_str());
    }
}

static void test_json() {
    std::string out, err;
    size_t pos = 0;
    const char* s1 = "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\" tail";
    out = "X";
    CHECK(json_parse_string(s1, strlen(s1), &pos, out, &err) && out == "Xa\"b\\c/d\b\f\n\r\t" && pos == strlen(s1) - 5,
          "simple escapes, append, position (%zu)", pos);
    struct Ok { const char* lit; std::string want; };
    std::vector<Ok> oks = {
        {"\"\\u00e9\"", "\xc3\xa9"}, {"\"\\u4E2D\"", "\xe4\xb8\xad"}, {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"},
        {"\"\\u0000\"", std::string(1, '\0')}, {"\"raw \xe4\xb8\xad\"", "raw \xe4\xb8\xad"}, {"\"\"", ""},
        {"\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf"},
    };
    for (const Ok& o : oks) {
        out.clear(), pos = 0;
        CHECK(json_parse_string(o.lit, strlen(o.lit), &pos, out, &err) && out == o.want, "decode %s", o.lit);
    }
    struct Err { const char* lit; const char* msg; };
    std::vector<Err> errs = {
        {"\"ab\\ud83dx\"", "lone high surrogate \\u escape in JSON string at byte offset 3"},
        {"\"\\ude00\"", "lone low surrogate"}, {"\"\\ud83d\\u0041\"", "lone high surrogate"},
        {"\"\\x\"", "invalid escape"}, {"\"\\u12G4\"", "4 hex digits"}, {"\"abc", "unterminated JSON string starting at byte offset 0"},
        {"\"a\nb\"", "unescaped control character in JSON string at byte offset 2"}, {"abc", "expected '\"'"},
    };
    for (const Err& e : errs) {
        out.clear(), pos = 0, err.clear();
        bool ok = json_parse_string(e.lit, strlen(e.lit), &pos, out, &err);
        CHECK(!ok && contains(err, e.msg), "error for %s: got '%s'", e.lit, err.c_str());
    }

    auto field = [&](const char* line, const char* key) {
        out.clear(), err.clear();
        return json_get_string_field(line, strlen(line), key, out, &err);
    };
    const char* nested = " {\"a\": {\"text\": \"inner\", \"b\": [1, {\"c\": \"\\\"}]\"}, []]}, \"n\": -1.5e3, "
                         "\"t\": true, \"f\": false, \"z\": null, \"text\": \"outer \\u00e9\", \"url\": \"x\"}\r\n";
    CHECK(field(nested, "text") && out == "outer \xc3\xa9", "nested values skipped: '%s' %s", out.c_str(), err.c_str());
    CHECK(field(nested, "url") && out == "x", "field after the target");
    CHECK(field("{\"te\\u0078t\": \"v\"}", "text") && out == "v", "escaped key");
    CHECK(field("{\"text\": \"first\", \"text\": \"last\"}", "text") && out == "last", "duplicate keys: last wins");
    CHECK(!field("{\"txt\": \"a\"}", "text") && contains(err, "key \"text\" not found"), "missing key: %s", err.c_str());
    CHECK(!field("{\"text\": 5}", "text") && contains(err, "not a string at byte offset 9"), "non-string: %s", err.c_str());
    CHECK(!field("[\"text\"]", "text") && contains(err, "not a JSON object"), "not an object: %s", err.c_str());
    CHECK(!field("{\"text\": \"a\",}", "text") && contains(err, "byte offset 13"), "trailing comma: %s", err.c_str());
    CHECK(!field("{\"text\" \"a\"}", "text") && contains(err, "expected ':'"), "missing colon: %s", err.c_str());
    CHECK(!field("{\"text\": \"a\"} x", "text") && contains(err, "trailing characters"), "trailing data: %s", err.c_str());
    CHECK(!field("{\"a\": 01, \"text\": \"a\"}", "text"), "leading zero number rejected");
    CHECK(!field("{\"a\": [1, 2, \"text\": \"a\"}", "text"), "bad array rejected");
    CHECK(!field("{\"text\": \"a\"", "text") && contains(err, "expected ','"), "unclosed object: %s", err.c_str());
    CHECK(!field("{\"text\": \"\\ud800\"}", "text") && contains(err, "lone high surrogate"), "lone surrogate in value");
    CHECK(field("{\"o\": \"\\ud800\", \"text\": \"ok\"}", "text") && out == "ok", "lone surrogate in a skipped value is tolerated");
    std::string deep = std::string(600, '[') + std::string(600, ']');
    std::string deep_line = "{\"a\": " + deep + ", \"text\": \"\"}";
    CHECK(!field(deep_line.c_str(), "text") && contains(err, "too deeply"), "nesting bound: %s", err.c_str());

    std::vector<std::pair<std::string, int>> kv;
    const char* obj = "{\"a\": 1, \"b\\n\": -2, \"\\u0120t\": 0, \"big\": 2147483647}";
    CHECK(json_parse_string_int_object(obj, strlen(obj), kv, &err) && kv.size() == 4 && kv[1].first == "b\n" &&
              kv[1].second == -2 && kv[2].first == "\xc4\xa0t" && kv[3].second == 2147483647,
          "string->int object: %s", err.c_str());
    for (const char* badobj : {"{\"a\": 1.5}", "{\"a\": \"x\"}", "{\"a\": 2147483648}", "{\"a\": 01}", "{\"a\": 1e3}", "{\"a\": -}"}) {
        kv.clear(), err.clear();
        CHECK(!json_parse_string_int_object(badobj, strlen(badobj), kv, &err) && contains(err, "integer"), "%s rejected: %s", badobj, err.c_str());
    }
}

static void test_load_errors(const GPT2Tokenizer& tok) {
    std::string vocab = read_file_or_die(kVocabPath), merges = read_file_or_die(kMergesPath), err;
    GPT2Tokenizer t;
    auto expect = [&](const std::string& v, const std::string& m, const char* want, const char* what) {
        err.clear();
        bool ok = t.load_from_strings(v, m, "V.json", "M.txt", &err);
        CHECK(!ok && contains(err, want), "%s: got '%s'", what, err.c_str());
    };
    CHECK(t.load_from_strings(vocab, merges, "V.json", "M.txt", &err), "real files load: %s", err.c_str());
    // Drop the last vocab entry ("<|endoftext|>": 50256 is last in the file).
    size_t cut = vocab.rfind(", \"");
    expect(vocab.substr(0, cut) + "}", merges, "V.json: has 50256 entries, expected 50257", "missing vocab entry");
    expect(vocab.substr(0, vocab.size() / 2), merges, "V.json: ", "truncated vocab JSON");
    expect("{\"a\": 1}", merges, "has 1 entries", "tiny vocab");
    std::string dup = vocab;
    dup.replace(dup.find("\"!\": 0"), 6, "\"!\": 1");
    expect(dup, merges, "token id 1 appears twice", "duplicate id");
    std::vector<std::string> lines;
    for (size_t p = 0; p < merges.size();) {
        size_t e = merges.find('\n', p);
        lines.push_back(merges.substr(p, e - p));
        p = e + 1;
    }
    auto join = [&](const std::vector<std::string>& ls) {
        std::string s;
        for (auto& l : ls) s += l + "\n";
        return s;
    };
    auto with_line = [&](size_t idx, const std::string& repl) {
        std::vector<std::string> ls = lines;
        ls[idx] = repl;
        return join(ls);
    };
    expect(vocab, with_line(4, "foo"), "M.txt: line 5: expected \"<left> <right>\"", "bad merge line");
    expect(vocab, with_line(4, "a  b"), "line 5: expected", "double space");
    expect(vocab, with_line(7, "zzq\xc4\xa0 qqz"), "line 8: \"zzq", "unknown token in merge");
    expect(vocab, with_line(9, lines[1]), "line 10: duplicate merge rule", "duplicate merge");
    expect(vocab, with_line(0, "version"), "line 1: expected the \"#version\" header", "missing header");
    std::vector<std::string> fewer(lines.begin(), lines.end() - 1);
    expect(vocab, join(fewer), "M.txt: has 49999 merge rules, expected 50000", "missing merge rule");
    std::vector<std::string> more = lines;
    more.push_back(lines[1]);
    expect(vocab, join(more), "more than 50000", "extra merge rule");
    err.clear();
    CHECK(!t.try_load("dev/data/no-such-vocab.json", kMergesPath, &err) && contains(err, "cannot open 'dev/data/no-such-vocab.json'"),
          "missing file: '%s'", err.c_str());
    // The failed loads above left the first, successful load intact.
    const char* text = "Failed loads don't break a loaded tokenizer, ä¸­æ 42!";
    std::vector<int> a, b;
    CHECK(t.encode(text, strlen(text), a, &err) && tok.encode(text, strlen(text), b, &err) && a == b && a.size() > 10,
          "tokenizer still works after failed reloads");
}

static int bench(const char* path) {
    GPT2Tokenizer tok;
    tok.load(kVocabPath, kMergesPath);
    std::vector<std::string> texts;
    std::string text, err;
    for (const std::string& line : read_lines(path)) {
        if (line.empty()) continue;
        if (!json_get_string_field(line.data(), line.size(), "text", text, &err)) llmc_die("%s: %s", path, err.c_str());
        texts.push_back(text);
    }
    for (int pass = 0; pass < 2; pass++) {
        std::vector<int> out;
        size_t bytes = 0;
        auto t0 = std::chrono::steady_clock::now();
        std::clock_t c0 = std::clock();  // CPU time too: wall time is unreliable on a shared machine
        for (const std::string& t : texts) {
            if (!tok.encode(t.data(), t.size(), out, &err)) llmc_die("%s", err.c_str());
            bytes += t.size();
        }
        double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double cpu = (double)(std::clock() - c0) / CLOCKS_PER_SEC;
        printf("%s cache: %zu docs, %zu bytes, %zu tokens; wall %.3f s = %.2f M tokens/s (%.1f MB/s); cpu %.3f s = %.2f M tokens/s\n",
               pass ? "warm" : "cold", texts.size(), bytes, out.size(), sec, out.size() / sec / 1e6, bytes / sec / 1e6, cpu,
               out.size() / cpu / 1e6);
    }
    return 0;
}

int main(int argc, char** argv) {
    if (argc == 3 && strcmp(argv[1], "--bench") == 0) return bench(argv[2]);
    GPT2Tokenizer tok;
    tok.load(kVocabPath, kMergesPath);
    test_unicode_tables();
    test_pretokenizer(tok);
    test_utf8(tok);
    test_json();
    test_load_errors(tok);
    test_goldens(tok);
    return test_summary();
}
