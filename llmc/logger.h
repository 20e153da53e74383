// llmc/logger.h — the machine-readable training log: one JSON object per line (JSONL), flushed as written so
// a crashed run keeps its log. Human progress lines are printed by the trainers themselves.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include "utils.h"

// Builds one JSON object: j.num("loss", 3.2).integer("step", 7).str("kind", "train").line()
class JsonLine {
  public:
    JsonLine& num(const char* key, double v) {
        char buf[64];
        if (std::isfinite(v)) snprintf(buf, sizeof buf, "%.9g", v); else snprintf(buf, sizeof buf, "null");
        return raw(key, buf);
    }
    JsonLine& integer(const char* key, int64_t v) { return raw(key, std::to_string(v)); }
    JsonLine& str(const char* key, const std::string& v) {
        std::string q = "\"";
        for (char ch : v) {
            unsigned char c = (unsigned char)ch;
            if (c == '"' || c == '\\') { q += '\\'; q += ch; }
            else if (c < 0x20) { char e[8]; snprintf(e, sizeof e, "\\u%04x", c); q += e; }
            else q += ch;
        }
        return raw(key, q + "\"");
    }
    std::string line() const { return "{" + body_ + "}"; }

  private:
    JsonLine& raw(const char* key, const std::string& v) {
        if (!body_.empty()) body_ += ", ";
        body_ += "\"" + std::string(key) + "\": " + v;
        return *this;
    }
    std::string body_;
};

class JsonlLog {
  public:
    // An empty path disables the log. append=true continues an existing log (resume).
    void open(const std::string& path, bool append) {
        if (path.empty()) return;
        f_ = fopen_or_die(path.c_str(), append ? "a" : "w");
    }
    void write(const JsonLine& j) {
        if (!f_) return;
        fprintf(f_, "%s\n", j.line().c_str());
        fflush(f_);
    }
    ~JsonlLog() { if (f_) fclose(f_); }

  private:
    FILE* f_ = nullptr;
};

// "1h02m", "3m05s", "12s": for ETA fields of progress lines.
inline std::string format_duration(double seconds) {
    char buf[32];
    if (!(seconds >= 0) || seconds > 1e8) return "?";
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60) snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, sizeof buf, "%lds", s);
    return buf;
}

// One optimizer step as the trainers report it (human line + JSONL record share these fields).
struct StepStats {
    int64_t step = 0, total_steps = 0;
    double epoch = 0, loss = 0, lr = 0, grad_norm = 0, ms = 0, tok_per_s = 0;
    double mfu = -1;  // fraction of peak; < 0 = unknown peak (printed as n/a, never as a made-up number)
    double eta_s = 0;
};

inline void print_step(const StepStats& s) {
    char mfu[16];
    if (s.mfu >= 0) snprintf(mfu, sizeof mfu, "%.1f%%", 100 * s.mfu); else snprintf(mfu, sizeof mfu, "n/a");
    printf("step %6lld/%lld | epoch %7.3f | loss %.4f | lr %.3e | norm %7.4f | %8.1f ms | %9.0f tok/s | MFU %s | ETA %s\n",
           (long long)s.step, (long long)s.total_steps, s.epoch, s.loss, s.lr, s.grad_norm, s.ms, s.tok_per_s, mfu,
           format_duration(s.eta_s).c_str());
    fflush(stdout);
}

inline JsonLine step_json(const StepStats& s) {
    JsonLine j;
    j.str("kind", "train").integer("step", s.step).num("epoch", s.epoch).num("loss", s.loss).num("lr", s.lr)
        .num("grad_norm", s.grad_norm).num("ms", s.ms).num("tok_per_s", s.tok_per_s);
    if (s.mfu >= 0) j.num("mfu", s.mfu);
    return j;
}
