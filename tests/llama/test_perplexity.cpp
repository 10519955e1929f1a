// SPDX-License-Identifier: MIT
// The evaluator against llama.cpp: perplexity of the shared models on llama.cpp's own token ids
// (so this checks the model and forward pass alone; the tokenizer has its own tests).
#include <fakequant/gguf.hpp>
#include <fakequant/llama/dispatch.hpp>
#include <fakequant/llama/perplexity.hpp>
#include <fakequant/llama_cpp/logs.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace {

fq::llama::perplexity_options options(std::size_t ctx, std::size_t batch, std::size_t chunks,
                                      fq::llama::activations act = fq::llama::activations::ggml) {
  fq::llama::perplexity_options o;
  o.n_ctx = ctx;
  o.n_batch = batch;
  o.max_chunks = chunks;
  o.eval.activations = act;
  o.eval.kernels = fq::llama::best_kernels();
  return o;
}

double run_ppl(const std::filesystem::path& model, const std::vector<std::int32_t>& ids,
               std::size_t ctx, std::size_t batch, std::size_t chunks,
               fq::llama::activations act = fq::llama::activations::ggml) {
  const auto f = fq::gguf::file::open(model.string());
  const auto m = fq::llama::model::load(f);
  return fq::llama::perplexity(m, ids, options(ctx, batch, chunks, act)).ppl;
}

}  // namespace

TEST_CASE("llama perplexity: tl-mini f32, f16, q8_0 chunk by chunk against llama.cpp's log") {
  const auto ref_dir = fq_test::require_shared("reference/tl-mini");
  if (ref_dir.empty()) return;
  const auto models = fq_test::shared_dir() / "testdata/models";
  const auto ids = fq_test::read_token_ids(ref_dir / "tokens-wiki.test.small.raw.txt");
  REQUIRE(ids.size() == 49215);
  std::ifstream in(ref_dir / "llama.cpp-reference.json");
  const auto ref = nlohmann::json::parse(in)["ppl"];
  // The running PPL after every chunk (llama.cpp's "[i]x," line, 4 decimals: 2e-7 of these
  // values) against this evaluator's. Tolerances are twice the worst relative difference measured
  // over all chunks with the avx512, avx2 and sse2 kernels (the thread count changes nothing):
  //  - F32 weights: summation order only. c256 1.6e-6 (tl-mini-f32; its fake-quantized copies, all
  //    F32, reach 5.0e-6 in cli perplexity's test, so one 1e-5 for the class); c512 -b 8 1.1e-4
  //    (llama.cpp's 8-token batches go through its F16 KV cache in another order).
  //  - F16 weights: ggml rounds the activations to F16 first, so last-bit differences become
  //    rounding flips: c256 8.4e-5, c512 1.1e-4.
  //  - Q8_0: activations quantized to 8 bits per 32-block, more flips: c256 1.2e-3, c512 1.8e-3.
  // `separates`: the tolerance is below the largest per-chunk gap between this model's reference
  // and each other model's (c256: f32-f16 2.1e-4, f32-q8_0 1.4e-3, f16-q8_0 1.6e-3; c512:
  // f32-f16 7.4e-5, f32-q8_0 2.2e-3, f16-q8_0 2.1e-3), so evaluating the wrong one of the three
  // fails here. Where it is not (q8_0; f32 and f16 at c512 -b 8), perplexity cannot tell them apart
  // at this agreement: "kld: tl-mini f32, f16, q8_0 against a base written from tl-mini-f32" does,
  // with KLD, RMS Δp and same-top, which differ between them by far more than the agreement.
  struct setting {
    const char* model;
    const char* key;
    std::size_t ctx, batch, chunks;
    double tolerance;
    bool separates;
  };
  const setting settings[] = {
      {"f32", "c256_b256_chunks20", 256, 256, 20, 1e-5, true},
      {"f16", "c256_b256_chunks20", 256, 256, 20, 1.7e-4, true},
      {"q8_0", "c256_b256_chunks20", 256, 256, 20, 2.4e-3, false},
      {"f32", "c512_b8_chunks10", 512, 8, 10, 2.3e-4, false},
      {"f16", "c512_b8_chunks10", 512, 8, 10, 2.2e-4, false},
      {"q8_0", "c512_b8_chunks10", 512, 8, 10, 3.7e-3, false},
  };
  auto running = [&](const std::string& model, const std::string& key) {
    const auto text = fq_test::read_bytes(ref_dir / "llama.cpp-logs" /
                                          ("ppl-tl-mini-" + model + "-" + key + ".txt"));
    return fq::llama_cpp::parse_perplexity_log(std::string_view(text.data(), text.size())).running;
  };
  for (const auto& s : settings) {
    CAPTURE(std::string(s.model));
    CAPTURE(std::string(s.key));
    const auto name = "tl-mini-" + std::string(s.model) + ".gguf";
    const auto expected = running(s.model, s.key);
    REQUIRE(expected.size() == s.chunks);
    // The log and the reference JSON are one run: its final estimate is the last running value.
    CHECK(std::abs(expected.back() - ref[name][s.key][0].get<double>()) < 1e-4);
    const auto f = fq::gguf::file::open((models / name).string());
    const auto m = fq::llama::model::load(f);
    const auto got = fq::llama::perplexity(m, ids, options(s.ctx, s.batch, s.chunks)).running_ppl;
    REQUIRE(got.size() == s.chunks);
    double worst = 0;
    for (std::size_t c = 0; c < s.chunks; ++c)
      worst = std::max(worst, std::abs(got[c] / expected[c] - 1));
    MESSAGE(name << " " << std::string(s.key) << ": final " << got.back() << " (llama.cpp "
                 << expected.back() << "), worst chunk " << worst << " (tolerance " << s.tolerance
                 << ")");
    CHECK(worst < s.tolerance);
    if (!s.separates) continue;
    for (const char* other : {"f32", "f16", "q8_0"}) {
      if (std::string(other) == s.model) continue;
      const auto theirs = running(other, s.key);
      double gap = 0;
      for (std::size_t c = 0; c < s.chunks; ++c)
        gap = std::max(gap, std::abs(expected[c] / theirs[c] - 1));
      CAPTURE(std::string(other));
      CHECK(s.tolerance < gap);
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
