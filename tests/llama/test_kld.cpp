// SPDX-License-Identifier: MIT
// KL divergence: exact zero against a model's own fakequant base; llama.cpp's base files read and
// written; the statistics against llama.cpp's printed ones.
#include <cstring>
#include <fakequant/gguf.hpp>
#include <fakequant/llama/dispatch.hpp>
#include <fakequant/llama/kld.hpp>
#include <fstream>
#include <regex>

#include "support.hpp"

namespace {

fq::llama::perplexity_options options(std::size_t ctx, std::size_t chunks) {
  fq::llama::perplexity_options o;
  o.n_ctx = ctx;
  o.n_batch = ctx;
  o.max_chunks = chunks;
  o.eval.kernels = fq::llama::best_kernels();
  return o;
}

// The value on the line "Label   : value ± err" of a llama-perplexity KLD log.
double logged(const std::string& log, const std::string& label) {
  for (auto at = log.find(label); at != std::string::npos; at = log.find(label, at + 1)) {
    auto p = at + label.size();
    while (p < log.size() && log[p] == ' ') ++p;
    if (p < log.size() && log[p] == ':') return std::stod(log.substr(p + 1, 32));
  }
  FAIL("no line '" << label << "' in the log");
  return 0;
}

}  // namespace

TEST_CASE("kld: a model against its own fakequant base gives exactly 0 and PPL ratio 1") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-q8_0.gguf");
  if (model.empty()) return;
  fq_test::temp_dir dir;
  const auto f = fq::gguf::file::open(model.string());
  const auto m = fq::llama::model::load(f);
  const auto ids = fq_test::read_token_ids(fq_test::shared_dir() /
                                           "reference/tl-mini/tokens-wiki.test.small.raw.txt");
  const auto o = options(128, 3);
  const auto base_ppl =
      fq::llama::write_kld_base(m, ids, o, dir / "base.kld", fq::llama::kld_format::f32);
  const auto base = fq::llama::kld_base::open((dir / "base.kld").string());
  CHECK(base.n_ctx() == 128);
  CHECK(base.n_chunk() == 3);
  const auto [ppl, k] = fq::llama::kl_divergence(m, base, o);
  CHECK(k.count == 3 * 63);
  CHECK(k.kld_mean == 0.0);
  CHECK(k.kld_max == 0.0);
  CHECK(k.kld_min == 0.0);
  CHECK(k.ratio == 1.0);
  CHECK(k.ln_ratio == 0.0);
  CHECK(k.same_top == 1.0);
  CHECK(k.rms_dp == 0.0);
  CHECK(k.ppl_q == k.ppl_base);
  CHECK(std::abs(k.ppl_q / base_ppl.ppl - 1) < 1e-6);
}

TEST_CASE("kld: statistics against llama.cpp's base file match llama.cpp's printed ones") {
  const auto dir = fq_test::require_shared("reference/tl-mini/kld-base");
  if (dir.empty()) return;
  const auto base = fq::llama::kld_base::open((dir / "tl-mini-f32-c128-chunks2.kld").string());
  CHECK(base.format() == fq::llama::kld_format::llama);
  CHECK(base.n_ctx() == 128);
  CHECK(base.n_chunk() == 2);
  CHECK(base.n_vocab() == 32000);
  for (const char* name : {"f32", "f16", "q8_0"}) {
    CAPTURE(std::string(name));
    const auto f = fq::gguf::file::open(
        (fq_test::shared_dir() / "testdata/models" / ("tl-mini-" + std::string(name) + ".gguf"))
            .string());
    const auto m = fq::llama::model::load(f);
    auto o = options(128, 0);
    o.n_batch = 128;
    const auto [ppl, k] = fq::llama::kl_divergence(m, base, o);
    std::ifstream in(dir / ("kld-tl-mini-" + std::string(name) + ".log"));
    const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // PPL(base) comes from the file alone: it must be llama.cpp's to the printed digit.
    CHECK(std::abs(k.ppl_base - logged(log, "Mean PPL(base)")) < 1e-6);
    // The rest depends on this implementation's logits, which differ from llama.cpp's in the last
    // bits (summation order; q8_0's activation quantization turns those into different roundings).
    CHECK(std::abs(k.ppl_q / logged(log, "Mean PPL(Q)") - 1) < 0.01);
    CHECK(std::abs(k.same_top * 100 - logged(log, "Same top p")) <= 1.6);  // one token of 126
    CHECK(std::abs(k.kld_mean - logged(log, "Mean    KLD")) <= std::max(2e-6, 0.2 * k.kld_mean));
    MESSAGE(std::string(name) << ": PPL(Q) " << k.ppl_q << " KLD " << k.kld_mean << " max "
                              << k.kld_max << " same top " << 100 * k.same_top << " %");
  }
}

TEST_CASE("kld: test 1's model (blk.0.ffn_norm.weight rounded to BF16) against llama.cpp's base") {
  const auto dir = fq_test::require_shared("reference/tl-mini/kld-base");
  if (dir.empty()) return;
  fq_test::temp_dir tmp;
  const auto f =
      fq::gguf::file::open((fq_test::shared_dir() / "testdata/models/tl-mini-f32.gguf").string());
  // Round the tensor to BF16 (nearest even) and keep it F32, as test 1 does.
  const auto& t = f.tensor("blk.0.ffn_norm.weight");
  std::vector<float> w(t.elements);
  std::memcpy(w.data(), f.tensor_data(t).data(), t.bytes);
  for (auto& v : w) v = fq::llama::detail::round_to_bf16(v);
  auto b = fq::gguf::builder::from(f);
  b.replace_tensor(t.name, t.type, {t.ne[0]},
                   fq::gguf::tensor_source::bytes(std::as_bytes(std::span(w))));
  b.write(tmp / "bf16.gguf");
  const auto g = fq::gguf::file::open((tmp / "bf16.gguf").string());
  const auto m = fq::llama::model::load(g);
  const auto base = fq::llama::kld_base::open((dir / "tl-mini-f32-c128-chunks2.kld").string());
  const auto [ppl, k] = fq::llama::kl_divergence(m, base, options(128, 0));
  std::ifstream in(dir / "kld-tl-mini-bf16-blk0-ffn_norm.log");
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  MESSAGE("bf16-blk0-ffn_norm: PPL(Q) "
          << k.ppl_q << " (llama.cpp " << logged(log, "Mean PPL(Q)") << "), KLD " << k.kld_mean
          << " (" << logged(log, "Mean    KLD") << "), same top " << 100 * k.same_top << " % ("
          << logged(log, "Same top p") << ")");
  CHECK(std::abs(k.ppl_q / logged(log, "Mean PPL(Q)") - 1) < 1e-3);
  CHECK(std::abs(k.ppl_base - logged(log, "Mean PPL(base)")) < 1e-6);
  CHECK(std::abs(k.same_top * 100 - logged(log, "Same top p")) <= 1.6);
  CHECK(std::abs(k.kld_mean - logged(log, "Mean    KLD")) <= 2e-6);
}

TEST_CASE("kld: a base written in llama.cpp's format matches llama.cpp's own file") {
  const auto dir = fq_test::require_shared("reference/tl-mini/kld-base");
  if (dir.empty()) return;
  fq_test::temp_dir tmp;
  const auto ref = fq::llama::kld_base::open((dir / "tl-mini-f32-c128-chunks2.kld").string());
  const auto f =
      fq::gguf::file::open((fq_test::shared_dir() / "testdata/models/tl-mini-f32.gguf").string());
  const auto m = fq::llama::model::load(f);
  const auto ids = fq_test::read_token_ids(fq_test::shared_dir() /
                                           "reference/tl-mini/tokens-wiki.test.small.raw.txt");
  fq::llama::write_kld_base(m, ids, options(128, 2), tmp / "ours.kld",
                            fq::llama::kld_format::llama);
  const auto ours = fq::llama::kld_base::open((tmp / "ours.kld").string());
  REQUIRE(ours.n_ctx() == ref.n_ctx());
  REQUIRE(ours.n_chunk() == ref.n_chunk());
  REQUIRE(ours.n_vocab() == ref.n_vocab());
  CHECK(ours.tokens() == ref.tokens());
  // Same header bytes and token ids; records within the tolerance of two implementations.
  CHECK(fq_test::read_bytes(tmp / "ours.kld").size() ==
        fq_test::read_bytes(dir / "tl-mini-f32-c128-chunks2.kld").size());
  int worst_q = 0;
  std::size_t ones = 0, all = 0;
  double worst_scale = 0, worst_min = 0;
  for (std::size_t c = 0; c < ours.n_chunk(); ++c)
    for (std::size_t k = 0; k < ours.scored_per_chunk(); ++k) {
      const auto a = ours.record(c, k), b = ref.record(c, k);
      worst_scale = std::max(worst_scale, std::abs(a.scale / b.scale - 1.0));
      worst_min = std::max(worst_min, std::abs(a.min_log_prob / b.min_log_prob - 1.0));
      for (std::size_t i = 0; i < ours.n_vocab(); ++i) {
        const int d = std::abs(int(a.q[i]) - int(b.q[i]));
        worst_q = std::max(worst_q, d);
        ones += d <= 1;
        ++all;
      }
    }
  const double within_one = static_cast<double>(ones) / static_cast<double>(all);
  MESSAGE("quantized log-probabilities within ±1 of llama.cpp's: " << 100 * within_one << " %");
  MESSAGE("worst record differences: scale " << worst_scale << ", min " << worst_min << ", q "
                                             << worst_q);
  CHECK(worst_scale < 1e-4);
  CHECK(worst_min < 1e-4);
  CHECK(worst_q <= 2);
  CHECK(within_one >= 0.9999);
}
