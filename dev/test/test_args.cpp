// The shared flag parser: values, ranges, choices, --help and one-line errors; and the JSONL log writer.
#include <vector>
#include "dev/test/test.h"
#include "llmc/args.h"
#include "llmc/logger.h"

struct Flags {
    int64_t steps = 10;
    int micro = 4;
    double lr = 2e-4;
    std::string obj = "ar", name = "run";
    bool quiet = false;
};

static void parse(Flags& f, std::vector<const char*> argv) {
    ArgParser p("prog", "test program");
    p.add_int("steps", &f.steps, "optimizer steps", 1);
    p.add_int("micro-batch", &f.micro, "sequences per micro-batch", 1, 1024);
    p.add_float("lr", &f.lr, "peak learning rate", 0, 1);
    p.add_choice("objective", &f.obj, "ar|mdm", "training objective");
    p.add_string("name", &f.name, "run name");
    p.add_flag("quiet", &f.quiet, "no progress lines");
    argv.insert(argv.begin(), "prog");
    p.parse((int)argv.size(), (char**)argv.data());
}

int main() {
    Flags f;
    parse(f, {"--steps", "25", "--micro-batch=8", "--lr", "1e-3", "--objective", "mdm", "--name", "x", "--quiet"});
    CHECK(f.steps == 25 && f.micro == 8 && f.lr == 1e-3 && f.obj == "mdm" && f.name == "x" && f.quiet, "parsed values");
    Flags d;
    parse(d, {});
    CHECK(d.steps == 10 && d.micro == 4 && d.obj == "ar" && !d.quiet, "defaults kept");
    CHECK_DIES([] { Flags g; parse(g, {"--steps", "ten"}); }, "flag --steps: expected an integer, got 'ten'");
    CHECK_DIES([] { Flags g; parse(g, {"--steps", "0"}); }, "flag --steps: 0 is outside");
    CHECK_DIES([] { Flags g; parse(g, {"--micro-batch", "4096"}); }, "--micro-batch: 4096 is outside [1, 1024]");
    CHECK_DIES([] { Flags g; parse(g, {"--lr", "nan"}); }, "flag --lr: expected a number");
    CHECK_DIES([] { Flags g; parse(g, {"--lr", "2"}); }, "flag --lr: 2 is outside");
    CHECK_DIES([] { Flags g; parse(g, {"--objective", "gan"}); }, "'gan' is not one of ar|mdm");
    CHECK_DIES([] { Flags g; parse(g, {"--objective", "ar|mdm"}); }, "is not one of");
    CHECK_DIES([] { Flags g; parse(g, {"--stepz", "3"}); }, "unknown flag --stepz");
    CHECK_DIES([] { Flags g; parse(g, {"--steps"}); }, "flag --steps needs a value");
    CHECK_DIES([] { Flags g; parse(g, {"--quiet=1"}); }, "takes no value");
    CHECK_DIES([] { Flags g; parse(g, {"positional"}); }, "unexpected argument 'positional'");
    int st;
    run_in_child([] { Flags g; freopen("/dev/null", "w", stdout); parse(g, {"--help"}); }, &st);
    CHECK(st == 0, "--help exits 0, got %d", st);

    // JSON lines: escaping and non-finite numbers.
    JsonLine j;
    j.integer("step", 3).num("loss", 2.5).num("nan", NAN).str("text", "a\"b\\c\n");
    CHECK(j.line() == "{\"step\": 3, \"loss\": 2.5, \"nan\": null, \"text\": \"a\\\"b\\\\c\\u000a\"}", "json: %s",
          j.line().c_str());
    CHECK(format_duration(3725) == "1h02m" && format_duration(65) == "1m05s" && format_duration(9) == "9s", "durations");
    return test_summary();
}
