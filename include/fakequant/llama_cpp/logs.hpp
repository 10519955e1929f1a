// SPDX-License-Identifier: MIT
// Readers of what llama.cpp's tools print (../shared/docs/perplexity.md): llama-perplexity's final
// estimate and running values, the KL-divergence statistics block, llama-completion's text. Pure
// functions of the log text: any input, however damaged, gives a result with `found` flags and
// never reads outside the text, so the fakequant program can call a figure missing rather than
// trust a half-parsed one.
#pragma once

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fq::llama_cpp {

/// A printed figure with its printed uncertainty (`x ± u`, `x _ u` on some Windows consoles).
struct figure {
  double value = 0, error = 0;
  bool has_error = false;
};

/// llama-perplexity without --kl-divergence.
struct perplexity_log {
  bool found_final = false;  ///< a `Final estimate: PPL = x +/- u` line was seen
  double ppl = 0, ppl_error = 0;
  bool negative_variance = false;       ///< llama.cpp printed its negative-deviation error instead
  std::vector<double> running;          ///< `[i]x,` values in order: the PPL after chunk i
  std::size_t n_chunks = 0, n_ctx = 0;  ///< from `… over N chunks, n_ctx=C`, 0 when absent
};

/// One per-chunk row of the KL-divergence table (running values after that chunk).
struct kld_chunk {
  std::size_t chunk = 0;
  figure ppl, ln_ratio, kld, rms_dp, same_top;  ///< rms_dp and same_top in percent
};

/// llama-perplexity --kl-divergence: the statistics block (stdout) and the per-chunk rows.
struct kld_log {
  bool found = false;  ///< the `====== KL divergence statistics ======` block with a Mean KLD
  std::optional<figure> ppl_q, ppl_base, ln_ratio, ratio, difference;
  std::optional<double> correlation;  ///< percent
  std::optional<figure> kld_mean;
  /// (percentile, value): Maximum = 100, Median = 50, Minimum = 0, in printed order.
  std::vector<std::pair<double, double>> kld_quantiles, dp_quantiles;
  std::optional<figure> dp_mean, rms_dp, same_top;  ///< percent
  std::vector<kld_chunk> chunks;
  std::size_t n_chunks = 0, n_ctx = 0;

  /// The printed value at `percentile` (first occurrence), if any.
  std::optional<double> kld_at(double percentile) const {
    for (const auto& [p, v] : kld_quantiles)
      if (p == percentile) return v;
    return std::nullopt;
  }
};

/// llama-completion -no-cnv --no-display-prompt: its standard output and standard error.
struct completion_log {
  std::string text;          ///< the generated text, without the trailers llama-completion adds
  bool end_of_text = false;  ///< an end-of-generation token stopped it (` [end of text]`)
  bool generated = false;    ///< stderr shows the generation started (`generate: n_ctx = …`)
  bool load_failed = false;  ///< stderr reports that the model did not load
  std::optional<std::size_t> n_predict, eval_runs, prompt_tokens;
  std::optional<double> eval_ms;
};

/// A captured run as stored in the reference logs and in fakequant's result files:
/// `$ command\n--- stdout ---\n…\n--- stderr ---\n…`. Without those markers, the whole text is
/// taken as both streams (a log where stdout and stderr were merged).
struct captured_run {
  std::string_view command, out, err;
  bool marked = false;
};

namespace detail::logs {

inline bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r'; }

inline std::string_view skip_spaces(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  return s.substr(i);
}

/// Parses a decimal number at the start of `s` (after spaces); advances `s` past it.
inline std::optional<double> take_number(std::string_view& s) noexcept {
  s = skip_spaces(s);
  if (s.empty()) return std::nullopt;
  // from_chars refuses a leading '+', which llama.cpp never prints but a log may contain.
  const std::size_t plus = s[0] == '+' ? 1 : 0;
  double v = 0;
  const auto r = std::from_chars(s.data() + plus, s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr == s.data() + plus) return std::nullopt;
  s.remove_prefix(static_cast<std::size_t>(r.ptr - s.data()));
  return v;
}

inline std::optional<std::size_t> take_count(std::string_view& s) noexcept {
  s = skip_spaces(s);
  std::size_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr == s.data()) return std::nullopt;
  s.remove_prefix(static_cast<std::size_t>(r.ptr - s.data()));
  return v;
}

inline bool take_literal(std::string_view& s, std::string_view lit) noexcept {
  s = skip_spaces(s);
  if (s.substr(0, lit.size()) != lit) return false;
  s.remove_prefix(lit.size());
  return true;
}

/// `x`, then optionally `± u` (or `_ u`, `+/- u`), then an optional `%`.
inline std::optional<figure> take_figure(std::string_view& s) noexcept {
  const auto v = take_number(s);
  if (!v) return std::nullopt;
  figure f{*v, 0, false};
  take_literal(s, "%");
  auto rest = s;
  if (take_literal(rest, "\xC2\xB1") || take_literal(rest, "_") || take_literal(rest, "+/-")) {
    if (const auto e = take_number(rest)) {
      f.error = *e;
      f.has_error = true;
      take_literal(rest, "%");
      s = rest;
    }
  }
  return f;
}

/// The lines of `text`, each without its '\n'.
template <class F>
void for_each_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    f(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

/// The figure after `label` and the next ':' on `line`, when `line` contains `label`.
inline std::optional<figure> labelled(std::string_view line, std::string_view label) noexcept {
  const auto at = line.find(label);
  if (at == std::string_view::npos) return std::nullopt;
  auto rest = line.substr(at + label.size());
  const auto colon = rest.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  rest.remove_prefix(colon + 1);
  return take_figure(rest);
}

/// `… over N chunks, n_ctx=C`.
inline void chunks_and_ctx(std::string_view line, std::size_t& n_chunks, std::size_t& n_ctx) {
  const auto at = line.find(" over ");
  const auto ctx = line.find("n_ctx=");
  if (at == std::string_view::npos || ctx == std::string_view::npos) return;
  auto a = line.substr(at + 6), c = line.substr(ctx + 6);
  const auto n = take_count(a);
  const auto x = take_count(c);
  if (n && x && take_literal(a, "chunks")) {
    n_chunks = *n;
    n_ctx = *x;
  }
}

/// A percentile label (`Maximum`, `99.9%`, `Median`, ` 1.0%`, `Minimum`) followed by `name` and
/// ':'; the percentile and the figure.
inline std::optional<std::pair<double, double>> quantile_line(std::string_view line,
                                                              std::string_view name) noexcept {
  auto s = skip_spaces(line);
  double p = 0;
  if (take_literal(s, "Maximum")) {
    p = 100;
  } else if (take_literal(s, "Minimum")) {
    p = 0;
  } else if (take_literal(s, "Median")) {
    p = 50;
  } else {
    const auto v = take_number(s);
    if (!v || !take_literal(s, "%")) return std::nullopt;
    p = *v;
  }
  if (!take_literal(s, name) || !take_literal(s, ":")) return std::nullopt;
  const auto f = take_figure(s);
  if (!f) return std::nullopt;
  return std::pair{p, f->value};
}

}  // namespace detail::logs

/// Splits a captured run into its command and streams (see captured_run).
inline captured_run split_captured(std::string_view text) noexcept {
  constexpr std::string_view out_mark = "--- stdout ---\n", err_mark = "\n--- stderr ---\n";
  captured_run r{{}, text, text, false};
  const auto o = text.find(out_mark);
  if (o == std::string_view::npos) return r;
  const auto e = text.find(err_mark, o + out_mark.size());
  if (e == std::string_view::npos) return r;
  auto head = text.substr(0, o);
  if (head.substr(0, 2) == "$ ") head.remove_prefix(2);
  while (!head.empty() && (head.back() == '\n' || head.back() == '\r')) head.remove_suffix(1);
  r.command = head;
  r.out = text.substr(o + out_mark.size(), e - o - out_mark.size());
  r.err = text.substr(e + err_mark.size());
  r.marked = true;
  return r;
}

/// The final estimate and running values of llama-perplexity (stdout, stderr, or both merged).
inline perplexity_log parse_perplexity_log(std::string_view text) {
  perplexity_log r;
  // Running values `[i]x,`: kept while the index counts up from 1; a restart at [1] starts over.
  for (std::size_t at = text.find('['); at != std::string_view::npos; at = text.find('[', at + 1)) {
    auto s = text.substr(at + 1);
    const auto i = detail::logs::take_count(s);
    if (!i || s.empty() || s[0] != ']') continue;
    s.remove_prefix(1);
    if (s.empty() || detail::logs::is_space(s[0])) continue;
    const auto v = detail::logs::take_number(s);
    if (!v || s.empty() || s[0] != ',') continue;
    if (*i == 1) r.running.clear();
    if (*i == r.running.size() + 1) r.running.push_back(*v);
  }
  detail::logs::for_each_line(text, [&](std::string_view line) {
    if (line.find("calculating perplexity over") != std::string_view::npos)
      detail::logs::chunks_and_ctx(line, r.n_chunks, r.n_ctx);
    if (line.find("Unexpected negative standard deviation") != std::string_view::npos)
      r.negative_variance = true;
    constexpr std::string_view label = "Final estimate: PPL =";
    const auto at = line.find(label);
    if (at == std::string_view::npos) return;
    auto s = line.substr(at + label.size());
    const auto f = detail::logs::take_figure(s);
    if (f && f->has_error) {
      r.found_final = true;
      r.ppl = f->value;
      r.ppl_error = f->error;
    }
  });
  return r;
}

namespace detail::logs {

/// A per-chunk row of the KL-divergence table: chunk, PPL, ln ratio, KLD, RMS Δp, same top.
inline void kld_chunk_row(std::string_view body, kld_log& r) {
  auto s = body;
  kld_chunk c;
  const auto n = take_count(s);
  if (!n) return;
  c.chunk = *n;
  figure* parts[] = {&c.ppl, &c.ln_ratio, &c.kld, &c.rms_dp, &c.same_top};
  for (auto* p : parts) {
    const auto f = take_figure(s);
    if (!f || !f->has_error) return;
    *p = *f;
  }
  r.chunks.push_back(c);
}

/// A line of the "Perplexity statistics" block.
inline void kld_perplexity_line(std::string_view line, kld_log& r) {
  std::pair<std::string_view, std::optional<figure>*> labels[] = {
      {"Mean PPL(Q)/PPL(base)", &r.ratio},
      {"Mean PPL(Q)-PPL(base)", &r.difference},
      {"Mean ln(PPL(Q)/PPL(base))", &r.ln_ratio},
      {"Mean PPL(Q)", &r.ppl_q},
      {"Mean PPL(base)", &r.ppl_base}};
  for (auto& [label, dst] : labels) {
    const auto at = line.find(label);
    // "Mean PPL(Q)" is a prefix of two longer labels: require the ':' to follow it.
    if (at == std::string_view::npos) continue;
    auto rest = skip_spaces(line.substr(at + label.size()));
    if (rest.empty() || rest[0] != ':') continue;
    if (!*dst) *dst = labelled(line, label);
    return;
  }
  if (line.find("Cor(ln(PPL(Q)), ln(PPL(base)))") != std::string_view::npos) {
    const auto colon = line.rfind(':');
    auto rest = line.substr(colon + 1);
    if (const auto v = take_number(rest); v && !r.correlation) r.correlation = *v;
  }
}

/// A line of the "KL divergence statistics" block.
inline void kld_statistics_line(std::string_view line, kld_log& r) {
  if (line.find("Mean    KLD") != std::string_view::npos ||
      line.find("Mean KLD") != std::string_view::npos) {
    // Always printed with its uncertainty: a line without it is cut short.
    const auto f = labelled(line, "KLD");
    if (f && f->has_error && !r.kld_mean) {
      r.kld_mean = f;
      r.found = true;
    }
    return;
  }
  if (const auto q = quantile_line(line, "KLD")) r.kld_quantiles.push_back(*q);
}

/// A line of the "Token probability statistics" block.
inline void kld_probability_line(std::string_view line, kld_log& r) {
  // Δp is UTF-8 (CE 94 'p'); any spelling of the delta is accepted through its ':' form.
  if (line.find("Same top p") != std::string_view::npos) {
    if (!r.same_top) r.same_top = labelled(line, "Same top p");
    return;
  }
  if (skip_spaces(line).substr(0, 3) == "RMS") {
    if (!r.rms_dp) r.rms_dp = labelled(line, "RMS");
    return;
  }
  if (skip_spaces(line).substr(0, 4) == "Mean") {
    if (!r.dp_mean) r.dp_mean = labelled(line, "Mean");
    return;
  }
  constexpr std::string_view delta = "\xCE\x94p";
  if (const auto q = quantile_line(line, delta)) r.dp_quantiles.push_back(*q);
}

}  // namespace detail::logs

/// The KL-divergence statistics of llama-perplexity --kl-divergence (stdout, or merged streams).
inline kld_log parse_kld_log(std::string_view text) {
  namespace logs = detail::logs;
  kld_log r;
  // Each header line opens the block whose lines follow it.
  using line_reader = void (*)(std::string_view, kld_log&);
  static constexpr std::pair<std::string_view, line_reader> blocks[] = {
      {"====== Perplexity statistics", &logs::kld_perplexity_line},
      {"====== KL divergence statistics", &logs::kld_statistics_line},
      {"====== Token probability statistics", &logs::kld_probability_line}};
  line_reader in = nullptr;
  bool in_chunks = false;
  logs::for_each_line(text, [&](std::string_view line) {
    if (line.find("kl_divergence: computing over") != std::string_view::npos)
      logs::chunks_and_ctx(line, r.n_chunks, r.n_ctx);
    const auto body = logs::skip_spaces(line);
    if (body.substr(0, 5) == "chunk" && body.find("PPL") != std::string_view::npos) {
      in = nullptr, in_chunks = true;  // older builds repeat the header before every row
      return;
    }
    for (const auto& [header, reader] : blocks)
      if (line.find(header) != std::string_view::npos) {
        in = reader, in_chunks = false;
        return;
      }
    if (in_chunks) logs::kld_chunk_row(body, r);
    if (in) in(line, r);
  });
  return r;
}

/// llama-completion's generated text (from its stdout) and its stderr figures.
inline completion_log parse_completion_log(std::string_view out, std::string_view err) {
  completion_log r;
  // stdout is the generated pieces, then " [end of text]\n" when an end-of-generation token
  // stopped the run, then "\n\n".
  if (out.size() >= 2 && out.substr(out.size() - 2) == "\n\n") out.remove_suffix(2);
  // Also without its newline: a build or a capture that lost it still marks the end of text.
  for (std::string_view eot : {" [end of text]\n", " [end of text]"}) {
    if (out.size() >= eot.size() && out.substr(out.size() - eot.size()) == eot) {
      out.remove_suffix(eot.size());
      r.end_of_text = true;
      break;
    }
  }
  r.text = std::string(out);
  detail::logs::for_each_line(err, [&](std::string_view line) {
    if (line.find("failed to load model") != std::string_view::npos ||
        line.find("error loading model") != std::string_view::npos ||
        line.find("unable to load model") != std::string_view::npos)
      r.load_failed = true;
    if (const auto at = line.find("generate: n_ctx ="); at != std::string_view::npos) {
      r.generated = true;
      const auto np = line.find("n_predict =", at);
      if (np != std::string_view::npos) {
        auto s = line.substr(np + 11);
        // n_predict is -1 for "until the end"; only a count is kept.
        if (const auto v = detail::logs::take_count(s)) r.n_predict = *v;
      }
    }
    if (line.find("prompt eval time =") != std::string_view::npos) {
      const auto slash = line.find('/');
      if (slash != std::string_view::npos) {
        auto s = line.substr(slash + 1);
        if (const auto v = detail::logs::take_count(s)) r.prompt_tokens = *v;
      }
    } else if (const auto at = line.find("eval time ="); at != std::string_view::npos) {
      auto s = line.substr(at + 11);
      if (const auto ms = detail::logs::take_number(s)) r.eval_ms = *ms;
      const auto slash = s.find('/');
      if (slash != std::string_view::npos) {
        auto c = s.substr(slash + 1);
        if (const auto v = detail::logs::take_count(c); v && detail::logs::take_literal(c, "runs"))
          r.eval_runs = *v;
      }
    }
  });
  return r;
}

}  // namespace fq::llama_cpp
