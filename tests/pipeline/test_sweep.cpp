// SPDX-License-Identifier: MIT
// `fakequant sweep`: several experiments against one evaluation of the original; each
// experiment's files, the comparison table, JSON and chart; perplexities equal
// `fakequant perplexity`; bad experiment files are clear errors.
#include <fstream>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("sweep --demo: three experiments, one evaluation of the original, table and chart") {
  fq_test::temp_dir dir;
  const auto r = fq_test::run_program({"sweep", "--demo", "--workdir", dir.path().string()});
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto out = dir / "results" / "sweep";
  for (const char* f : {"sweep.md", "sweep.json", "sweep.svg", "run.log"})
    CHECK(fs::exists(out / f));
  const auto j = nlohmann::json::parse(read(out / "sweep.json"));
  REQUIRE(j["experiments"].size() == 3);
  std::vector<double> originals;
  for (const auto& e : j["experiments"]) {
    const auto name = e["name"].get<std::string>();
    CAPTURE(name);
    const auto res = dir / "results" / name;
    for (const char* f :
         {"numerical_analysis.json", "test1_summary.md", "test1_summary.json", "run.log"})
      CHECK(fs::exists(res / f));
    CHECK(fs::exists(dir / "data" / ("fake_quant_" + name + ".gguf")));
    // The table carries each experiment's own summary.
    const auto own = nlohmann::json::parse(read(res / "test1_summary.json"));
    CHECK(own["decision"] == e["decision"]);
    if (e.contains("perplexity")) {
      CHECK(fs::exists(res / "perplexity_comparison.txt"));
      CHECK(fs::exists(res / "conversation_tests.txt"));
      originals.push_back(e["perplexity"]["original"][0].get<double>());
    } else {
      CHECK(e["decision"] == "STOP");
    }
    CHECK(r.out.find("| " + name + " |") != std::string::npos);
    CHECK(count(read(out / "sweep.svg"), ">" + name + "<") == 1);
  }
  // The original was evaluated once: one perplexity step in the sweep's log, the same PPL for all.
  REQUIRE(originals.size() >= 2);
  for (double v : originals) CHECK(v == originals.front());
  const auto log = read(out / "run.log");
  CHECK(count(log, "perplexity and KL divergence: the original once") == 1);
  CHECK(count(log, "the original: loading") == 1);
  // The layer-0 BF16 experiment is test 1 itself: GO.
  CHECK(j["experiments"][0]["decision"] == "GO");
}

TEST_CASE("sweep --until-confident: each experiment stops on its own") {
  fq_test::temp_dir dir;
  const auto r = fq_test::run_program({"sweep", "--demo", "--workdir", dir.path().string(),
                                       "--until-confident", "--no-early-stop"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(read(dir / "results" / "sweep" / "sweep.json"));
  std::size_t evaluated = 0;
  for (const auto& e : j["experiments"]) {
    if (!e.contains("perplexity")) continue;
    ++evaluated;
    CHECK(e["perplexity"]["until_confident"] == true);
    CHECK(e["perplexity"]["chunks"].get<std::size_t>() >= 4);
  }
  CHECK(evaluated == 3);  // --no-early-stop: every experiment is evaluated
}

TEST_CASE("sweep on tl-mini from an experiments file: perplexities equal fakequant perplexity") {
  const auto models = fq_test::require_shared("testdata/models");
  if (models.empty()) return;
  fq_test::temp_dir dir;
  const auto text = (fq_test::shared_dir() / "testdata/text/wiki.test.small.raw").string();
  std::ofstream(dir / "exp.json") << R"([
    {"name": "layer0", "tensors": ["blk.0.ffn_norm.weight"], "format": "bf16"},
    {"name": "ffn_norm-fp4", "tensors": ["blk.*.ffn_norm.weight"], "format": "fp4_e2m1",
     "rounding": "nearest-even", "store": "same", "scale": "none"}
  ])";
  const auto work = dir / "w";
  const auto r = fq_test::run_program({"sweep", "--model", (models / "tl-mini-f32.gguf").string(),
                                       "--text", text, "--experiments", (dir / "exp.json").string(),
                                       "--workdir", work.string(), "--ctx-size", "128",
                                       "--batch-size", "128", "--chunks", "3", "--no-early-stop"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  for (const char* name : {"layer0", "ffn_norm-fp4"}) {
    CAPTURE(std::string(name));
    const auto cmp = read(work / "results" / name / "perplexity_comparison.txt");
    for (const auto& [model, label] :
         {std::pair{std::string("original_model.gguf"), "original:"},
          std::pair{std::string("fake_quant_") + name + ".gguf", "fake-quantized:"}}) {
      const auto p = fq_test::run_program({"perplexity", "-m", (work / "data" / model).string(),
                                           "-f", text, "-c", "128", "-b", "128", "--chunks", "3"});
      REQUIRE(p.status == 0);
      const auto at = p.out.find("Final estimate: PPL = ");
      REQUIRE(at != std::string::npos);
      const auto ppl = p.out.substr(at + 22, p.out.find(' ', at + 22) - at - 22);
      const auto line = cmp.find(label);
      REQUIRE(line != std::string::npos);
      CHECK(cmp.substr(line, cmp.find('\n', line) - line).find("PPL = " + ppl) !=
            std::string::npos);
    }
  }
  // FP4 on every ffn_norm changes the output distribution far more than BF16 on one.
  const auto j = nlohmann::json::parse(read(work / "results" / "sweep" / "sweep.json"));
  CHECK(j["experiments"][1]["kld"]["mean"].get<double>() >
        100 * j["experiments"][0]["kld"]["mean"].get<double>());
}

TEST_CASE("sweep: bad experiment files are clear errors naming the file") {
  fq_test::temp_dir dir;
  auto run = [&](const std::string& json) {
    std::ofstream(dir / "e.json") << json;
    return fq_test::run_program({"sweep", "--demo", "--workdir", (dir / "w").string(),
                                 "--experiments", (dir / "e.json").string()});
  };
  const auto file = (dir / "e.json").string();
  struct bad_case {
    const char* json;
    const char* says;
  };
  for (const auto& c : {
           bad_case{"{", "not valid JSON"},
           bad_case{"[]", "non-empty JSON list"},
           bad_case{R"([{"name":"a","tensors":["x"],"format":"bf16","colour":"red"}])",
                    "unknown key \"colour\""},
           bad_case{R"([{"name":"a","format":"bf16"}])", "\"tensors\" is missing"},
           bad_case{R"([{"name":"a","tensors":[],"format":"bf16"}])", "non-empty list"},
           bad_case{R"([{"name":"a/b","tensors":["x"],"format":"bf16"}])", "name 'a/b'"},
           bad_case{R"([{"name":"a","tensors":["x"],"format":"bf16"},
                        {"name":"a","tensors":["y"],"format":"bf16"}])",
                    "used twice"},
           bad_case{R"([{"name":"a","tensors":["x"],"format":"bf16","rounding":"up"}])",
                    "rounding 'up'"},
           bad_case{R"([{"name":"a","tensors":["x"],"format":"bf16","scale":"sideways"}])",
                    "scale"},
       }) {
    CAPTURE(std::string(c.json));
    const auto r = run(c.json);
    CHECK(r.status == 1);
    CHECK(r.err.find(file) != std::string::npos);
    CHECK(r.err.find(c.says) != std::string::npos);
  }
  // A pattern that matches no tensor: the closest names are suggested (fakequant quantize's error).
  const auto r = run(R"([{"name":"a","tensors":["blk.0.ffn_nrom.weight"],"format":"bf16"}])");
  CHECK(r.status == 1);
  CHECK(r.err.find("blk.0.ffn_norm.weight") != std::string::npos);
}

TEST_CASE("sweep: an experiment's scale is passed on to quantize") {
  fq_test::temp_dir dir;
  std::ofstream(dir / "e.json") << R"([{"name": "mx", "tensors": ["blk.0.ffn_norm.weight"],
                                        "format": "fp8_e4m3", "scale": "tensor"}])";
  const auto work = dir / "w";
  const auto r = fq_test::run_program(
      {"sweep", "--demo", "--workdir", work.string(), "--experiments", (dir / "e.json").string()});
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(read(work / "results" / "mx" / "test1_summary.json"));
  CHECK(j["must_pass"]["format_correct"] == true);  // verified with the same scaling
  // The same file as fakequant quantize --scale tensor writes (amax / 448 is no power of two, so
  // the unscaled rounding differs).
  const auto q = fq_test::run_program(
      {"quantize", (work / "data" / "original_model.gguf").string(), (dir / "q.gguf").string(),
       "--tensors", "blk.0.ffn_norm.weight", "--format", "fp8_e4m3", "--scale", "tensor"});
  REQUIRE(q.status == 0);
  CHECK(fq_test::read_bytes(dir / "q.gguf") ==
        fq_test::read_bytes(work / "data" / "fake_quant_mx.gguf"));
  const auto plain = fq_test::run_program(
      {"quantize", (work / "data" / "original_model.gguf").string(), (dir / "p.gguf").string(),
       "--tensors", "blk.0.ffn_norm.weight", "--format", "fp8_e4m3"});
  REQUIRE(plain.status == 0);
  CHECK(fq_test::read_bytes(dir / "p.gguf") !=
        fq_test::read_bytes(work / "data" / "fake_quant_mx.gguf"));
}
