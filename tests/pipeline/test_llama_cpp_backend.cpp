// SPDX-License-Identifier: MIT
// `fakequant test1 --backend llama.cpp` end to end, with stand-in llama-completion and
// llama-perplexity shell scripts that print real llama.cpp logs from ../shared/reference (split
// into their stdout and stderr): the raw output lands in the result files, the parsed figures equal
// the reference JSON's; a missing tool and an unreadable output are clear errors.
#include <fstream>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Prints the stdout part of a reference log on stdout and its stderr part on stderr.
const char* split_log = R"(
awk 'm==1 && /^--- stderr ---$/ {exit} m==1 { if (n++) printf "\n"; printf "%s", $0 } /^--- stdout ---$/ {m=1}' "$f"
awk 'm==1 {print} /^--- stderr ---$/ {m=1}' "$f" >&2
)";

void write_script(const fs::path& p, const std::string& body) {
  std::ofstream(p) << "#!/bin/sh\n" << body;
  fs::permissions(p, fs::perms::owner_all, fs::perm_options::add);
}

// llama-completion: the greedy log of the prompt (f32 for the original, f16 for the fake).
void fake_completion(const fs::path& dir, const fs::path& logs) {
  write_script(dir / "llama-completion", "ref='" + logs.string() + R"('
model=; prompt=
while [ $# -gt 0 ]; do
  case "$1" in -m) model=$2; shift ;; -p) prompt=$2; shift ;; esac
  shift
done
case "$model" in *fake_quant*) kind=f16 ;; *) kind=f32 ;; esac
case "$prompt" in
  "Hello, can you"*) i=1 ;; "你好"*) i=2 ;; "2+2"*) i=3 ;; "讓我們"*) i=4 ;; *) i=0 ;;
esac
f="$ref/greedy-tl-mini-$kind-$i.txt"
)" + split_log);
}

// llama-perplexity: the base run's log (and an empty base file), or the KL-divergence run's log,
// which needs the base file the first run wrote.
void fake_perplexity(const fs::path& dir, const fs::path& logs) {
  write_script(dir / "llama-perplexity", "ref='" + logs.string() + R"('
kld=0; base=
while [ $# -gt 0 ]; do
  case "$1" in --kl-divergence) kld=1 ;; --kl-divergence-base) base=$2; shift ;; esac
  shift
done
if [ $kld = 1 ]; then
  [ -f "$base" ] || { echo "no base file $base" >&2; exit 1; }
  f="$ref/kld-tl-mini-bf16-blk0-ffn_norm.txt"
else
  : > "$base"
  f="$ref/kld-base-tl-mini.txt"
fi
)" + split_log);
}

std::vector<std::string> test1_args(const fs::path& model, const fs::path& text,
                                    const fs::path& work, const fs::path& tools) {
  return {"test1",        "--model",     model.string(), "--text",       text.string(),
          "--workdir",    work.string(), "--backend",    "llama.cpp",    "--llama-cpp-dir",
          tools.string(), "--ctx-size",  "256",          "--batch-size", "256",
          "--chunks",     "20"};
}

}  // namespace

TEST_CASE("test1 --backend llama.cpp: raw outputs kept, figures parsed from real logs") {
  const auto shared = fq_test::require_shared("reference/tl-mini");
  if (shared.empty()) return;
  const auto root = fq_test::shared_dir();
  fq_test::temp_dir dir;
  const auto tools = dir / "llama.cpp";
  fs::create_directories(tools / "build" / "bin");  // found where a CMake build puts it
  fake_completion(tools / "build" / "bin", shared / "llama.cpp-logs");
  fake_perplexity(tools / "build" / "bin", shared / "llama.cpp-logs");
  const auto work = dir / "work";
  const auto r =
      fq_test::run_program(test1_args(root / "testdata/models/tl-mini-f32.gguf",
                                      root / "testdata/text/wiki.test.small.raw", work, tools));
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto res = work / "results" / "layer0";
  const auto ref = nlohmann::json::parse(read(shared / "llama.cpp-reference.json"));
  const auto j = nlohmann::json::parse(read(res / "test1_summary.json"));
  // The original's PPL is its own run's final estimate; the fake's is the KLD run's Mean PPL(Q).
  CHECK(j["perplexity"]["original"][0].get<double>() ==
        ref["ppl"]["tl-mini-f32.gguf"]["c256_b256_chunks20"][0].get<double>());
  CHECK(j["perplexity"]["original"][1].get<double>() ==
        ref["ppl"]["tl-mini-f32.gguf"]["c256_b256_chunks20"][1].get<double>());
  const auto& k = ref["kld_c256_chunks20"]["bf16-blk0-ffn_norm"];
  CHECK(j["perplexity"]["fake"][0].get<double>() == k["Mean PPL(Q)"][0].get<double>());
  CHECK(j["kld"]["mean"].get<double>() == k["Mean    KLD"][0].get<double>());
  CHECK(j["kld"]["max"].get<double>() == k["Maximum KLD"][0].get<double>());
  CHECK(j["kld"]["p99"].get<double>() == k["99.0%   KLD"][0].get<double>());
  CHECK(j["kld"]["same_top_p"].get<double>() ==
        doctest::Approx(k["Same top p"][0].get<double>() / 100).epsilon(1e-12));
  CHECK(j["perplexity"]["chunks"] == 20);
  // The interval comes from the per-chunk rows of the KLD run and the base run's running values.
  const double inc = j["perplexity"]["increase"].get<double>();
  CHECK(j["perplexity"]["increase_ci95"][0].get<double>() < inc);
  CHECK(j["perplexity"]["increase_ci95"][1].get<double>() > inc);
  CHECK(j["perplexity"]["interval_method"].get<std::string>().find("running perplexities") !=
        std::string::npos);
  // Same greedy continuations (f32 vs f16 logs): full agreement; loads and inference pass.
  CHECK(j["conversation"]["agreement"].get<double>() == 1.0);
  CHECK(j["must_pass"]["loads"] == true);
  CHECK(j["must_pass"]["inference"] == true);
  CHECK(j["decision"] == "GO");
  // The raw outputs are in the result files, with the exact commands.
  const auto ppl = read(res / "perplexity_comparison.txt");
  CHECK(ppl.find("Final estimate: PPL = 563.9357 +/- 53.90725") != std::string::npos);
  CHECK(ppl.find("====== KL divergence statistics ======") != std::string::npos);
  CHECK(ppl.find("--kl-divergence-base") != std::string::npos);
  const auto conv = read(res / "conversation_tests.txt");
  CHECK(conv.find("-no-cnv") != std::string::npos);
  CHECK(conv.find("--- stderr ---") != std::string::npos);
  CHECK(conv.find("common_perf_print") != std::string::npos);
  CHECK(read(res / "run.log").find("llama-perplexity --kl-divergence") != std::string::npos);
}

TEST_CASE("test1 --backend llama.cpp: a missing tool and an unreadable output are clear errors") {
  const auto shared = fq_test::require_shared("reference/tl-mini");
  if (shared.empty()) return;
  const auto root = fq_test::shared_dir();
  const auto model = root / "testdata/models/tl-mini-f32.gguf";
  const auto text = root / "testdata/text/wiki.test.small.raw";
  fq_test::temp_dir dir;
  fs::create_directories(dir / "empty");
  auto r = fq_test::run_program(test1_args(model, text, dir / "w1", dir / "empty"));
  CHECK(r.status == 1);
  CHECK(r.err.find("llama-completion") != std::string::npos);
  CHECK(r.err.find("not found") != std::string::npos);
  CHECK(r.err.find((dir / "empty").string()) != std::string::npos);
  r = fq_test::run_program(
      {"test1", "--demo", "--workdir", (dir / "w0").string(), "--backend", "llama.cpp"});
  CHECK(r.status == 1);
  CHECK(r.err.find("--llama-cpp-dir") != std::string::npos);

  // llama-perplexity that prints something else: the error names the tool and the file that now
  // holds what it printed.
  const auto tools = dir / "tools";
  fs::create_directories(tools);
  fake_completion(tools, shared / "llama.cpp-logs");
  write_script(tools / "llama-perplexity", "echo 'this is not llama-perplexity'\n");
  r = fq_test::run_program(test1_args(model, text, dir / "w2", tools));
  CHECK(r.status == 1);
  CHECK(r.err.find((tools / "llama-perplexity").string()) != std::string::npos);
  CHECK(r.err.find("Final estimate") != std::string::npos);
  const auto file = dir / "w2" / "results" / "layer0" / "perplexity_comparison.txt";
  CHECK(r.err.find(file.string()) != std::string::npos);
  CHECK(read(file).find("this is not llama-perplexity") != std::string::npos);

  // A tool that fails: its exit status is reported.
  write_script(tools / "llama-perplexity", "echo 'out of memory' >&2\nexit 3\n");
  r = fq_test::run_program(test1_args(model, text, dir / "w3", tools));
  CHECK(r.status == 1);
  CHECK(r.err.find("exit status 3") != std::string::npos);

  // --until-confident needs the built-in evaluator.
  auto args = test1_args(model, text, dir / "w4", tools);
  args.push_back("--until-confident");
  CHECK(fq_test::run_program(args).status == 2);
}

TEST_CASE("test1 --backend llama.cpp: a fake-quantized model llama.cpp cannot load is STOP") {
  const auto shared = fq_test::require_shared("reference/tl-mini");
  if (shared.empty()) return;
  const auto root = fq_test::shared_dir();
  fq_test::temp_dir dir;
  const auto tools = dir / "tools";
  fs::create_directories(tools);
  fake_completion(tools, shared / "llama.cpp-logs");
  fake_perplexity(tools, shared / "llama.cpp-logs");
  // A llama-completion that refuses the fake-quantized model as llama.cpp does a broken file.
  fs::rename(tools / "llama-completion", tools / "real-completion");
  write_script(tools / "llama-completion",
               "case \"$*\" in *fake_quant*)\n"
               "  echo 'llama_model_load: error loading model: x' >&2\n"
               "  exit 1 ;;\nesac\nexec \"$(dirname \"$0\")/real-completion\" \"$@\"\n");
  const auto r = fq_test::run_program(test1_args(root / "testdata/models/tl-mini-f32.gguf",
                                                 root / "testdata/text/wiki.test.small.raw",
                                                 dir / "w", tools));
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto j =
      nlohmann::json::parse(read(dir / "w" / "results" / "layer0" / "test1_summary.json"));
  CHECK(j["must_pass"]["loads"] == false);
  CHECK(j["decision"] == "STOP");
  CHECK(j["stopped_early"].get<std::string>().find("does not load") != std::string::npos);
  CHECK_FALSE(j.contains("perplexity"));
  CHECK(read(dir / "w" / "results" / "layer0" / "conversation_tests.txt")
            .find("error loading model") != std::string::npos);
}
