// SPDX-License-Identifier: MIT
// The texts test1 and sweep write for people, in English and Traditional Chinese (the plan itself
// is written in Traditional Chinese), side by side in one table so a translation is checked and
// changed in one place. Texts with {} are fmt format strings; the arguments are the same in both
// languages.
#pragma once

#include <fmt/core.h>

#include <cstddef>
#include <fakequant/plan/decision.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "options.hpp"

namespace fqcli {

enum class msg {
  // Why an experiment stopped before the end.
  verification_failed,
  numerical_too_large,
  fake_does_not_load,
  // test1_summary.md.
  report_title,
  report_decision,
  report_stopped_early,
  must_pass_header,
  must_pass_rows,
  criteria_header,
  numerical_row,
  conversation_row,
  perplexity_row,
  kld_line,
  perplexity_understates,
  // The plan's words: decisions, bands, check results.
  word_go,
  word_caution,
  word_stop,
  word_optimistic,
  word_medium,
  word_pessimistic,
  word_pass,
  word_fail,
};

struct message_text {
  msg id;
  std::string_view en, zh_tw;
};

inline constexpr message_text messages[] = {
    {msg::verification_failed, "verification failed", "驗證失敗"},
    {msg::numerical_too_large, "the numerical difference is too large", "數值差異過大"},
    {msg::fake_does_not_load, "the fake-quantized model does not load", "假量化模型無法載入"},
    {msg::report_title, "# Test 1 — {} rounded to {}\n\n", "# 測試一 — {} 假量化為 {}\n\n"},
    {msg::report_decision, "**Decision: {}** (scenario: {})\n\n", "**決策：{}**（情境：{}）\n\n"},
    {msg::report_stopped_early, "Stopped early: {}\n\n", "提前停止：{}\n\n"},
    {msg::must_pass_header, "| must-pass check | result |\n|---|---|\n",
     "| 必須通過的檢查 | 結果 |\n|---|---|\n"},
    {msg::must_pass_rows,
     "| model loads | {} |\n| basic inference | {} |\n| no NaN or Inf | {} |\n| structure "
     "matches the original | {} |\n\n",
     "| 模型可正常載入 | {} |\n| 基本推理產生合理輸出 | {} |\n| 數值穩定（無 NaN 或 Inf） | {} |\n"
     "| 格式正確（結構與原模型一致） | {} |\n\n"},
    {msg::criteria_header, "| criterion | figure | rule | band |\n|---|---|---|---|\n",
     "| 標準 | 數據 | 規則 | 等級 |\n|---|---|---|---|\n"},
    {msg::numerical_row,
     "| numerical | mean rel. diff {:.4f} %, max {:.4f} % | mean < 1 %, max < 10 % | {} |\n",
     "| 數值差異 | 平均相對差異 {:.4f} %，最大 {:.4f} % | 平均 < 1 %，最大 < 10 % | {} |\n"},
    {msg::conversation_row,
     "| conversation | agreement {:.3f}, {} check failures | no failure, agreement ≥ 0.5 | {} |\n",
     "| 對話 | 一致度 {:.3f}，{} 項檢查未通過 | 無檢查未通過且一致度 ≥ 0.5 | {} |\n"},
    {msg::perplexity_row,
     "| perplexity | increase {:+.4f} % (95 % CI {:+.4f} … {:+.4f} %) | < 1 % ideal, < 5 % "
     "acceptable | {} |\n",
     "| 困惑度 | 增加 {:+.4f} %（95 % 信賴區間 {:+.4f} … {:+.4f} %） | < 1 % 理想，< 5 % 可接受 | "
     "{} |\n"},
    {msg::kld_line, "\nKL divergence {:.6f}, 99 % {:.6f}, max {:.6f}; same top token {:.3f} %.\n",
     "\nKL 散度 {:.6f}，99 % {:.6f}，最大 {:.6f}；首選詞元相同比例 {:.3f} %。\n"},
    {msg::perplexity_understates,
     "\nNote: perplexity went down while the KL divergence shows the output distribution "
     "changed; perplexity alone understates the change.\n",
     "\n注意：困惑度下降，但 KL 散度顯示輸出分佈已改變；僅看困惑度會低估變化。\n"},
    {msg::word_go, "GO", "GO（繼續進行測試二至四）"},
    {msg::word_caution, "CAUTION", "CAUTION（謹慎繼續或調整方法）"},
    {msg::word_stop, "STOP", "STOP（停止實驗，檢討方法）"},
    {msg::word_optimistic, "optimistic", "樂觀"},
    {msg::word_medium, "medium", "中等"},
    {msg::word_pessimistic, "pessimistic", "悲觀"},
    {msg::word_pass, "PASS", "通過"},
    {msg::word_fail, "FAIL", "未通過"},
};

// Each row stands at its id's place, so a look-up is an index.
static_assert([] {
  for (std::size_t i = 0; i < std::size(messages); ++i)
    if (static_cast<std::size_t>(messages[i].id) != i) return false;
  return std::size(messages) == static_cast<std::size_t>(msg::word_fail) + 1;
}());

inline std::string_view text(language l, msg id) {
  const auto& m = messages[static_cast<std::size_t>(id)];
  return l == language::zh_tw ? m.zh_tw : m.en;
}

/// The text formatted with `args`.
template <class... Args>
std::string text(language l, msg id, Args&&... args) {
  return fmt::format(fmt::runtime(text(l, id)), std::forward<Args>(args)...);
}

// The library's enums count from 0 in the order of these rows.
inline msg word_of(fq::plan::verdict v) {
  constexpr msg words[] = {msg::word_go, msg::word_caution, msg::word_stop};
  return words[static_cast<std::size_t>(v)];
}
inline msg word_of(fq::plan::scenario s) {
  constexpr msg words[] = {msg::word_optimistic, msg::word_medium, msg::word_pessimistic};
  return words[static_cast<std::size_t>(s)];
}

}  // namespace fqcli
