// llmc/args.h — one flag parser for every program: `--name value` flags declared with a default, a valid range
// and a help line; `--help` lists them all with defaults; a bad or unknown flag is one error line, exit 1.
#pragma once
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include "utils.h"

// A flag that may repeat (--task A --task B), which ArgParser's one-value flags do not support: every
// "--name V" / "--name=V" value in order into values; returns the other arguments (argv[0] first) for parse().
inline std::vector<char*> take_repeated_flag(int argc, char** argv, const char* name, std::vector<std::string>& values) {
    const std::string flag = std::string("--") + name, inline_prefix = flag + "=";
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; i++) {
        if (flag == argv[i]) {
            if (i + 1 >= argc) llmc_die("flag %s needs a value", flag.c_str());
            values.push_back(argv[++i]);
        } else if (!strncmp(argv[i], inline_prefix.c_str(), inline_prefix.size())) {
            values.push_back(argv[i] + inline_prefix.size());
        } else {
            rest.push_back(argv[i]);
        }
    }
    return rest;
}

class ArgParser {
  public:
    ArgParser(const char* program, const char* description) : prog_(program), desc_(description) {}

    void add_int(const char* name, int64_t* dst, const char* help, int64_t lo = INT64_MIN, int64_t hi = INT64_MAX) {
        flags_.push_back({name, help, KIND_INT, dst, (double)lo, (double)hi, std::to_string(*dst)});
        ilo_.push_back(lo); ihi_.push_back(hi);
    }
    void add_int(const char* name, int* dst, const char* help, int lo = INT_MIN, int hi = INT_MAX) {
        flags_.push_back({name, help, KIND_INT32, dst, (double)lo, (double)hi, std::to_string(*dst)});
        ilo_.push_back(lo); ihi_.push_back(hi);
    }
    void add_float(const char* name, double* dst, const char* help, double lo = -1e300, double hi = 1e300) {
        char def[64];
        snprintf(def, sizeof def, "%g", *dst);
        flags_.push_back({name, help, KIND_FLOAT, dst, lo, hi, def});
        ilo_.push_back(0); ihi_.push_back(0);
    }
    void add_string(const char* name, std::string* dst, const char* help) {
        flags_.push_back({name, help, KIND_STRING, dst, 0, 0, dst->empty() ? "\"\"" : *dst});
        ilo_.push_back(0); ihi_.push_back(0);
    }
    // A string restricted to a set of choices, e.g. "ar|mdm".
    void add_choice(const char* name, std::string* dst, const char* choices, const char* help) {
        flags_.push_back({name, help, KIND_CHOICE, dst, 0, 0, *dst, choices});
        ilo_.push_back(0); ihi_.push_back(0);
    }
    void add_flag(const char* name, bool* dst, const char* help) {
        flags_.push_back({name, help, KIND_BOOL, dst, 0, 0, *dst ? "on" : "off"});
        ilo_.push_back(0); ihi_.push_back(0);
    }

    void parse(int argc, char** argv) {
        for (int i = 1; i < argc; i++) {
            const char* a = argv[i];
            if (!strcmp(a, "--help") || !strcmp(a, "-h")) { print_help(); exit(0); }
            if (strncmp(a, "--", 2) != 0) llmc_die("unexpected argument '%s' (see --help)", a);
            std::string name = a + 2, value;
            bool has_inline = false;
            size_t eq = name.find('=');
            if (eq != std::string::npos) { value = name.substr(eq + 1); name = name.substr(0, eq); has_inline = true; }
            size_t k = find(name);
            if (k == flags_.size()) llmc_die("unknown flag --%s (see --help)", name.c_str());
            Flag& f = flags_[k];
            if (f.kind == KIND_BOOL) {
                if (has_inline) llmc_die("flag --%s takes no value", f.name);
                *(bool*)f.dst = true;
                continue;
            }
            if (!has_inline) {
                if (i + 1 >= argc) llmc_die("flag --%s needs a value", f.name);
                value = argv[++i];
            }
            set(k, value);
        }
    }

    void print_help() const {
        printf("usage: %s [flags]\n%s\n\nflags:\n", prog_, desc_);
        for (const Flag& f : flags_) {
            std::string left = std::string("--") + f.name;
            if (f.kind != KIND_BOOL) left += f.kind == KIND_CHOICE ? std::string(" {") + f.choices + "}" : " V";
            // A help text that states its own default (one that depends on other flags) is not given a second one.
            if (strstr(f.help, "(default") || strstr(f.help, "default ")) printf("  %-28s %s\n", left.c_str(), f.help);
            else printf("  %-28s %s (default: %s)\n", left.c_str(), f.help, f.def.c_str());
        }
    }

  private:
    enum Kind { KIND_INT, KIND_INT32, KIND_FLOAT, KIND_STRING, KIND_CHOICE, KIND_BOOL };
    struct Flag {
        const char* name;
        const char* help;
        Kind kind;
        void* dst;
        double lo, hi;
        std::string def;
        const char* choices = "";
    };

    size_t find(const std::string& name) const {
        for (size_t k = 0; k < flags_.size(); k++)
            if (name == flags_[k].name) return k;
        return flags_.size();
    }

    void set(size_t k, const std::string& v) {
        Flag& f = flags_[k];
        const char* s = v.c_str();
        char* end = nullptr;
        errno = 0;
        switch (f.kind) {
            case KIND_INT:
            case KIND_INT32: {
                long long x = strtoll(s, &end, 10);
                if (v.empty() || *end || errno) llmc_die("flag --%s: expected an integer, got '%s'", f.name, s);
                if (x < ilo_[k] || x > ihi_[k])
                    llmc_die("flag --%s: %lld is outside [%lld, %lld]", f.name, x, (long long)ilo_[k], (long long)ihi_[k]);
                if (f.kind == KIND_INT) *(int64_t*)f.dst = x; else *(int*)f.dst = (int)x;
                break;
            }
            case KIND_FLOAT: {
                double x = strtod(s, &end);
                if (v.empty() || *end || errno || x != x) llmc_die("flag --%s: expected a number, got '%s'", f.name, s);
                if (x < f.lo || x > f.hi) llmc_die("flag --%s: %g is outside [%g, %g]", f.name, x, f.lo, f.hi);
                *(double*)f.dst = x;
                break;
            }
            case KIND_CHOICE: {
                std::string all = std::string("|") + f.choices + "|";
                if (v.empty() || v.find('|') != std::string::npos || all.find("|" + v + "|") == std::string::npos)
                    llmc_die("flag --%s: '%s' is not one of %s", f.name, s, f.choices);
                *(std::string*)f.dst = v;
                break;
            }
            case KIND_STRING: *(std::string*)f.dst = v; break;
            case KIND_BOOL: break;
        }
    }

    const char* prog_;
    const char* desc_;
    std::vector<Flag> flags_;
    std::vector<int64_t> ilo_, ihi_;
};
