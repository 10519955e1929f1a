// SPDX-License-Identifier: MIT
// Chat templates: the well-known ones, recognised from a model's tokenizer.chat_template, and the
// formatting of one turn of a conversation in them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "../error.hpp"
#include "../gguf/file.hpp"

namespace fq::llama {

enum class chat_template { none, zephyr, chatml, llama2 };

inline std::string_view to_string(chat_template t) noexcept {
  switch (t) {
    case chat_template::none:
      return "none";
    case chat_template::zephyr:
      return "zephyr";
    case chat_template::chatml:
      return "chatml";
    case chat_template::llama2:
      return "llama2";
  }
  return "none";
}

/// A template by name (none, zephyr — TinyLlama-1.1B-Chat's —, chatml, llama2).
inline chat_template chat_template_from_name(std::string_view name) {
  if (name == "none") return chat_template::none;
  if (name == "zephyr" || name == "tinyllama") return chat_template::zephyr;
  if (name == "chatml") return chat_template::chatml;
  if (name == "llama2") return chat_template::llama2;
  throw error(errc::invalid_argument, "",
              "unknown chat template '" + std::string(name) +
                  "' (known: auto, none, zephyr, chatml, llama2)");
}

/// The template a model's tokenizer.chat_template (Jinja text) is, or nullopt when it has none or
/// one this program does not know.
inline std::optional<chat_template> detect_chat_template(const gguf::file& f) {
  const auto t = f.find<std::string_view>("tokenizer.chat_template");
  if (!t) return std::nullopt;
  if (t->find("<|im_start|>") != std::string_view::npos) return chat_template::chatml;
  if (t->find("<|user|>") != std::string_view::npos &&
      t->find("<|assistant|>") != std::string_view::npos)
    return chat_template::zephyr;
  if (t->find("[INST]") != std::string_view::npos) return chat_template::llama2;
  return std::nullopt;
}

/// The text of one user turn followed by the assistant's cue. `first` says whether it opens the
/// conversation; `eos` is the model's end-of-sequence piece (what closes a turn in zephyr and
/// llama2). The result is tokenized with special tokens parsed.
inline std::string format_turn(chat_template t, std::string_view user, bool first,
                               std::string_view eos = "</s>") {
  std::string s;
  switch (t) {
    case chat_template::none:
      return std::string(user);
    case chat_template::zephyr:
      // The previous answer is closed by the model's own EOS before the next turn.
      if (!first) s += std::string(eos) + "\n";
      s += "<|user|>\n" + std::string(user) + std::string(eos) + "\n<|assistant|>\n";
      return s;
    case chat_template::chatml:
      if (!first) s += "<|im_end|>\n";
      s += "<|im_start|>user\n" + std::string(user) + "<|im_end|>\n<|im_start|>assistant\n";
      return s;
    case chat_template::llama2:
      if (!first) s += " " + std::string(eos) + "<s>";
      s += "[INST] " + std::string(user) + " [/INST]";
      return s;
  }
  return s;
}

}  // namespace fq::llama
