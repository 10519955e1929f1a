// SPDX-License-Identifier: MIT
// `fakequant perplexity`: output contract, KL divergence round trip, errors.
#include <nlohmann/json.hpp>

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
