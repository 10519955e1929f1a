// SPDX-License-Identifier: MIT
// Inputs the fuzz targets (fuzz/) found mishandled, kept as tests once fixed.
#include <fakequant/gguf.hpp>
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
