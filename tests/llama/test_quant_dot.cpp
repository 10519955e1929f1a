// SPDX-License-Identifier: MIT
// ggml's integer block products: against the exact product of the dequantized weights and the
// dequantized Q8_0 / Q8_K activations, on real weights of every block type the evaluator reads.
#include <cmath>
#include <cstring>
#include <fakequant/gguf.hpp>
#include <fakequant/llama/dispatch.hpp>
#include <fakequant/llama/kernels.hpp>
#include <fakequant/llama/quant_dot.hpp>
#include <random>

#include "support.hpp"

namespace {

// The largest |got − exact| over all outputs, relative to Σ|w·x| of that output (the scale a
// float product's rounding is measured against).
double worst_error(const fq::llama::kernel_table& k, const fq::llama::weight& w, std::size_t tokens,
                   std::vector<float>& y) {
  const std::size_t cols = w.cols, rows = w.rows;
  std::mt19937 rng(7);
  std::student_t_distribution<float> dist(4.0f);
  std::vector<float> x(tokens * cols);
  for (auto& v : x) v = dist(rng);
  x[3] = 0.0f;  // a zero
  fq::llama::quantized_activations xq;
  fq::llama::quantize_activations(w.type, x.data(), tokens, cols, xq);
  // The dequantized activations must be what round_activations gives (the float path's view).
  std::vector<float> xr = x;
  for (std::size_t t = 0; t < tokens; ++t)
    fq::llama::round_activations(w.type, {&xr[t * cols], cols});
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t i = 0; i < cols; ++i) {
      const float dq = static_cast<float>(xq.values(t)[i]) * xq.scales(t)[i / xq.block];
      REQUIRE(dq == xr[t * cols + i]);
    }
  fq::thread_pool pool(2);
  y.assign(tokens * rows, 0.0f);
  fq::llama::matmul_int(k, w, xq, y.data(), pool);
  std::vector<float> row(cols);
  const std::size_t be = fq::gguf::block_elements(w.type);
  double worst = 0.0;
  for (std::size_t r = 0; r < rows; ++r) {
    fq::gguf::decode_blocks(w.type, w.row(r), cols / be, row.data());
    for (std::size_t t = 0; t < tokens; ++t) {
      double exact = 0.0, mag = 0.0;
      for (std::size_t i = 0; i < cols; ++i) {
        exact += static_cast<double>(row[i]) * xr[t * cols + i];
        mag += std::fabs(static_cast<double>(row[i]) * xr[t * cols + i]);
      }
      if (mag > 0) worst = std::max(worst, std::fabs(y[t * rows + r] - exact) / mag);
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("llama integer block products equal the exact product of the dequantized values") {
  const auto models = fq_test::require_shared("testdata/models");
  if (models.empty()) return;
  struct pick {
    const char* file;
    const char* tensor;
    fq::gguf::ggml_type type;
  };
  using fq::gguf::ggml_type;
  for (const pick p : {pick{"kq-q4_0.gguf", "blk.0.ffn_down.weight", ggml_type::q4_0},
                       pick{"kq-q4_k_m.gguf", "blk.0.ffn_down.weight", ggml_type::q4_k},
                       pick{"kq-q5_k_m.gguf", "blk.0.ffn_up.weight", ggml_type::q5_k},
                       pick{"kq-q6_k.gguf", "blk.0.ffn_down.weight", ggml_type::q6_k},
                       pick{"tl-mini-q8_0.gguf", "blk.0.ffn_gate.weight", ggml_type::q8_0}}) {
    CAPTURE(std::string(p.file));
    const auto f = fq::gguf::file::open((models / p.file).string());
    const auto* t = f.find_tensor(p.tensor);
    REQUIRE(t != nullptr);
    REQUIRE(t->type == p.type);
    const fq::llama::weight w{t->name, t->type, f.tensor_data(*t), t->ne[0], t->ne[1]};
    std::vector<float> first, y;
    for (const char* arch : {"sse2", "avx2", "avx512"}) {
      fq::llama::kernel_table k{};
      try {
        k = fq::llama::kernels_for(arch);
      } catch (const fq::error&) {
        continue;  // this CPU lacks it
      }
      CAPTURE(std::string(arch));
      // Integer sums are exact; floats enter once per block (and once per output), so the error
      // stays at a few float roundings, not one per term.
      // 5 tokens: the Q8_0 kernel's group of four and a single one.
      CHECK(worst_error(k, w, 5, y) < 1e-6);
      // The same arithmetic on every instruction set: the figures match llama.cpp's on any CPU.
      if (first.empty())
        first = y;
      else
        CHECK(std::memcmp(first.data(), y.data(), y.size() * sizeof(float)) == 0);
    }
  }
}
