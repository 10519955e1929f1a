// SPDX-License-Identifier: MIT
// `fakequant perplexity`: output contract, KL divergence round trip, errors.
#include <fakequant/llama_cpp/logs.hpp>
#include <nlohmann/json.hpp>

#include "llama/kld_check.hpp"
#include "support.hpp"

TEST_CASE("cli perplexity: llama.cpp's output and figures on tl-mini") {
  const auto models = fq_test::require_shared("testdata/models");
  if (models.empty()) return;
  const auto text = fq_test::shared_dir() / "testdata/text/wiki.test.small.raw";
  const auto r =
      fq_test::run_program({"perplexity", "-m", (models / "tl-mini-f32.gguf").string(), "-f",
                            text.string(), "-c", "256", "-b", "256", "--chunks", "20"});
  REQUIRE(r.status == 0);
  CHECK(r.out.find("[1]537.09") != std::string::npos);
  CHECK(r.out.find("[20]563.93") != std::string::npos);
  // llama.cpp: Final estimate: PPL = 563.9357 +/- 53.90725
  CHECK(r.out.find("Final estimate: PPL = 563.93") != std::string::npos);
}

TEST_CASE("cli perplexity: llama.cpp's PPL and KLD of the fake-quantized copies (quantize, c256)") {
  // The reference's fake_quant copies of tl-mini-f32, made by `fakequant quantize` and evaluated
  // by `fakequant perplexity` against a base it writes from tl-mini-f32 in llama.cpp's format (the
  // format of llama.cpp's figures; "kld: tl-mini f32, f16, q8_0 against a base written from
  // tl-mini-f32" says why). Tolerances: those of F32 weights there, and for the running PPL after
  // each chunk twice the worst measured (5.0e-6, fp8, with the avx512, avx2 and sse2 kernels).
  const auto models = fq_test::require_shared("testdata/models");
  if (models.empty()) return;
  const auto ref_dir = fq_test::shared_dir() / "reference/tl-mini";
  const auto ref = nlohmann::json::parse(fq_test::read_bytes(ref_dir / "llama.cpp-reference.json"));
  fq_test::temp_dir dir;
  const auto f32 = (models / "tl-mini-f32.gguf").string();
  const auto base = (dir / "base.kld").string();
  REQUIRE(
      fq_test::run_program({"perplexity", "-m", f32, "-f",
                            (fq_test::shared_dir() / "testdata/text/wiki.test.small.raw").string(),
                            "-c", "256", "-b", "256", "--chunks", "20", "--kl-divergence-base",
                            base, "--kld-format", "llama"})
          .status == 0);
  const fq_test::kld_tolerance tolerance{2.1e-6, 4.2e-7, 1.8e-6, 0.098, 9.2e-4, 0};
  const double running_tolerance = 1e-5;
  const struct {
    const char* name;
    const char* tensors;
    const char* format;
  } copies[] = {{"bf16-blk0-ffn_norm", "blk.0.ffn_norm.weight", "bf16"},
                {"fp8_e4m3-all-ffn_norm", "blk.*.ffn_norm.weight", "fp8_e4m3"},
                {"fp4_e2m1-all-ffn_norm", "blk.*.ffn_norm.weight", "fp4_e2m1"}};
  for (const auto& c : copies) {
    CAPTURE(std::string(c.name));
    const auto model = (dir / (std::string(c.name) + ".gguf")).string();
    REQUIRE(
        fq_test::run_program({"quantize", f32, model, "--tensors", c.tensors, "--format", c.format})
            .status == 0);
    const auto r = fq_test::run_program(
        {"perplexity", "-m", model, "--kl-divergence-base", base, "--kl-divergence", "--json"});
    REQUIRE(r.status == 0);
    const auto j = nlohmann::json::parse(r.out);
    // Perplexity: llama-perplexity's running value after every chunk (its log), and the final.
    const auto log_text = fq_test::read_bytes(ref_dir / "llama.cpp-logs" /
                                              ("ppl-tl-mini-" + std::string(c.name) + "-c256.txt"));
    const auto expected =
        fq::llama_cpp::parse_perplexity_log(std::string_view(log_text.data(), log_text.size()))
            .running;
    const auto got = j["perplexity"]["running_ppl"].get<std::vector<double>>();
    REQUIRE(expected.size() == 20);
    REQUIRE(got.size() == 20);
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::abs(got[i] / expected[i] - 1));
    const double ppl = ref["fake_quant"][c.name]["ppl_c256_b256_chunks20"][0].get<double>();
    MESSAGE(std::string(c.name) << ": PPL " << got.back() << " (llama.cpp " << ppl
                                << "), worst chunk " << worst);
    CHECK(worst < running_tolerance);
    CHECK(std::abs(j["perplexity"]["ppl"].get<double>() / ppl - 1) < tolerance.ppl_q);
    // KL divergence against tl-mini-f32: every figure of kld_c256_chunks20.
    const auto& k = j["kl_divergence"];
    const auto count = k["count"].get<std::size_t>();
    CHECK(count == 20 * 127);
    const auto ours = fq_test::figures_of_program(k);
    const auto want = fq_test::figures_of_reference(ref["kld_c256_chunks20"][c.name]);
    const auto off = fq_test::differing(ours, want, tolerance, count);
    CHECK_MESSAGE(off.empty(), off);
    // The figures of the unmodified model (f32-self) and of every other copy fall outside.
    for (const auto& other : ref["kld_c256_chunks20"].items()) {
      if (other.key() == c.name) continue;
      const std::string name = other.key();
      CAPTURE(name);
      CHECK_FALSE(
          fq_test::differing(fq_test::figures_of_reference(other.value()), want, tolerance, count)
              .empty());
    }
  }
}

TEST_CASE("cli perplexity: a model against its own base gives KLD 0 and ratio 1 (JSON)") {
  const auto models = fq_test::require_shared("testdata/models");
  if (models.empty()) return;
  fq_test::temp_dir dir;
  const auto model = (models / "tl-mini-q8_0.gguf").string();
  const auto text = (fq_test::shared_dir() / "testdata/text/wiki.test.small.raw").string();
  const auto base = (dir / "base.kld").string();
  REQUIRE(fq_test::run_program({"perplexity", "-m", model, "-f", text, "-c", "128", "--chunks", "3",
                                "--kl-divergence-base", base})
              .status == 0);
  const auto r = fq_test::run_program(
      {"perplexity", "-m", model, "--kl-divergence-base", base, "--kl-divergence", "--json"});
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out)["kl_divergence"];
  CHECK(j["kld_mean"][0] == 0.0);
  CHECK(j["ppl_ratio"][0] == 1.0);
  CHECK(j["same_top_p"][0] == 1.0);
  CHECK(j["count"] == 3 * 63);
}

TEST_CASE("cli perplexity: bad input gives a clear error") {
  const auto models = fq_test::require_shared("testdata/models");
  if (models.empty()) return;
  fq_test::temp_dir dir;
  const auto model = (models / "tl-mini-f32.gguf").string();
  fq_test::write_bytes(dir / "short.txt", "Too short for one chunk.", 24);
  const auto shrt =
      fq_test::run_program({"perplexity", "-m", model, "-f", (dir / "short.txt").string()});
  CHECK(shrt.status == 1);
  CHECK(shrt.err.find("needs at least 1024") != std::string::npos);
  fq_test::write_bytes(dir / "empty.txt", "", 0);
  const auto empty =
      fq_test::run_program({"perplexity", "-m", model, "-f", (dir / "empty.txt").string()});
  CHECK(empty.status == 1);
  CHECK(empty.err.find("empty") != std::string::npos);
  CHECK(fq_test::run_program({"perplexity", "-m", model}).status == 2);
  CHECK(fq_test::run_program({"perplexity", "-m", model, "--kl-divergence"}).status == 2);
  CHECK(fq_test::run_program({"perplexity", "-m", model, "-f", "x", "-c", "nope"}).status == 2);
  const auto missing =
      fq_test::run_program({"perplexity", "-m", (dir / "none.gguf").string(), "-f", "x"});
  CHECK(missing.status == 1);
  CHECK(missing.err.find("none.gguf") != std::string::npos);
  fq_test::write_bytes(dir / "not.kld", "not a base file at all......", 28);
  const auto kld = fq_test::run_program({"perplexity", "-m", model, "--kl-divergence-base",
                                         (dir / "not.kld").string(), "--kl-divergence"});
  CHECK(kld.status == 1);
  CHECK(kld.err.find("not a KL-divergence base file") != std::string::npos);
}
