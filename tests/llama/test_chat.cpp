// SPDX-License-Identifier: MIT
// Chat templates recognised from the real templates' text (added to a copy of a model with the
// project's own writer), and the turns they produce.
#include <fakequant/gguf.hpp>
#include <fakequant/llama/chat.hpp>
#include <fakequant/llama/synth.hpp>

#include "support.hpp"

namespace gg = fq::gguf;

namespace {
// Excerpts of the Jinja templates the models ship (TinyLlama-1.1B-Chat-v1.0, ChatML models,
// Llama-2-chat), enough of each to recognise it.
constexpr const char* tinyllama_template =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + "
    "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' "
    "+ message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ "
    "'<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and "
    "add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";
constexpr const char* chatml_template =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' "
    "}}{% endif %}";
constexpr const char* llama2_template =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% endif %}{% "
    "for message in loop_messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
    "message['content'] | trim + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + "
    "message['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}";

std::optional<fq::llama::chat_template> detect_in_copy(const fq_test::temp_dir& dir,
                                                       const char* tmpl) {
  const auto base = dir / "base.gguf";
  if (!std::filesystem::exists(base)) fq::llama::synth(fq::llama::synth_preset("tiny"), {}, base);
  const auto f = gg::file::open(base.string());
  auto b = gg::builder::from(f);
  if (tmpl) b.set("tokenizer.chat_template", gg::value::of(tmpl));
  b.write(dir / "chat.gguf");
  const auto g = gg::file::open((dir / "chat.gguf").string());
  return fq::llama::detect_chat_template(g);
}
}  // namespace

TEST_CASE("chat: the well-known templates are recognised from the model's own template text") {
  fq_test::temp_dir dir;
  CHECK(detect_in_copy(dir, tinyllama_template) == fq::llama::chat_template::zephyr);
  CHECK(detect_in_copy(dir, chatml_template) == fq::llama::chat_template::chatml);
  CHECK(detect_in_copy(dir, llama2_template) == fq::llama::chat_template::llama2);
  CHECK_FALSE(detect_in_copy(dir, "{{ messages }}").has_value());
  CHECK_FALSE(detect_in_copy(dir, nullptr).has_value());
}

TEST_CASE("chat: turns are formatted as the templates render them") {
  using fq::llama::chat_template;
  using fq::llama::format_turn;
  CHECK(format_turn(chat_template::zephyr, "Hi", true) == "<|user|>\nHi</s>\n<|assistant|>\n");
  CHECK(format_turn(chat_template::zephyr, "Next", false) ==
        "</s>\n<|user|>\nNext</s>\n<|assistant|>\n");
  CHECK(format_turn(chat_template::chatml, "Hi", true) ==
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  CHECK(format_turn(chat_template::llama2, "Hi", true) == "[INST] Hi [/INST]");
  CHECK(format_turn(chat_template::none, "Hi", true) == "Hi");
  CHECK_THROWS_AS(fq::llama::chat_template_from_name("vicuna"), fq::error);
}
