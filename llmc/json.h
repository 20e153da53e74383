// llmc/json.h — the little JSON the data tools need: exact string decoding, one string field of a JSONL
// object, and a flat {"string": int} object (gpt2-vocab.json). Strict RFC 8259 syntax (no NaN, no comments,
// no raw control characters inside strings); bytes >= 0x80 are copied through unchanged (UTF-8 is checked
// later by whoever consumes the text, e.g. the tokenizer). Every error names the problem and the byte offset.
// Speed matters (450 MB of C4 JSONL): unescaped spans are appended in bulk, keys are compared in place.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

inline bool json_fail_(std::string* err, size_t pos, const char* what) {
    if (err) {
        char buf[64];
        snprintf(buf, sizeof buf, " at byte offset %zu", pos);
        *err = std::string(what) + buf;
    }
    return false;
}

inline int json_hex4_(const char* s, size_t n, size_t p) {  // value of 4 hex digits at s[p], -1 if not
    if (p + 4 > n) return -1;
    int v = 0;
    for (size_t i = p; i < p + 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

inline void json_put_utf8_(std::string& out, uint32_t cp) {
    char b[4];
    int k;
    if (cp < 0x80) { b[0] = (char)cp; k = 1; }
    else if (cp < 0x800) { b[0] = (char)(0xC0 | cp >> 6); b[1] = (char)(0x80 | (cp & 63)); k = 2; }
    else if (cp < 0x10000) { b[0] = (char)(0xE0 | cp >> 12); b[1] = (char)(0x80 | (cp >> 6 & 63)); b[2] = (char)(0x80 | (cp & 63)); k = 3; }
    else { b[0] = (char)(0xF0 | cp >> 18); b[1] = (char)(0x80 | (cp >> 12 & 63)); b[2] = (char)(0x80 | (cp >> 6 & 63)); b[3] = (char)(0x80 | (cp & 63)); k = 4; }
    out.append(b, k);
}

// Parses the JSON string literal at s[*pos] (which must be '"'), appends its decoded bytes to out and moves
// *pos past the closing quote. \uXXXX escapes become UTF-8; a surrogate pair becomes one 4-byte character and
// a lone surrogate is an error (it has no UTF-8 form). If out is nullptr the string is only validated/skipped.
// *had_escape (optional) tells whether any escape occurred, i.e. whether the raw bytes differ from the value.
inline bool json_scan_string_(const char* s, size_t n, size_t* pos, std::string* out, std::string* err,
                              bool check_surrogates, bool* had_escape) {
    size_t p = *pos;
    if (p >= n || s[p] != '"') return json_fail_(err, p, "expected '\"' (start of a JSON string)");
    size_t start = p;
    p++;
    size_t run = p;  // start of the pending unescaped span
    bool esc = false;
    for (;;) {
        // Fast scan over ordinary bytes; only '"', '\\' and control characters need attention.
        while (p < n) {
            unsigned char c = (unsigned char)s[p];
            if (c == '"' || c == '\\' || c < 0x20) break;
            p++;
        }
        if (p >= n) return json_fail_(err, start, "unterminated JSON string starting");
        unsigned char c = (unsigned char)s[p];
        if (c < 0x20) return json_fail_(err, p, "unescaped control character in JSON string");
        if (out) out->append(s + run, p - run);
        if (c == '"') break;
        esc = true;
        if (p + 1 >= n) return json_fail_(err, start, "unterminated JSON string starting");
        char e = s[p + 1];
        const char* simple = nullptr;
        switch (e) {
            case '"': simple = "\""; break;
            case '\\': simple = "\\"; break;
            case '/': simple = "/"; break;
            case 'b': simple = "\b"; break;
            case 'f': simple = "\f"; break;
            case 'n': simple = "\n"; break;
            case 'r': simple = "\r"; break;
            case 't': simple = "\t"; break;
            case 'u': break;
            default: return json_fail_(err, p, "invalid escape in JSON string");
        }
        if (simple) {
            if (out) out->push_back(*simple);
            p += 2;
        } else {
            int u = json_hex4_(s, n, p + 2);
            if (u < 0) return json_fail_(err, p, "invalid \\u escape (need 4 hex digits) in JSON string");
            uint32_t cp = (uint32_t)u;
            size_t esc_at = p;
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {  // high surrogate: must be followed by \u low surrogate
                int lo = (p + 1 < n && s[p] == '\\' && s[p + 1] == 'u') ? json_hex4_(s, n, p + 2) : -1;
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                    p += 6;
                } else if (check_surrogates) {
                    return json_fail_(err, esc_at, "lone high surrogate \\u escape in JSON string");
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF && check_surrogates) {
                return json_fail_(err, esc_at, "lone low surrogate \\u escape in JSON string");
            }
            if (out) json_put_utf8_(*out, cp);
        }
        run = p;
    }
    *pos = p + 1;
    if (had_escape) *had_escape = esc;
    return true;
}

inline bool json_parse_string(const char* s, size_t n, size_t* pos, std::string& out, std::string* err) {
    return json_scan_string_(s, n, pos, &out, err, true, nullptr);
}

inline void json_skip_ws_(const char* s, size_t n, size_t* pos) {
    size_t p = *pos;
    while (p < n && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) p++;
    *pos = p;
}

inline bool json_skip_number_(const char* s, size_t n, size_t* pos, std::string* err) {
    size_t p = *pos, start = p;
    auto digit = [&](size_t i) { return i < n && s[i] >= '0' && s[i] <= '9'; };
    if (p < n && s[p] == '-') p++;
    if (!digit(p)) return json_fail_(err, start, "invalid JSON number");
    if (s[p] == '0') p++;
    else while (digit(p)) p++;
    if (p < n && s[p] == '.') {
        p++;
        if (!digit(p)) return json_fail_(err, start, "invalid JSON number");
        while (digit(p)) p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-')) p++;
        if (!digit(p)) return json_fail_(err, start, "invalid JSON number");
        while (digit(p)) p++;
    }
    *pos = p;
    return true;
}

// Skips any JSON value (validating its syntax); depth bounds the nesting so hostile input cannot overflow
// the stack.
inline bool json_skip_value_(const char* s, size_t n, size_t* pos, std::string* err, int depth = 0) {
    if (depth > 512) return json_fail_(err, *pos, "JSON nested too deeply");
    json_skip_ws_(s, n, pos);
    size_t p = *pos;
    if (p >= n) return json_fail_(err, p, "unexpected end of JSON (expected a value)");
    char c = s[p];
    if (c == '"') return json_scan_string_(s, n, pos, nullptr, err, false, nullptr);
    if (c == '-' || (c >= '0' && c <= '9')) return json_skip_number_(s, n, pos, err);
    for (const char* lit : {"true", "false", "null"}) {
        size_t k = strlen(lit);
        if (n - p >= k && memcmp(s + p, lit, k) == 0) {
            *pos = p + k;
            return true;
        }
    }
    if (c != '{' && c != '[') return json_fail_(err, p, "unexpected character in JSON (expected a value)");
    char close = c == '{' ? '}' : ']';
    p++;
    json_skip_ws_(s, n, &p);
    if (p < n && s[p] == close) {
        *pos = p + 1;
        return true;
    }
    for (;;) {
        if (c == '{') {
            json_skip_ws_(s, n, &p);
            if (!json_scan_string_(s, n, &p, nullptr, err, false, nullptr)) return false;
            json_skip_ws_(s, n, &p);
            if (p >= n || s[p] != ':') return json_fail_(err, p, "expected ':' after key in JSON object");
            p++;
        }
        if (!json_skip_value_(s, n, &p, err, depth + 1)) return false;
        json_skip_ws_(s, n, &p);
        if (p < n && s[p] == ',') { p++; continue; }
        if (p < n && s[p] == close) break;
        return json_fail_(err, p, c == '{' ? "expected ',' or '}' in JSON object" : "expected ',' or ']' in JSON array");
    }
    *pos = p + 1;
    return true;
}

// Walks the top-level members of the JSON object that is the whole of s[0, n) (surrounding whitespace
// allowed). For each member calls on_member(key_start, key_end, key_had_escape, value_pos) with *value_pos at
// the value; on_member must leave *value_pos just past the value, or return false (error already set).
template <class F>
inline bool json_walk_object_(const char* s, size_t n, std::string* err, F on_member) {
    size_t p = 0;
    json_skip_ws_(s, n, &p);
    if (p >= n || s[p] != '{') return json_fail_(err, p, "not a JSON object (expected '{')");
    p++;
    json_skip_ws_(s, n, &p);
    if (p < n && s[p] == '}') {
        p++;
    } else {
        for (;;) {
            json_skip_ws_(s, n, &p);
            size_t key_start = p;
            bool key_esc = false;
            if (!json_scan_string_(s, n, &p, nullptr, err, false, &key_esc)) return false;
            size_t key_end = p;
            json_skip_ws_(s, n, &p);
            if (p >= n || s[p] != ':') return json_fail_(err, p, "expected ':' after key in JSON object");
            p++;
            json_skip_ws_(s, n, &p);
            if (!on_member(key_start, key_end, key_esc, &p)) return false;
            json_skip_ws_(s, n, &p);
            if (p < n && s[p] == ',') { p++; continue; }
            if (p < n && s[p] == '}') { p++; break; }
            return json_fail_(err, p, "expected ',' or '}' in JSON object");
        }
    }
    json_skip_ws_(s, n, &p);
    if (p != n) return json_fail_(err, p, "trailing characters after JSON object");
    return true;
}

// True if the JSON string literal s[a, b) (quotes included) decodes to key. Keys without escapes are compared
// in place; the rare escaped key is decoded first.
inline bool json_key_equals_(const char* s, size_t a, size_t b, bool had_escape, const char* key, size_t klen) {
    if (!had_escape) return b - a - 2 == klen && memcmp(s + a + 1, key, klen) == 0;
    std::string k;
    size_t p = a;
    return json_scan_string_(s, b, &p, &k, nullptr, false, nullptr) && k.size() == klen && memcmp(k.data(), key, klen) == 0;
}

// Decodes the string value of top-level `key` of the JSON object in line[0, n) into out (overwritten).
// The whole line is validated. Duplicate keys: the last one wins, like Python's json.loads.
inline bool json_get_string_field(const char* line, size_t n, const char* key, std::string& out, std::string* err) {
    size_t klen = strlen(key), found = (size_t)-1;
    bool ok = json_walk_object_(line, n, err, [&](size_t ka, size_t kb, bool kesc, size_t* vp) {
        if (json_key_equals_(line, ka, kb, kesc, key, klen)) found = *vp;
        return json_skip_value_(line, n, vp, err);
    });
    if (!ok) return false;
    if (found == (size_t)-1) {
        if (err) *err = std::string("key \"") + key + "\" not found in JSON object";
        return false;
    }
    if (line[found] != '"') return json_fail_(err, found, (std::string("value of key \"") + key + "\" is not a string").c_str());
    out.clear();
    return json_parse_string(line, n, &found, out, err);
}

// Parses a JSON object whose values are all integers (e.g. gpt2-vocab.json: token -> id) into (key, value)
// pairs in file order. Values must be integers representable as int (no fraction or exponent).
inline bool json_parse_string_int_object(const char* s, size_t n, std::vector<std::pair<std::string, int>>& out,
                                         std::string* err) {
    std::string key;
    return json_walk_object_(s, n, err, [&](size_t ka, size_t, bool, size_t* vp) {
        key.clear();
        size_t kp = ka;
        if (!json_parse_string(s, n, &kp, key, err)) return false;
        size_t p = *vp, start = p;
        bool neg = p < n && s[p] == '-';
        if (neg) p++;
        long long v = 0;
        size_t digits_at = p;
        while (p < n && s[p] >= '0' && s[p] <= '9' && v <= 2147483648LL) v = v * 10 + (s[p++] - '0');
        bool is_int = p > digits_at && !(s[digits_at] == '0' && p - digits_at > 1) && v <= (neg ? 2147483648LL : 2147483647LL);
        if (!is_int || (p < n && (s[p] == '.' || s[p] == 'e' || s[p] == 'E' || (s[p] >= '0' && s[p] <= '9'))))
            return json_fail_(err, start, "expected an integer value (within int range) in JSON object");
        out.emplace_back(key, (int)(neg ? -v : v));
        *vp = p;
        return true;
    });
}
