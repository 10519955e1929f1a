// SPDX-License-Identifier: MIT
// `fakequant test1`: the plan's files, figures equal to `fakequant perplexity`, backup reuse,
// errors.
#include <fakequant/gguf.hpp>
#include <fakequant/sha256.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "support.hpp"

namespace fs = std::filesystem;

namespace {
const char* files[] = {"numerical_analysis.json",   "conversation_tests.txt",
                       "perplexity_comparison.txt", "test1_summary.md",
                       "test1_summary.json",        "run.log"};

std::string read(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("test1 --demo: every file of the plan, and a decision") {
  fq_test::temp_dir dir;
  const auto r = fq_test::run_program({"test1", "--demo", "--workdir", dir.path().string()});
  REQUIRE(r.status == 0);
  for (const char* f : files) CHECK(fs::exists(dir / "results" / "layer0" / f));
  CHECK(fs::exists(dir / "data" / "original_model.gguf"));
  CHECK(fs::exists(dir / "data" / "fake_quant_layer0.gguf"));
  const auto j = nlohmann::json::parse(read(dir / "results" / "layer0" / "test1_summary.json"));
  CHECK(j["decision"] == "GO");
  CHECK(j["must_pass"]["format_correct"] == true);
  CHECK(r.out.find("**Decision: GO**") != std::string::npos);
}

TEST_CASE("test1: perplexities equal fakequant perplexity's - the second run reuses the backup") {
  const auto models = fq_test::require_shared("testdata/models");
  if (models.empty()) return;
  fq_test::temp_dir dir;
  const auto text = (fq_test::shared_dir() / "testdata/text/wiki.test.small.raw").string();
  for (const char* name : {"tl-mini-f32.gguf", "kq-q4_k_m.gguf"}) {
    CAPTURE(std::string(name));
    const auto work = (dir / name).string();
    const std::vector<std::string> args{
        "test1",      "--model", (models / name).string(), "--text", text,       "--workdir", work,
        "--ctx-size", "128",     "--batch-size",           "128",    "--chunks", "3"};
    const auto r = fq_test::run_program(args);
    REQUIRE(r.status == 0);
    for (const char* f : files) CHECK(fs::exists(fs::path(work) / "results" / "layer0" / f));
    const auto cmp = read(fs::path(work) / "results" / "layer0" / "perplexity_comparison.txt");
    for (const auto& [model, label] : {std::pair{"original_model.gguf", "original:"},
                                       std::pair{"fake_quant_layer0.gguf", "fake-quantized:"}}) {
      const auto p =
          fq_test::run_program({"perplexity", "-m", (fs::path(work) / "data" / model).string(),
                                "-f", text, "-c", "128", "-b", "128", "--chunks", "3"});
      REQUIRE(p.status == 0);
      const auto at = p.out.find("Final estimate: PPL = ");
      REQUIRE(at != std::string::npos);
      const auto ppl = p.out.substr(at + 22, p.out.find(' ', at + 22) - at - 22);
      CHECK(cmp.find(std::string(label)) != std::string::npos);
      CHECK(cmp.find("PPL = " + ppl) != std::string::npos);
    }
    REQUIRE(fq_test::run_program(args).status == 0);
    CHECK(read(fs::path(work) / "results" / "layer0" / "run.log")
              .find("reused the verified backup") != std::string::npos);
    // The original's SHA-256 beside the backup, as sha256sum writes it, and in the summary.
    fq::sha256 h;
    const auto m = fq::gguf::mapped_file::open((models / name).string());
    h.update(m.bytes());
    const std::string digest = h.hex();
    CHECK(read(fs::path(work) / "data" / "original_model.gguf.sha256") ==
          digest + "  original_model.gguf\n");
    const auto j =
        nlohmann::json::parse(read(fs::path(work) / "results" / "layer0" / "test1_summary.json"));
    CHECK(j["environment"]["original_sha256"] == digest);
  }
}

TEST_CASE("test1: a text too short for one chunk fails with a clear message") {
  fq_test::temp_dir dir;
  fq_test::write_bytes(dir / "short.txt", "Too short.", 10);
  const auto r = fq_test::run_program({"test1", "--demo", "--workdir", (dir / "w").string(),
                                       "--text", (dir / "short.txt").string()});
  CHECK(r.status == 1);
  CHECK(r.err.find("needs at least 256") != std::string::npos);
}

TEST_CASE("test1 --lang zh-TW: the report in Traditional Chinese, the JSON unchanged") {
  fq_test::temp_dir dir;
  const auto r = fq_test::run_program(
      {"test1", "--demo", "--workdir", dir.path().string(), "--lang", "zh-TW"});
  REQUIRE(r.status == 0);
  const auto md = read(dir / "results" / "layer0" / "test1_summary.md");
  CHECK(md.find("# 測試一") != std::string::npos);
  CHECK(md.find("**決策：GO") != std::string::npos);
  CHECK(md.find("困惑度") != std::string::npos);
  CHECK(md.find("Decision") == std::string::npos);
  // Scripts read the JSON: its keys and values stay English whatever the report language.
  const auto j = nlohmann::json::parse(read(dir / "results" / "layer0" / "test1_summary.json"));
  CHECK(j["decision"] == "GO");
  const auto bad =
      fq_test::run_program({"test1", "--demo", "--workdir", (dir / "x").string(), "--lang", "fr"});
  CHECK(bad.status == 2);
}

TEST_CASE(
    "test1: the original's SHA-256 is taken from the record only while neither file changed") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  const auto text = fq_test::require_shared("testdata/text/wiki.test.small.raw");
  if (model.empty() || text.empty()) return;
  fq_test::temp_dir dir;
  const auto original = dir / "model.gguf";
  fs::copy_file(model, original);
  const auto work = dir / "w";
  const std::vector<std::string> args{"test1",       "--model",      original.string(),
                                      "--text",      text.string(),  "--workdir",
                                      work.string(), "--stop-after", "numerical"};
  const auto log = work / "results" / "layer0" / "run.log";
  const auto record = work / "data" / "original_model.gguf.sha256";
  // run.log is appended to by every run: count the runs that used the record.
  const auto from_record = [&] {
    const std::string l = read(log), w = "recorded by an earlier run";
    std::size_t n = 0;
    for (auto at = l.find(w); at != std::string::npos; at = l.find(w, at + 1)) ++n;
    return n;
  };
  REQUIRE(fq_test::run_program(args).status == 0);
  const std::string first = read(record);
  CHECK(from_record() == 0);
  REQUIRE(fq_test::run_program(args).status == 0);
  CHECK(from_record() == 1);
  CHECK(read(record) == first);
  // Touching the original (same bytes) changes its status-change time: hashed again.
  fs::last_write_time(original, fs::file_time_type::clock::now());
  REQUIRE(fq_test::run_program(args).status == 0);
  CHECK(from_record() == 1);
  CHECK(read(record) == first);
  // A record that is not a digest is not used.
  fq_test::write_bytes(record, "not a digest\n", 13);
  REQUIRE(fq_test::run_program(args).status == 0);
  CHECK(from_record() == 1);
  CHECK(read(record) == first);
}
