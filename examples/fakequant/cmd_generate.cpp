// SPDX-License-Identifier: MIT
// fakequant generate: text generation like llama-completion (one prompt, or a multi-turn session
// with -i); fakequant compare-generate: the same prompt and settings on two models, side by side.
#include <fmt/core.h>

#include <cstdio>
#include <fakequant/gguf.hpp>
#include <fakequant/llama/chat.hpp>
#include <fakequant/llama/dispatch.hpp>
#include <fakequant/llama/generate.hpp>
#include <fakequant/llama/tokenizer.hpp>
#include <iostream>
#include <random>

#include "checks.hpp"
#include "cli.hpp"
#include "json_util.hpp"

namespace fqcli {
namespace {

struct generate_args {
  std::vector<std::string> models;
  std::string prompt, chat_template = "auto", activations = "ggml";
  std::size_t n_predict = 128, threads = 0, ctx = 0;
  std::optional<std::uint64_t> seed;
  float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f;
  std::int32_t top_k = 40;
  bool interactive = false, json = false;
};

void add_generation_options(CLI::App* cmd, const std::shared_ptr<generate_args>& a) {
  cmd->add_option("-p,--prompt", a->prompt, "prompt (with -i: the first user turn)")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            const auto bad = fq::first_invalid_utf8(s);
            return bad == std::string::npos
                       ? std::string()
                       : fmt::format("not valid UTF-8 at byte {}; give the prompt in UTF-8", bad);
          },
          "UTF-8"));
  cmd->add_option("-n,--n-predict", a->n_predict, "tokens to generate at most (per answer with -i)")
      ->check(CLI::Range(1, 1 << 24));
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("-c,--ctx-size", a->ctx, "context size (default: the model's, at most 4096)")
      ->check(CLI::Range(8, 1 << 20));
  cmd->add_option("--temp", a->temp, "temperature; 0 is greedy (argmax)")->check(finite_in(0, 100));
  cmd->add_option("--top-k", a->top_k, "top-k (0: off)")->check(CLI::Range(0, 1 << 24));
  cmd->add_option("--top-p", a->top_p, "top-p (1: off)")->check(finite_in(0, 1));
  cmd->add_option("--min-p", a->min_p, "min-p (0: off)")->check(finite_in(0, 1));
  cmd->add_option("--repeat-penalty", a->repeat_penalty, "repetition penalty (1: off)")
      ->check(finite_in(0, 100));
  cmd->add_option("-s,--seed", a->seed, "random seed (default: a random one, printed)");
  cmd->add_option("--activations", a->activations,
                  "ggml: round activations as ggml does; f32: exact")
      ->check(CLI::IsMember({"ggml", "f32"}));
  cmd->add_option("--chat-template", a->chat_template,
                  "auto (the model's, when known), none, zephyr, chatml or llama2");
  cmd->add_flag("--json", a->json, "print JSON (token ids, text, log-probabilities, timings)");
}

// A loaded model with its tokenizer, chat template and evaluation context.
struct session {
  fq::gguf::file file;
  fq::llama::model model;
  fq::llama::tokenizer tok;
  fq::llama::context ctx;
  fq::llama::chat_template tmpl = fq::llama::chat_template::none;

  session(const std::string& path, const generate_args& a)
      : file(fq::gguf::file::open(path)),
        model(fq::llama::model::load(file)),
        tok(fq::llama::tokenizer::from_file(file)),
        ctx(model, context_size(model, a), eval_opts(a)) {
    if (a.chat_template == "auto") {
      if (auto t = fq::llama::detect_chat_template(file)) {
        tmpl = *t;
      } else if (a.interactive) {
        fmt::print(stderr,
                   "{}: no known chat template in tokenizer.chat_template; using plain text\n",
                   path);
      }
    } else {
      tmpl = fq::llama::chat_template_from_name(a.chat_template);
    }
  }
  static std::size_t context_size(const fq::llama::model& m, const generate_args& a) {
    if (a.ctx) return a.ctx;
    const std::size_t train = m.params().n_ctx_train;
    return train ? std::min<std::size_t>(train, 4096) : 2048;
  }
  static fq::llama::eval_options eval_opts(const generate_args& a) {
    fq::llama::eval_options o;
    o.threads = a.threads;
    o.activations =
        a.activations == "f32" ? fq::llama::activations::f32 : fq::llama::activations::ggml;
    o.kernels = fq::llama::best_kernels();
    return o;
  }
  // Tokens of one user turn (the first opens the conversation with BOS).
  std::vector<std::int32_t> turn_tokens(const std::string& user, bool first) const {
    const auto text = fq::llama::format_turn(tmpl, user, first, tok.piece(tok.eos()));
    return tok.encode(text, first, /*parse_special=*/true);
  }
};

fq::llama::generate_options gen_options(const generate_args& a, std::uint64_t seed,
                                        std::int32_t eos) {
  fq::llama::generate_options o;
  o.n_predict = a.n_predict;
  o.eos = eos;
  o.sampling.temp = a.temp;
  o.sampling.top_k = a.top_k;
  o.sampling.top_p = a.top_p;
  o.sampling.min_p = a.min_p;
  o.sampling.repeat_penalty = a.repeat_penalty;
  o.sampling.seed = seed;
  return o;
}

void print_timings(const fq::llama::generation_result& r) {
  auto line = [](const char* what, double s, std::size_t n, const char* unit) {
    fmt::print(stderr,
               "{:>16} = {:10.2f} ms / {:5} {} ({:8.2f} ms per token, {:8.2f} tokens per second)\n",
               what, s * 1e3, n, unit, n ? s * 1e3 / static_cast<double>(n) : 0.0,
               s > 0 ? static_cast<double>(n) / s : 0.0);
  };
  line("prompt eval time", r.prompt_seconds, r.prompt_tokens, "tokens");
  line("eval time", r.generation_seconds, r.tokens.size(), "runs  ");
}

nlohmann::json turn_json(const session& s, const std::string& user,
                         const std::vector<std::int32_t>& prompt,
                         const fq::llama::generation_result& r) {
  std::vector<std::int32_t> ids;
  std::vector<float> lps;
  std::string text;
  for (const auto& t : r.tokens) {
    ids.push_back(t.id);
    lps.push_back(t.logprob);
    text += s.tok.token_to_piece(t.id);
  }
  return {{"prompt", user},
          {"prompt_tokens", prompt},
          {"tokens", ids},
          {"text", text},
          {"logprobs", lps},
          {"stopped_at_eos", r.stopped_at_eos},
          {"timings",
           {{"prompt_tokens_per_second", r.prompt_tokens_per_second()},
            {"generation_tokens_per_second", r.generation_tokens_per_second()}}}};
}

void run_generate(const generate_args& a) {
  if (!a.interactive && a.prompt.empty())
    throw CLI::ValidationError("-p", "a prompt is required (or -i)");
  session s(a.models.front(), a);
  const std::uint64_t seed = a.seed ? *a.seed : std::random_device{}();
  if (!a.seed) fmt::print(stderr, "sampler seed: {}\n", seed);
  const auto opt = gen_options(a, seed, s.tok.eos());
  auto json_turns = nlohmann::json::array();
  std::int32_t pending = -1;  // the last answer's final token: sampled, not yet in the cache
  bool first = true;
  auto run_turn = [&](const std::string& user) {
    auto prompt = s.turn_tokens(user, first);
    if (pending >= 0 && pending != s.tok.eos()) prompt.insert(prompt.begin(), pending);
    first = false;
    const auto r =
        fq::llama::generate(s.ctx, prompt, opt, [&](const fq::llama::generated_token& t) {
          if (!a.json) {
            std::fputs(s.tok.token_to_piece(t.id).c_str(), stdout);
            std::fflush(stdout);
          }
          return true;
        });
    pending = r.tokens.empty() ? -1 : r.tokens.back().id;
    if (a.json) {
      json_turns.push_back(turn_json(s, user, prompt, r));
    } else {
      std::fputs("\n", stdout);
      print_timings(r);
    }
  };
  if (!a.prompt.empty()) run_turn(a.prompt);
  if (a.interactive)
    for (std::string line; std::getline(std::cin, line);)
      if (!line.empty()) run_turn(line);
  if (a.json) {
    nlohmann::json j{{"model", a.models.front()},
                     {"seed", seed},
                     {"chat_template", fq::llama::to_string(s.tmpl)}};
    if (a.interactive) {
      j["turns"] = json_turns;
    } else {
      j.update(json_turns.front());
    }
    fmt::print("{}", dump(j));
  }
}

void run_compare(const generate_args& a) {
  if (a.models.size() != 2)
    throw CLI::ValidationError("-m", "compare-generate needs exactly two -m");
  if (a.prompt.empty()) throw CLI::ValidationError("-p", "a prompt is required");
  const std::uint64_t seed = a.seed ? *a.seed : std::random_device{}();
  std::vector<std::unique_ptr<session>> ss;
  std::vector<fq::llama::generation_result> rs;
  std::vector<std::int32_t> prompt;
  for (const auto& m : a.models) {
    ss.push_back(std::make_unique<session>(m, a));
    prompt = ss.back()->turn_tokens(a.prompt, true);
    rs.push_back(
        fq::llama::generate(ss.back()->ctx, prompt, gen_options(a, seed, ss.back()->tok.eos())));
  }
  const auto& ta = rs[0].tokens;
  const auto& tb = rs[1].tokens;
  std::size_t diverge = 0;
  while (diverge < ta.size() && diverge < tb.size() && ta[diverge].id == tb[diverge].id) ++diverge;
  const bool identical = diverge == ta.size() && diverge == tb.size();
  // B's log-probabilities of A's tokens (teacher forcing): the per-position difference.
  auto& sb = *ss[1];
  sb.ctx.clear();
  std::vector<std::int32_t> seq = prompt;
  for (std::size_t i = 0; i + 1 < ta.size(); ++i) seq.push_back(ta[i].id);
  std::vector<float> logits;
  sb.ctx.eval(seq, prompt.size() - 1, logits);
  const std::size_t nv = sb.model.params().n_vocab;
  std::vector<double> delta;
  for (std::size_t i = 0; i < ta.size(); ++i) {
    std::span<const float> row(logits.data() + i * nv, nv);
    float mx = row[0];
    for (float v : row) mx = std::max(mx, v);
    double sum = 0;
    for (float v : row) sum += std::exp(static_cast<double>(v) - mx);
    const double lpb = row[static_cast<std::size_t>(ta[i].id)] - mx - std::log(sum);
    delta.push_back(static_cast<double>(ta[i].logprob) - lpb);
  }
  auto text = [&](const session& s, const std::vector<fq::llama::generated_token>& ts) {
    std::string t;
    for (const auto& g : ts) t += s.tok.token_to_piece(g.id);
    return t;
  };
  if (a.json) {
    std::vector<std::int32_t> ia, ib;
    for (const auto& t : ta) ia.push_back(t.id);
    for (const auto& t : tb) ib.push_back(t.id);
    fmt::print("{}",
               dump({{"a", a.models[0]},
                     {"b", a.models[1]},
                     {"prompt", a.prompt},
                     {"seed", seed},
                     {"tokens_a", ia},
                     {"tokens_b", ib},
                     {"text_a", text(*ss[0], ta)},
                     {"text_b", text(*ss[1], tb)},
                     {"identical", identical},
                     {"first_divergence", identical ? nlohmann::json() : nlohmann::json(diverge)},
                     {"logprob_a_minus_b", delta}}));
    return;
  }
  fmt::print("A: {}\nB: {}\n", text(*ss[0], ta), text(*ss[1], tb));
  if (identical) {
    fmt::print("identical: {} tokens\n", ta.size());
  } else {
    fmt::print("first divergence at generated token {} ('{}' vs '{}')\n", diverge,
               diverge < ta.size() ? ss[0]->tok.token_to_piece(ta[diverge].id) : "(end)",
               diverge < tb.size() ? ss[1]->tok.token_to_piece(tb[diverge].id) : "(end)");
  }
  fmt::print("{:>5}  {:<16}  {:>12}\n", "pos", "token (A)", "logp A - B");
  for (std::size_t i = 0; i < ta.size(); ++i) {
    auto piece = ss[0]->tok.token_to_piece(ta[i].id);
    for (auto& c : piece)
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    fmt::print("{:>5}  {:<16}  {:>12.6f}\n", i, piece, delta[i]);
  }
}

}  // namespace

void register_generate(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("generate", "Generate text (like llama-completion), or chat with -i");
  auto a = std::make_shared<generate_args>();
  a->models.resize(1);
  cmd->add_option("-m,--model", a->models.front(), "GGUF model")->required();
  add_generation_options(cmd, a);
  cmd->add_flag("-i,--interactive", a->interactive,
                "multi-turn session: user turns from standard input, one per line");
  cmd->callback([a] { run_generate(*a); });

  auto* cmp = app.add_subcommand(
      "compare-generate",
      "Run two models on the same prompt and settings; report where they diverge");
  auto b = std::make_shared<generate_args>();
  cmp->add_option("-m,--model", b->models, "GGUF model (give two)")
      ->required()
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  add_generation_options(cmp, b);
  cmp->callback([b] { run_compare(*b); });
}

}  // namespace fqcli
