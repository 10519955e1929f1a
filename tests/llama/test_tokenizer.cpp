// SPDX-License-Identifier: MIT
// The tokenizer against llama.cpp's own ids, and its handling of broken vocabularies.
#include <fakequant/gguf.hpp>
#include <fakequant/llama/synth.hpp>
#include <fakequant/llama/tokenizer.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace gg = fq::gguf;

namespace {

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("tokenizer: ids equal llama.cpp's on every reference string and both WikiText files") {
  const auto ref = fq_test::require_shared("reference/tl-mini");
  if (ref.empty()) return;
  const auto f =
      gg::file::open((fq_test::shared_dir() / "testdata/models/tl-mini-f32.gguf").string());
  const auto tok = fq::llama::tokenizer::from_file(f);
  CHECK(tok.size() == 32000);
  CHECK(tok.bos() == 1);
  std::ifstream in(ref / "llama.cpp-reference.json");
  const auto j = nlohmann::json::parse(in);
  std::size_t strings = 0;
  for (const auto& s : j["tokenize"]["strings"]) {
    const auto text = s["text"].get<std::string>();
    CAPTURE(text);
    CHECK(tok.encode(text) == s["ids_with_bos"].get<std::vector<std::int32_t>>());
    // Round trip: the text comes back (the prefixed space is removed again).
    CHECK(tok.decode(tok.encode(text)) == text);
    ++strings;
  }
  CHECK(strings >= 10);
  for (const char* name : {"wiki.test.small.raw", "wiki.test.raw"}) {
    CAPTURE(std::string(name));
    const auto text = read_text(fq_test::shared_dir() / "testdata/text" / name);
    const auto expected = fq_test::read_token_ids(ref / ("tokens-" + std::string(name) + ".txt"));
    const auto ids = tok.encode(text);
    REQUIRE(ids.size() == expected.size());
    CHECK(ids == expected);
    MESSAGE(std::string(name) << ": " << ids.size() << " tokens equal llama.cpp's");
  }
}

TEST_CASE("tokenizer: Chinese decodes back to valid UTF-8 through byte tokens") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  if (model.empty()) return;
  const auto f = gg::file::open(model.string());
  const auto tok = fq::llama::tokenizer::from_file(f);
  const std::string text = "讓我們聊聊天吧。你最喜歡什麼季節？為什麼？";
  const auto ids = tok.encode(text);
  bool has_bytes = false;
  for (auto id : ids) has_bytes |= tok.type(id) == fq::llama::token_type::byte;
  CHECK(has_bytes);
  CHECK(tok.decode(ids) == text);
}

TEST_CASE("tokenizer: special tokens are parsed only when asked") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  if (model.empty()) return;
  const auto f = gg::file::open(model.string());
  const auto tok = fq::llama::tokenizer::from_file(f);
  const auto parsed = tok.encode("a</s>b", true, true);
  CHECK(std::find(parsed.begin(), parsed.end(), 2) != parsed.end());
  const auto plain = tok.encode("a</s>b", true, false);
  CHECK(std::find(plain.begin(), plain.end(), 2) == plain.end());
  CHECK(tok.encode("", true) == std::vector<std::int32_t>{1});
  CHECK(tok.encode("", false).empty());
}

TEST_CASE("tokenizer: a generated vocabulary tokenizes any UTF-8 text and decodes it back") {
  fq_test::temp_dir dir;
  fq::llama::synth(fq::llama::synth_preset("tiny"), {}, dir / "tiny.gguf");
  const auto f = gg::file::open((dir / "tiny.gguf").string());
  const auto tok = fq::llama::tokenizer::from_file(f);
  for (const std::string text :
       {"Hello, world!", "你好", "naïve café 🦙", "  two  spaces\n\ttab"}) {
    CAPTURE(text);
    const auto ids = tok.encode(text);
    for (auto id : ids) CHECK(static_cast<std::size_t>(id) < tok.size());
    CHECK(tok.decode(ids) == text);
  }
}

TEST_CASE("tokenizer: other tokenizers and inconsistent vocabularies are refused by key") {
  const auto gpt2 = fq_test::require_shared("testdata/gguf/ggml-vocab-gpt-2.gguf");
  if (!gpt2.empty()) {
    const auto f = gg::file::open(gpt2.string());
    CHECK_THROWS_WITH_AS(fq::llama::tokenizer::from_file(f),
                         doctest::Contains("unsupported tokenizer 'gpt2'"), fq::error);
  }
  fq_test::temp_dir dir;
  const std::vector<std::string> pieces{"<unk>", "<s>", "</s>", "a"};
  const std::vector<float> scores{0, 0, 0};  // one short
  gg::builder b;
  b.set("tokenizer.ggml.model", gg::value::of("llama"));
  b.set("tokenizer.ggml.tokens", gg::value::string_array<std::string>(pieces));
  b.set("tokenizer.ggml.scores", gg::value::array<float>(scores));
  b.write(dir / "bad.gguf");
  const auto f = gg::file::open((dir / "bad.gguf").string());
  CHECK_THROWS_WITH_AS(
      fq::llama::tokenizer::from_file(f),
      doctest::Contains(
          "'tokenizer.ggml.scores' must be an array of f32 with one entry per token (4)"),
      fq::error);
  gg::builder c;
  c.set("tokenizer.ggml.model", gg::value::of("llama"));
  c.set("tokenizer.ggml.tokens", gg::value::string_array<std::string>(pieces));
  c.set("tokenizer.ggml.bos_token_id", gg::value::of(std::uint32_t{99}));
  c.write(dir / "bos.gguf");
  const auto g = gg::file::open((dir / "bos.gguf").string());
  CHECK_THROWS_WITH_AS(fq::llama::tokenizer::from_file(g),
                       doctest::Contains("'tokenizer.ggml.bos_token_id' is not a token id"),
                       fq::error);
}
