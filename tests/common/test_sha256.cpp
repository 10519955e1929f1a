// SPDX-License-Identifier: MIT
// SHA-256 against the FIPS 180-4 examples and a message crossing block boundaries.
#include <fakequant/sha256.hpp>
#include <random>
#include <string>

#include "support.hpp"

namespace {
std::string digest(const std::string& s, std::size_t piece = 0) {
  fq::sha256 h;
  const auto b = std::as_bytes(std::span(s.data(), s.size()));
  if (piece == 0) {
    h.update(b);
  } else {
    for (std::size_t i = 0; i < b.size(); i += piece)
      h.update(b.subspan(i, std::min(piece, b.size() - i)));
  }
  return h.hex();
}
}  // namespace

TEST_CASE("sha256: FIPS 180-4 examples, any split of the input") {
  CHECK(digest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(digest(two_blocks) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  const std::string expect = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  CHECK(digest(million) == expect);
  CHECK(digest(million, 7) == expect);
  CHECK(digest(million, 64) == expect);
}

TEST_CASE("sha256: the CPU's SHA extensions give the portable code's digests") {
  std::mt19937 rng(11);
  std::string data(5000, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  const auto bytes = std::as_bytes(std::span(data.data(), data.size()));
  for (std::size_t n = 0; n <= data.size(); n += 37) {
    CAPTURE(n);
    fq::sha256 fast, portable(false);
    // Uneven pieces: whole blocks go straight through, the rest through the block buffer.
    for (std::size_t i = 0; i < n;) {
      const std::size_t piece = std::min<std::size_t>(1 + rng() % 300, n - i);
      fast.update(bytes.subspan(i, piece));
      portable.update(bytes.subspan(i, piece));
      i += piece;
    }
    CHECK(fast.hex() == portable.hex());
  }
}
