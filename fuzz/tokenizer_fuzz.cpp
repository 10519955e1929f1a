// SPDX-License-Identifier: MIT
// libFuzzer target for the tokenizer, built from a real vocabulary (FQ_FUZZ_VOCAB, by default
// ../shared/testdata/gguf/ggml-vocab-llama-spm.gguf). The first input byte selects the options
// (bit 0 add_special, bit 1 parse_special, bit 2 special in decode); the rest is encoded as text
// and, read as little-endian int32 ids, decoded. Encoding must give ids of the vocabulary only and
// decode back to the text wherever SentencePiece can round-trip.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fakequant/gguf.hpp>
#include <fakequant/llama/tokenizer.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct vocab {
  fq::gguf::file file;
  fq::llama::tokenizer tok;
  bool all_bytes = true;                 // every byte has a <0xXX> token: no unknown fallback
  std::vector<std::string> user_pieces;  // always matched in the text, so they break round trips
};

std::unique_ptr<vocab> load() {
  const char* env = std::getenv("FQ_FUZZ_VOCAB");
  const std::string path =
      env && *env ? env : FQ_SHARED_DIR "/testdata/gguf/ggml-vocab-llama-spm.gguf";
  try {
    auto f = fq::gguf::file::open(path);
    auto t = fq::llama::tokenizer::from_file(f);
    auto v = std::unique_ptr<vocab>(new vocab{std::move(f), std::move(t), true, {}});
    for (int b = 0; b < 256; ++b) {
      char piece[8];
      std::snprintf(piece, sizeof piece, "<0x%02X>", b);
      if (v->tok.find(piece) < 0) v->all_bytes = false;
    }
    for (std::size_t i = 0; i < v->tok.size(); ++i) {
      const auto id = static_cast<std::int32_t>(i);
      if (v->tok.type(id) == fq::llama::token_type::user_defined)
        v->user_pieces.push_back(v->tok.piece(id));
    }
    std::fprintf(stderr, "tokenizer_fuzz: %s, %zu tokens, all byte tokens: %s\n", path.c_str(),
                 v->tok.size(), v->all_bytes ? "yes" : "no");
    return v;
  } catch (const fq::error& e) {
    std::fprintf(stderr, "tokenizer_fuzz: cannot load the vocabulary (set FQ_FUZZ_VOCAB): %s\n",
                 e.what());
    std::exit(1);
  }
}

const vocab& the_vocab() {
  static const std::unique_ptr<vocab> v = load();
  return *v;
}

// False when a character's lead byte, read with llama.cpp's lengths (a stray continuation byte
// stands alone), would reach into the U+2581 that stands for a space: the space then comes back
// as those bytes, not as a space. Valid UTF-8 never does that.
bool spaces_survive(std::string_view text) {
  std::string t = "\xe2\x96\x81";
  std::vector<bool> space_at(3, false);
  space_at[0] = true;
  for (char c : text) {
    space_at.push_back(c == ' ');
    t += c == ' ' ? std::string_view("\xe2\x96\x81") : std::string_view(&c, 1);
    if (c == ' ') space_at.insert(space_at.end(), {false, false});
  }
  std::size_t off = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (i == off) {
      const auto c = static_cast<unsigned char>(t[i]);
      off += c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    } else if (space_at[i]) {
      return false;
    }
  }
  return true;
}

[[noreturn]] void fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "tokenizer_fuzz: %s (text of %zu bytes)\n", what, text.size());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  the_vocab();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& v = the_vocab();
  const auto& tok = v.tok;
  const bool add_special = data[0] & 1, parse_special = data[0] & 2, decode_special = data[0] & 4;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  const auto ids = tok.encode(text, add_special, parse_special);
  for (auto id : ids)
    if (id < 0 || static_cast<std::size_t>(id) >= tok.size())
      fail("id outside the vocabulary", text);
  if (add_special && tok.add_bos() && (ids.empty() || ids.front() != tok.bos()))
    fail("no BOS first", text);
  if (add_special && tok.add_bos()) {
    const auto plain = tok.encode(text, false, parse_special);
    if (plain.size() + 1 > ids.size() || !std::equal(plain.begin(), plain.end(), ids.begin() + 1))
      fail("BOS changed the other ids", text);
  }

  // Round trip: the pieces of plain text are the text with spaces as U+2581 (plus the prefixed
  // one), so decoding gives it back unless the text itself holds U+2581, a special piece is
  // matched, a byte has no token, or broken UTF-8 splits a space's U+2581.
  bool round_trip = v.all_bytes && !parse_special && text.find("\xe2\x96\x81") == text.npos &&
                    spaces_survive(text);
  for (const auto& p : v.user_pieces)
    if (round_trip && text.find(p) != text.npos) round_trip = false;
  for (auto id : ids)
    if (id != tok.bos() && tok.type(id) != fq::llama::token_type::normal &&
        tok.type(id) != fq::llama::token_type::byte)
      round_trip = false;
  if (round_trip && tok.decode(ids) != text) fail("decode(encode(text)) differs from text", text);

  // Any ids, in range or not, decode without a crash.
  std::vector<std::int32_t> raw((size - 1) / 4);
  if (!raw.empty()) std::memcpy(raw.data(), data + 1, raw.size() * 4);
  const auto s = tok.decode(raw, decode_special);
  return s.size() == 0xFFFFFFFFu ? 1 : 0;
}
