// SPDX-License-Identifier: MIT
// GGUF layer benchmarks: header parsing of a 200k-string vocabulary, and rewriting a 2 GB model
// with one tensor replaced against `cp --reflink=never` of the same file in the same run.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <fakequant/gguf.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace gg = fq::gguf;
namespace fs = std::filesystem;

namespace {

void BM_parse_deepseek_vocab(benchmark::State& state) {
  const fs::path p = fs::path(FQ_SHARED_DIR) / "testdata/gguf/ggml-vocab-deepseek-llm.gguf";
  if (!fs::exists(p)) {
    state.SkipWithError("../shared absent");
    return;
  }
  std::size_t strings = 0;
  for (auto _ : state) {
    const auto f = gg::file::open(p.string());
    strings = f.find_entry("tokenizer.ggml.tokens")->value.size() +
              f.find_entry("tokenizer.ggml.merges")->value.size();
    benchmark::DoNotOptimize(strings);
  }
  state.counters["strings"] = static_cast<double>(strings);
}
BENCHMARK(BM_parse_deepseek_vocab)->Unit(benchmark::kMillisecond);

// A TinyLlama-sized file: 22 layers of F16 matrices, norms in F32; produced, never held in memory.
const fs::path& big_model() {
  static const fs::path path = [] {
    const auto p =
        fq_bench::scratch_dir() / ("model-" + std::to_string(fq_bench::model_mib()) + ".gguf");
    if (fs::exists(p)) return p;
    gg::builder b;
    b.set("general.architecture", gg::value::of("llama"));
    const std::uint64_t target = fq_bench::model_mib() << 20;
    const std::uint64_t dim = 2048, ffn = 5632;
    std::uint64_t total = 0;
    auto fill = [](std::uint64_t off, std::span<std::byte> out) {
      for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<std::byte>(((off + i) * 2654435761u) >> 13);
    };
    for (int layer = 0; total < target; ++layer) {
      const std::string blk = "blk." + std::to_string(layer) + ".";
      b.add_tensor(blk + "ffn_norm.weight", gg::ggml_type::f32, {dim},
                   gg::tensor_source::produced(dim * 4, fill));
      for (const char* m : {"ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"}) {
        b.add_tensor(blk + m, gg::ggml_type::f16, {dim, ffn},
                     gg::tensor_source::produced(dim * ffn * 2, fill));
        total += dim * ffn * 2;
      }
    }
    b.write(p);
    return p;
  }();
  return path;
}

// Each timed run starts with no dirty pages, so neither pays for the other's write-back.
void settle(benchmark::State& state) {
  state.PauseTiming();
  ::sync();
  state.ResumeTiming();
}

void BM_cp_reflink_never(benchmark::State& state) {
  const auto& in = big_model();
  const auto out = fq_bench::scratch_dir() / "cp.gguf";
  const std::string cmd = "cp --reflink=never '" + in.string() + "' '" + out.string() + "'";
  for (auto _ : state) {
    settle(state);
    if (std::system(cmd.c_str()) != 0) state.SkipWithError("cp failed");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * fs::file_size(in)));
  fs::remove(out);
}

// cp leaves its data in the page cache; the writer flushes to the disk before renaming. This is
// the like-for-like baseline: cp followed by a flush of what it wrote.
void BM_cp_then_sync(benchmark::State& state) {
  const auto& in = big_model();
  const auto out = fq_bench::scratch_dir() / "cp.gguf";
  const std::string cmd = "cp --reflink=never '" + in.string() + "' '" + out.string() +
                          "' && sync '" + out.string() + "'";
  for (auto _ : state) {
    settle(state);
    if (std::system(cmd.c_str()) != 0) state.SkipWithError("cp failed");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * fs::file_size(in)));
  fs::remove(out);
}

void BM_rewrite_one_tensor(benchmark::State& state) {
  const auto& in = big_model();
  const auto out = fq_bench::scratch_dir() / "rewrite.gguf";
  std::uint64_t peak = 0;
  for (auto _ : state) {
    settle(state);
    fq_bench::anon_peak_sampler sampler;
    const auto f = gg::file::open(in.string());
    auto b = gg::builder::from(f);
    const auto& t = f.tensor("blk.0.ffn_norm.weight");
    std::vector<float> w(t.elements, 1.0f);
    b.replace_tensor(t.name, t.type, {t.shape().begin(), t.shape().end()},
                     gg::tensor_source::bytes(std::as_bytes(std::span(w))));
    b.write(out);
    peak = std::max(peak, sampler.stop());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * fs::file_size(in)));
  state.counters["peak_rss_anon_MB"] = static_cast<double>(peak) / 1e6;
  fs::remove(out);
}

// Interleaved so all see the same page-cache and disk conditions.
BENCHMARK(BM_cp_reflink_never)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_cp_then_sync)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_rewrite_one_tensor)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_cp_reflink_never)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_cp_then_sync)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_rewrite_one_tensor)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

}  // namespace
