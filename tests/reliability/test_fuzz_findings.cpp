// SPDX-License-Identifier: MIT
// Inputs found mishandled by the fuzz targets (fuzz/) or by review, kept as tests once fixed.
#include <fakequant/gguf.hpp>
#include <fakequant/gguf/writer.hpp>
#include <fakequant/llama/tokenizer.hpp>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

std::vector<std::int32_t> concat(std::vector<std::vector<std::int32_t>> parts) {
  std::vector<std::int32_t> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

}  // namespace

TEST_CASE("fuzz findings: a stray UTF-8 continuation byte is one byte token and keeps the space") {
  const auto path = fq_test::require_shared("testdata/gguf/ggml-vocab-llama-spm.gguf");
  if (path.empty()) return;
  const auto f = fq::gguf::file::open(path.string());
  const auto tok = fq::llama::tokenizer::from_file(f);
  // 0xB4 was read as the lead byte of a two-byte character, swallowing the first byte of the next
  // space's U+2581, which then came back as three raw bytes instead of a space.
  const std::string text = "an\xb4 accents caf\xc3\xa9";
  const auto ids = tok.encode(text, false);
  const auto b4 = tok.find("<0xB4>");
  REQUIRE(b4 >= 0);
  // llama.cpp's symbols: "an", the lone byte (no piece holds it, so nothing merges across it),
  // then the rest as if it began the text (a space prefixed).
  CHECK(ids == concat({tok.encode("an", false), {b4}, tok.encode("accents caf\xc3\xa9", false)}));
  CHECK(tok.decode(ids) == text);
  for (const std::string lone : {"\x80", "\xbf", "x\x9f y"}) {
    CAPTURE(lone);
    CHECK(tok.decode(tok.encode(lone)) == lone);
  }
}

TEST_CASE("review findings: a byte token that is not <0xHH> is refused by name") {
  // "<0x-1>" was read by stoi as -1 and stored before the byte table (a write out of bounds);
  // "<0>" made token_to_piece throw std::out_of_range.
  fq_test::temp_dir dir;
  for (const std::string bad : {"<0x-1>", "<0>", "<0xZZ>", "<0x4"}) {
    CAPTURE(bad);
    const std::vector<std::string> pieces{"<unk>", "<s>", "</s>", bad, "a"};
    const std::vector<std::int32_t> types{2, 3, 3, 6, 1};
    fq::gguf::builder b;
    b.set("tokenizer.ggml.model", fq::gguf::value::of("llama"));
    b.set("tokenizer.ggml.tokens", fq::gguf::value::string_array<std::string>(pieces));
    b.set("tokenizer.ggml.token_type", fq::gguf::value::array<std::int32_t>(types));
    b.write(dir / "v.gguf");
    const auto f = fq::gguf::file::open((dir / "v.gguf").string());
    const std::string want = "token 3 has type byte but is '" + bad + "'";
    CHECK_THROWS_WITH_AS(fq::llama::tokenizer::from_file(f), doctest::Contains(want.c_str()),
                         fq::error);
  }
}
