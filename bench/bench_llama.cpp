// SPDX-License-Identifier: MIT
// Evaluator throughput: perplexity tokens/s on the shared models and on a TinyLlama-1.1B-shaped F16
// model, with GFLOP/s against the FMA peak of the same kernels measured in the same run.
#include <benchmark/benchmark.h>

#include <cstring>
#include <fakequant/gguf.hpp>
#include <fakequant/llama/dispatch.hpp>
#include <fakequant/llama/generate.hpp>
#include <fakequant/llama/perplexity.hpp>
#include <fakequant/llama/synth.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench_util.hpp"

namespace fs = std::filesystem;

namespace {

const fq::llama::kernel_table& kernels() {
  static const auto k = fq::llama::best_kernels();
  return k;
}

// Baseline: register-resident FMAs on every thread (no memory traffic): the machine's ceiling.
// 2 × tile_rows independent accumulators (24 on AVX-512) cover the FMA latency of both FMA units;
// short runs (about 0.1 s) so that a shared machine's other work shows up as spread between
// repetitions rather than as a lower ceiling.
void BM_fma_peak(benchmark::State& state) {
  const auto threads = static_cast<std::size_t>(state.range(0));
  const auto& k = kernels();
  const std::size_t iters = 1'000'000;
  for (auto _ : state) {
    std::vector<std::thread> ts;
    std::vector<float> out(threads);
    for (std::size_t t = 0; t < threads; ++t)
      ts.emplace_back([&, t] { out[t] = k.fma_peak(iters); });
    for (auto& t : ts) t.join();
    benchmark::DoNotOptimize(out.data());
  }
  const double flops = static_cast<double>(threads * iters * 2 * k.tile_rows * 2 * k.fma_lanes);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(k.name);
}
BENCHMARK(BM_fma_peak)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

std::vector<std::int32_t> text_tokens(std::size_t n, std::uint32_t vocab) {
  // llama.cpp's own ids of the plan's text where available; otherwise a deterministic sequence.
  std::vector<std::int32_t> ids;
  std::ifstream in(fs::path(FQ_SHARED_DIR) / "reference/tl-mini/tokens-wiki.test.small.raw.txt");
  for (std::int32_t t; ids.size() < n && in >> t;)
    ids.push_back(t % static_cast<std::int32_t>(vocab));
  for (std::uint32_t i = 0; ids.size() < n; ++i)
    ids.push_back(static_cast<std::int32_t>(3 + i * 7919 % (vocab - 3)));
  return ids;
}

// Multiply-adds per token of the weight products (the bulk of the work).
double macs_per_token(const fq::llama::model& m) {
  double macs = 0;
  for (const auto& l : m.layers())
    for (const auto* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      macs += static_cast<double>(w->rows * w->cols);
  return macs;
}

void run_perplexity(benchmark::State& state, const fs::path& model, std::size_t ctx,
                    std::size_t chunks) {
  if (!fs::exists(model)) {
    state.SkipWithError("model absent (../shared or the scratch folder)");
    return;
  }
  const auto f = fq::gguf::file::open(model.string());
  const auto m = fq::llama::model::load(f);
  const auto ids = text_tokens(ctx * chunks, m.params().n_vocab);
  fq::llama::perplexity_options o;
  o.n_ctx = ctx;
  o.n_batch = ctx;
  o.max_chunks = chunks;
  o.eval.threads = 2;
  o.eval.kernels = kernels();
  double ppl = 0;
  for (auto _ : state) ppl = fq::llama::perplexity(m, ids, o).ppl;
  const double tokens = static_cast<double>(ctx * chunks);
  // Output products only for the scored half.
  const double macs = macs_per_token(m) * tokens +
                      static_cast<double>(m.output().rows * m.output().cols) * tokens / 2;
  state.counters["tokens/s"] =
      benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2 * macs / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["ppl"] = ppl;
  state.SetLabel(kernels().name);
}

void BM_perplexity_tl_mini(benchmark::State& state, const char* name) {
  run_perplexity(state, fs::path(FQ_SHARED_DIR) / "testdata/models" / name, 256, 20);
}
BENCHMARK_CAPTURE(BM_perplexity_tl_mini, f32, "tl-mini-f32.gguf")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_perplexity_tl_mini, f16, "tl-mini-f16.gguf")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_perplexity_tl_mini, q8_0, "tl-mini-q8_0.gguf")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// llama-perplexity -c 512 -b 512 --chunks 2 on a TinyLlama-1.1B-shaped F16 model (2.2 GB, made once
// in the scratch folder): llama.cpp reaches 255 tokens/s on this machine kind.
void BM_perplexity_tinyllama_f16(benchmark::State& state) {
  const auto path = fq_bench::scratch_dir() / "tinyllama-1.1b-f16-synth.gguf";
  if (!fs::exists(path)) fq::llama::synth(fq::llama::synth_preset("tinyllama-1.1b"), {}, path);
  run_perplexity(state, path, 512, 2);
}
BENCHMARK(BM_perplexity_tinyllama_f16)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1);

// Generation is memory-bound: each token streams every weight once. Baseline: memcpy bandwidth
// in the same run (reading and writing 512 MiB).
void BM_memcpy_bandwidth(benchmark::State& state) {
  const std::size_t n = 512u << 20;
  std::vector<char> a(n, 1), b(n, 0);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), n);
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  state.counters["read GB/s"] = benchmark::Counter(static_cast<double>(n) / 1e9,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_memcpy_bandwidth)->UseRealTime()->Unit(benchmark::kMillisecond);

// llama-completion -n 64 --temp 0 on the TinyLlama-shaped F16 model: 16.3 tokens/s for llama.cpp.
void BM_generate_tinyllama_f16(benchmark::State& state) {
  const auto path = fq_bench::scratch_dir() / "tinyllama-1.1b-f16-synth.gguf";
  if (!fs::exists(path)) fq::llama::synth(fq::llama::synth_preset("tinyllama-1.1b"), {}, path);
  const auto f = fq::gguf::file::open(path.string());
  const auto m = fq::llama::model::load(f);
  fq::llama::eval_options eo;
  eo.threads = 2;
  eo.kernels = kernels();
  fq::llama::generate_options go;
  go.n_predict = 64;
  go.sampling.temp = 0;
  go.stop_at_eos = false;
  const std::vector<std::int32_t> prompt{1, 15043};
  double tps = 0;
  for (auto _ : state) {
    fq::llama::context ctx(m, 256, eo);
    tps = fq::llama::generate(ctx, prompt, go).generation_tokens_per_second();
  }
  std::uint64_t weight_bytes = 0;
  for (const auto& t : f.tensors()) weight_bytes += t.bytes;
  weight_bytes -= m.tok_embd().data.size();  // embeddings: one row per token, not streamed
  state.counters["tokens/s"] = tps;
  state.counters["weights GB/s"] = tps * static_cast<double>(weight_bytes) / 1e9;
  state.SetLabel(kernels().name);
}
BENCHMARK(BM_generate_tinyllama_f16)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
