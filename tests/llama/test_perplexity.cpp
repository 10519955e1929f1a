// SPDX-License-Identifier: MIT
// The evaluator against llama.cpp: perplexity of the shared models on llama.cpp's own token ids
// (so this checks the model and forward pass alone; the tokenizer has its own tests).
#include <fakequant/gguf.hpp>
#include <fakequant/llama/dispatch.hpp>
#include <fakequant/llama/perplexity.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace {

double run_ppl(const std::filesystem::path& model, const std::vector<std::int32_t>& ids,
               std::size_t ctx, std::size_t batch, std::size_t chunks,
               fq::llama::activations act = fq::llama::activations::ggml) {
  const auto f = fq::gguf::file::open(model.string());
  const auto m = fq::llama::model::load(f);
  fq::llama::perplexity_options o;
  o.n_ctx = ctx;
  o.n_batch = batch;
  o.max_chunks = chunks;
  o.eval.activations = act;
  o.eval.kernels = fq::llama::best_kernels();
  return fq::llama::perplexity(m, ids, o).ppl;
}

}  // namespace

TEST_CASE("llama perplexity: tl-mini f32, f16, q8_0 within 0.1 % of llama.cpp") {
  const auto ref_dir = fq_test::require_shared("reference/tl-mini");
  if (ref_dir.empty()) return;
  const auto models = fq_test::shared_dir() / "testdata/models";
  const auto ids = fq_test::read_token_ids(ref_dir / "tokens-wiki.test.small.raw.txt");
  REQUIRE(ids.size() == 49215);
  std::ifstream in(ref_dir / "llama.cpp-reference.json");
  const auto ref = nlohmann::json::parse(in)["ppl"];
  struct setting {
    const char* key;
    std::size_t ctx, batch, chunks;
  };
  for (const auto* name : {"tl-mini-f32.gguf", "tl-mini-f16.gguf", "tl-mini-q8_0.gguf"}) {
    for (const setting s :
         {setting{"c256_b256_chunks20", 256, 256, 20}, setting{"c512_b8_chunks10", 512, 8, 10}}) {
      CAPTURE(name);
      CAPTURE(s.key);
      const double expected = ref[name][s.key][0].get<double>();
      const double got = run_ppl(models / name, ids, s.ctx, s.batch, s.chunks);
      MESSAGE(std::string(name) << " " << std::string(s.key) << ": " << got << " (llama.cpp "
                                << expected << ")");
      CHECK(std::abs(got / expected - 1.0) < 1e-3);
    }
  }
}

TEST_CASE("llama perplexity: kq block-quantized models within 0.1 % of llama.cpp") {
  const auto ref_dir = fq_test::require_shared("reference/kq");
  if (ref_dir.empty()) return;
  const auto models = fq_test::shared_dir() / "testdata/models";
  // The kq models are evaluated on the same text; llama.cpp's ids come from the same vocabulary.
  const auto ids = fq_test::read_token_ids(fq_test::shared_dir() /
                                           "reference/tl-mini/tokens-wiki.test.small.raw.txt");
  std::ifstream in(ref_dir / "kq-reference.json");
  const auto ref = nlohmann::json::parse(in)["models"];
  // Random weights make this perplexity (2.6e5) extremely sensitive: with block-quantized weights
  // the activations are quantized too, and a last-bit difference in a dot product flips roundings
  // in the next layer. The products therefore follow ggml's integer block sums and its order of
  // float operations (quant_dot.hpp); without that, float summation order alone moved the result
  // by up to 0.2 %.
  for (const auto* name :
       {"kq-f16.gguf", "kq-q4_0.gguf", "kq-q4_k_m.gguf", "kq-q5_k_m.gguf", "kq-q6_k.gguf"}) {
    CAPTURE(std::string(name));
    const double expected = ref[name]["ppl_c256_b256_chunks10"][0].get<double>();
    const double got = run_ppl(models / name, ids, 256, 256, 10);
    MESSAGE(std::string(name) << ": " << got << " (llama.cpp " << expected << ", "
                              << 100 * (got / expected - 1) << " %)");
    CHECK(std::abs(got / expected - 1.0) < 1e-3);
  }
}

TEST_CASE("llama perplexity: f32 activations keep weight rounding apart - results repeat exactly") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  if (model.empty()) return;
  const auto ids = fq_test::read_token_ids(fq_test::shared_dir() /
                                           "reference/tl-mini/tokens-wiki.test.small.raw.txt");
  const double a = run_ppl(model, ids, 128, 128, 4, fq::llama::activations::f32);
  const double b = run_ppl(model, ids, 128, 128, 4, fq::llama::activations::f32);
  CHECK(a == b);
  // The batch size splits the chunk into several forward calls over the KV cache: same result.
  const double c = run_ppl(model, ids, 128, 32, 4, fq::llama::activations::f32);
  CHECK(std::abs(c / a - 1.0) < 1e-6);
}

TEST_CASE("llama kernels: every architecture this CPU has gives the same perplexity") {
  // F32 weights and activations: no rounding step (activation quantization, the F16 cache) that
  // would turn the last-bit differences of the instruction sets into different roundings.
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  if (model.empty()) return;
  const auto ids = fq_test::read_token_ids(fq_test::shared_dir() /
                                           "reference/tl-mini/tokens-wiki.test.small.raw.txt");
  const auto f = fq::gguf::file::open(model.string());
  const auto m = fq::llama::model::load(f);
  fq::llama::perplexity_options o;
  o.n_ctx = 128;
  o.max_chunks = 3;
  o.eval.activations = fq::llama::activations::f32;
  std::vector<double> ppl;
  for (const char* arch : {"sse2", "avx2", "avx512"}) {
    try {
      o.eval.kernels = fq::llama::kernels_for(arch);
    } catch (const fq::error& e) {
      fq_test::skip(e.what());
      continue;
    }
    ppl.push_back(fq::llama::perplexity(m, ids, o).ppl);
    MESSAGE(std::string(arch) << ": " << ppl.back());
  }
  REQUIRE(!ppl.empty());
  for (double p : ppl) CHECK(std::abs(p / ppl.front() - 1.0) < 2e-5);
}
