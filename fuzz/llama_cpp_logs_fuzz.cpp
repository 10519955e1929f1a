// SPDX-License-Identifier: MIT
// libFuzzer target for the readers of llama.cpp's logs
// (include/fakequant/llama_cpp/logs.hpp), seeded with llama.cpp's own logs
// (../shared/reference/tl-mini/llama.cpp-logs). Any text gives a result without reading outside it;
// what is found must be consistent with the text.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fakequant/llama_cpp/logs.hpp>
#include <string_view>

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "llama_cpp_logs_fuzz: %s\n", what);
  std::abort();
}

// True when `part` is a view into `whole` (the parsers hand out views, never copies).
bool inside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  const auto* b = whole.data();
  return part.data() >= b && part.data() + part.size() <= b + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto run = fq::llama_cpp::split_captured(text);
  if (!inside(run.command, text) || !inside(run.out, text) || !inside(run.err, text))
    fail("split_captured gave a view outside the text");
  if (!run.marked && (run.out != text || run.err != text))
    fail("an unmarked log must be both streams");

  std::size_t sink = 0;
  for (const auto part : {text, run.out, run.err}) {
    const auto p = fq::llama_cpp::parse_perplexity_log(part);
    if (p.found_final && part.find("Final estimate") == std::string_view::npos)
      fail("a final estimate without its label");
    sink += p.running.size() + p.n_chunks + p.n_ctx;
    const auto k = fq::llama_cpp::parse_kld_log(part);
    if (k.kld_mean) sink += k.kld_at(50).has_value();
    sink += k.chunks.size() + k.dp_quantiles.size();
  }
  const auto c = fq::llama_cpp::parse_completion_log(run.out, run.err);
  if (c.text.size() > run.out.size()) fail("the completion text is longer than stdout");
  if (run.out.substr(0, c.text.size()) != c.text) fail("the completion text is not stdout's start");
  sink += c.text.size() + c.generated + c.load_failed;
  return sink == 0xFFFFFFFFu ? 1 : 0;
}
