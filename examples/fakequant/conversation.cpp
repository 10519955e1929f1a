// SPDX-License-Identifier: MIT
// The loading, quick-inference and conversation tests of the plan (pipeline.hpp): the same prompts
// and chat for the original and the fake-quantized model, compared.
#include <fmt/core.h>

#include <cmath>
#include <fakequant/llama/generate.hpp>

#include "pipeline.hpp"

namespace fqcli::pipeline {

namespace {

struct prompt_spec {
  const char* text;
  std::size_t n;
  float temp;
};
constexpr prompt_spec prompts[] = {{"Hello, can you introduce yourself?", 50, 0.7f},
                                   {"你好，請介紹一下自己。", 50, 0.7f},
                                   {"2+2等於多少？", 20, 0.1f}};
const std::vector<std::string> chat_turns = {"讓我們聊聊天吧。", "你最喜歡什麼季節？為什麼？",
                                             "請用一句話總結我們剛才聊了什麼。"};

}  // namespace

conversation_outputs run_conversation(generator& g, std::uint64_t seed) {
  conversation_outputs o;
  o.hello = g.complete("Hello", 5, 0.0f, seed);
  for (const auto& p : prompts) {
    o.sampled.push_back(g.complete(p.text, p.n, p.temp, seed));
    o.greedy.push_back(g.complete(p.text, p.n, 0.0f, seed));
  }
  o.chat = g.chat(chat_turns, 30);
  o.raw = g.raw();
  return o;
}

conversation_result compare_conversation(const conversation_outputs& a,
                                         const conversation_outputs& b, std::uint64_t seed) {
  conversation_result r;
  r.loads = a.hello.loaded && b.hello.loaded;
  r.inference = !b.hello.ids.empty();
  double sum = 0;
  std::size_t units = 0;
  for (std::size_t i = 0; i < std::size(prompts) && i < a.sampled.size() && i < b.sampled.size();
       ++i) {
    const auto& p = prompts[i];
    const auto ca =
        fq::plan::check_output(a.sampled[i].text, a.sampled[i].ids, a.sampled[i].finite);
    const auto cb =
        fq::plan::check_output(b.sampled[i].text, b.sampled[i].ids, b.sampled[i].finite);
    r.failures += fq::plan::failures_against(ca, cb);
    const double ag = fq::plan::agreement(a.greedy[i].ids, b.greedy[i].ids);
    sum += ag;
    ++units;
    r.text += fmt::format(
        "## {} (-n {} --temp {} --seed {})\n\noriginal:       {}\nfake-quantized: {}\n\n"
        "greedy original:       {}\ngreedy fake-quantized: {}\nagreement: {:.3f}\n\n",
        p.text, p.n, p.temp, seed, a.sampled[i].text, b.sampled[i].text, a.greedy[i].text,
        b.greedy[i].text, ag);
  }
  r.text += "## multi-turn chat (-n 30 per answer, greedy)\n\n";
  for (int mi = 0; mi < 2; ++mi) {
    const auto& o = mi == 0 ? a : b;
    for (std::size_t t = 0; t < o.chat.size() && t < chat_turns.size(); ++t)
      r.text += fmt::format("{} turn {}: {}\n{}\n", mi == 0 ? "original" : "fake-quantized", t + 1,
                            chat_turns[t], o.chat[t].text);
  }
  for (std::size_t t = 0; t < a.chat.size() && t < b.chat.size(); ++t) {
    const double ag = fq::plan::agreement(a.chat[t].ids, b.chat[t].ids);
    sum += ag;
    ++units;
    r.text += fmt::format("turn {} agreement: {:.3f}\n", t + 1, ag);
  }
  r.agreement = units ? sum / static_cast<double>(units) : 0;
  r.band = fq::plan::conversation_band(r.failures, r.agreement);
  if (!a.raw.empty() || !b.raw.empty())
    r.text += "\n# raw output of every run (original, then fake-quantized)\n\n" + a.raw + b.raw;
  return r;
}

namespace {

class builtin_gen final : public generator {
 public:
  builtin_gen(const fq::llama::model& m, const fq::llama::tokenizer& tok,
              const fq::llama::eval_options& eo)
      : m_(m), tok_(tok), eo_(eo) {}
  completion complete(const std::string& prompt, std::size_t n, float temp,
                      std::uint64_t seed) override {
    fq::llama::context ctx(m_, n_ctx(), eo_);
    return run(ctx, tok_.encode(prompt, true, true), n, temp, seed);
  }
  std::vector<completion> chat(const std::vector<std::string>& turns, std::size_t n) override {
    std::vector<completion> out;
    fq::llama::context ctx(m_, n_ctx(), eo_);
    std::int32_t pending = -1;  // the last answer token, not yet in the context
    for (std::size_t t = 0; t < turns.size(); ++t) {
      auto ids = tok_.encode(turns[t], t == 0, true);
      if (pending >= 0 && pending != tok_.eos()) ids.insert(ids.begin(), pending);
      out.push_back(run(ctx, ids, n, 0.0f, 0));
      pending = out.back().ids.empty() ? -1 : out.back().ids.back();
    }
    return out;
  }

 private:
  std::size_t n_ctx() const {
    return std::min<std::size_t>(m_.params().n_ctx_train ? m_.params().n_ctx_train : 512, 512);
  }
  completion run(fq::llama::context& ctx, const std::vector<std::int32_t>& prompt, std::size_t n,
                 float temp, std::uint64_t seed) {
    fq::llama::generate_options g;
    g.n_predict = n;
    g.sampling.temp = temp;
    g.sampling.seed = seed;
    g.eos = tok_.eos();
    const auto r = fq::llama::generate(ctx, prompt, g);
    completion c;
    for (const auto& t : r.tokens) {
      c.ids.push_back(t.id);
      c.text += tok_.token_to_piece(t.id);
      c.finite &= std::isfinite(t.logprob);
    }
    return c;
  }
  const fq::llama::model& m_;
  const fq::llama::tokenizer& tok_;
  fq::llama::eval_options eo_;
};

}  // namespace

std::unique_ptr<generator> builtin_generator(const fq::llama::model& m,
                                             const fq::llama::tokenizer& tok,
                                             const fq::llama::eval_options& eo) {
  return std::make_unique<builtin_gen>(m, tok, eo);
}

}  // namespace fqcli::pipeline
