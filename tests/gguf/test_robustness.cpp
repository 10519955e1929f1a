// SPDX-License-Identifier: MIT
// A real file truncated everywhere and flipped at random: always refused cleanly or read
// consistently, never a crash (the CI runs these under AddressSanitizer and UBSan too).
#include <fakequant/gguf.hpp>
#include <random>
#include <set>
#include <vector>

#include "support.hpp"

namespace gg = fq::gguf;

namespace {

std::vector<std::byte> load(const std::filesystem::path& p) {
  const auto c = fq_test::read_bytes(p);
  std::vector<std::byte> b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

// Touches every value and every tensor byte, so a view that escaped validation would be caught by
// the sanitizers.
std::uint64_t walk(const gg::file& f) {
  std::uint64_t h = 0;
  for (const auto& e : f.metadata()) {
    const auto& v = e.value;
    h += e.key.size();
    if (v.is_array() && v.element_type() == gg::value_type::string) {
      for (std::uint64_t i = 0; i < v.size(); ++i) h += v.string_at(i)->size();
    } else if (v.is_array()) {
      for (std::uint64_t i = 0; i < v.size(); ++i)
        h += static_cast<std::uint64_t>(v.integer_at(i).value_or(1));
    } else if (auto s = v.get_string()) {
      h += s->size();
    }
  }
  for (const auto& t : f.tensors())
    for (auto b : f.tensor_data(t)) h += std::to_integer<unsigned>(b);
  return h;
}

}  // namespace

TEST_CASE(
    "gguf robustness: truncation at every offset of the first 4 KiB, every tensor boundary "
    "and 2,000 more is refused") {
  const auto path = fq_test::require_shared("testdata/gguf/llama-2-tiny-random.gguf");
  if (path.empty()) return;
  const auto bytes = load(path);
  const auto whole = gg::file::from_bytes(bytes, "whole");
  std::set<std::size_t> cuts;
  for (std::size_t n = 0; n < 4096; ++n) cuts.insert(n);
  for (const auto& t : whole.tensors())
    for (std::uint64_t at : {t.file_offset, t.file_offset + t.bytes})
      for (std::uint64_t d : {0, 1, 2})
        if (at >= d) cuts.insert(at - d);
  cuts.insert(whole.header_size());
  cuts.insert(whole.data_offset());
  const std::size_t spread = 2000;
  for (std::size_t k = 1; k <= spread; ++k) cuts.insert(k * (bytes.size() - 1) / (spread + 1));
  std::erase_if(cuts, [&](std::size_t n) { return n >= bytes.size(); });
  CHECK(cuts.size() >= 6000);
  std::size_t refused = 0;
  for (auto n : cuts) {
    try {
      (void)gg::file::from_bytes(std::span(bytes).first(n), "cut.gguf");
      FAIL_CHECK("accepted a truncation at " << n);
    } catch (const fq::error& e) {
      ++refused;
      if (n >= 4) CHECK(e.code() != fq::errc::bad_magic);
    }
  }
  CHECK(refused == cuts.size());
}

TEST_CASE("gguf robustness: a truncated file given to the program is refused with exit 1") {
  const auto path = fq_test::require_shared("testdata/gguf/llama-2-tiny-random.gguf");
  if (path.empty()) return;
  const auto bytes = load(path);
  fq_test::temp_dir dir;
  for (std::size_t n : {std::size_t{3}, std::size_t{100}, std::size_t{724400}, bytes.size() - 1}) {
    CAPTURE(n);
    fq_test::write_bytes(dir / "cut.gguf", bytes.data(), n);
    const auto r =
        fq_test::run_program({"copy", (dir / "cut.gguf").string(), (dir / "out.gguf").string()});
    CHECK(r.status == 1);
    CHECK(r.err.find("cut.gguf") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "out.gguf"));
  }
}

TEST_CASE("gguf robustness: random byte flips in the header are refused or read consistently") {
  const auto path = fq_test::require_shared("testdata/gguf/llama-2-tiny-random.gguf");
  if (path.empty()) return;
  const auto original = load(path);
  const auto whole = gg::file::from_bytes(original, "whole");
  const auto header = whole.header_size();
  std::mt19937_64 rng(20261124);
  std::size_t refused = 0, accepted = 0;
  auto bytes = original;
  for (int round = 0; round < 3000; ++round) {
    // Flip 1–4 bytes; half the time within the first 128 bytes (counts, first keys), where the
    // structure is densest, else anywhere in the header (string lengths deep in the vocabulary).
    const int flips = 1 + static_cast<int>(rng() % 4);
    std::vector<std::size_t> where;
    for (int k = 0; k < flips; ++k) {
      const auto at = (rng() % 2) ? rng() % 128 : rng() % header;
      where.push_back(static_cast<std::size_t>(at));
      bytes[where.back()] ^= static_cast<std::byte>(1 + rng() % 255);
    }
    try {
      const auto f = gg::file::from_bytes(bytes, "flipped.gguf");
      (void)walk(f);
      // Consistent: re-serializing what was read gives back the header bytes that were read
      // (unless tensors now sit with gaps, which the writer would pack).
      const auto h = gg::builder::from(f).header();
      if (f.gaps().empty()) {
        REQUIRE(h.size() == f.header_size());
        CHECK(std::memcmp(h.data(), bytes.data(), h.size()) == 0);
      }
      ++accepted;
    } catch (const fq::error& e) {
      CHECK(e.file() == "flipped.gguf");
      ++refused;
    }
    for (auto at : where) bytes[at] = original[at];
  }
  MESSAGE("byte flips: " << refused << " refused, " << accepted << " read consistently");
  CHECK(refused > 0);
  CHECK(accepted > 0);
}
