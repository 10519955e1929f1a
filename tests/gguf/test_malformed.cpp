// SPDX-License-Identifier: MIT
// Every malformed-input case of the GGUF checklist (../shared/docs/gguf.md §3 and the cases ggml
// misses), crafted byte by byte: each must be refused with the right code, at the right place, and
// by the program with exit status 1 and a one-line message.
#include <fakequant/gguf.hpp>
#include <functional>
#include <string>
#include <vector>

#include "gguf/raw_gguf.hpp"
#include "support.hpp"

using fq::errc;
using fq_test::raw_gguf;

namespace {

struct crafted {
  std::string name;
  std::function<raw_gguf()> make;
  errc code;
  std::string says;  // a fragment the message must contain
};

constexpr std::uint32_t f32 = 0, q8_0 = 8;

raw_gguf one_tensor(std::initializer_list<std::uint64_t> ne, std::uint32_t type,
                    std::uint64_t offset = 0, std::size_t data = 64) {
  raw_gguf r;
  r.header(1, 0).tensor("t", ne, type, offset).pad().zeros(data);
  return r;
}

std::vector<crafted> cases() {
  return {
      {"empty file", [] { return raw_gguf{}; }, errc::bad_magic, "empty file"},
      {"short magic", [] { return raw_gguf{}.put("GG", 2); }, errc::bad_magic, "not a GGUF"},
      {"wrong magic", [] { return raw_gguf{}.put("GGML", 4).u32(3).u64(0).u64(0); },
       errc::bad_magic, "magic"},
      {"FUGG magic", [] { return raw_gguf{}.put("FUGG", 4).u32(3).u64(0).u64(0); }, errc::bad_magic,
       "magic"},
      {"no version", [] { return raw_gguf{}.put("GGUF", 4).u8(3); }, errc::truncated, "version"},
      {"version 0", [] { return raw_gguf{}.header(0, 0, 0); }, errc::unsupported_version,
       "version 0"},
      {"version 1", [] { return raw_gguf{}.header(0, 0, 1); }, errc::unsupported_version, "v1"},
      {"version 4", [] { return raw_gguf{}.header(0, 0, 4); }, errc::unsupported_version,
       "version 4"},
      {"big-endian", [] { return raw_gguf{}.header(0, 0, 0x03000000); }, errc::big_endian,
       "big-endian"},
      {"tensor count beyond file", [] { return raw_gguf{}.header(~0ull >> 1, 0); },
       errc::limit_exceeded, "tensor count"},
      {"negative tensor count", [] { return raw_gguf{}.header(~0ull, 0); }, errc::limit_exceeded,
       "tensor count"},
      {"metadata count beyond file", [] { return raw_gguf{}.header(0, 1ull << 40); },
       errc::limit_exceeded, "metadata count"},
      {"key length beyond file", [] { return raw_gguf{}.header(0, 1).u64(1ull << 40).zeros(16); },
       errc::truncated, "length"},
      {"empty key", [] { return raw_gguf{}.header(0, 1).kv_u32("", 1); }, errc::bad_key,
       "empty metadata key"},
      {"duplicate key", [] { return raw_gguf{}.header(0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2); },
       errc::bad_key, "duplicate"},
      {"key not UTF-8", [] { return raw_gguf{}.header(0, 1).kv_u32("a\xff", 1); }, errc::bad_key,
       "UTF-8"},
      {"invalid value type", [] { return raw_gguf{}.header(0, 1).str("k").u32(13).u32(0); },
       errc::bad_value_type, "invalid value type 13"},
      {"array of arrays",
       [] { return raw_gguf{}.header(0, 1).str("k").u32(9).u32(9).u64(1).u32(4).u64(0); },
       errc::bad_value_type, "element type 9"},
      {"array element type invalid",
       [] { return raw_gguf{}.header(0, 1).str("k").u32(9).u32(99).u64(0); }, errc::bad_value_type,
       "element type 99"},
      {"array count beyond file",
       [] { return raw_gguf{}.header(0, 1).str("k").u32(9).u32(4).u64(1ull << 61).zeros(8); },
       errc::truncated, "array"},
      {"array count times size overflows",
       [] { return raw_gguf{}.header(0, 1).str("k").u32(9).u32(10).u64(1ull << 62).zeros(8); },
       errc::truncated, "array"},
      {"string array count beyond file",
       [] { return raw_gguf{}.header(0, 1).str("k").u32(9).u32(8).u64(1000).str("x"); },
       errc::truncated, "array"},
      {"string length beyond file",
       [] { return raw_gguf{}.header(0, 1).str("k").u32(8).u64(1ull << 50).zeros(4); },
       errc::truncated, "length"},
      {"bool not 0 or 1", [] { return raw_gguf{}.header(0, 1).str("k").u32(7).u8(2); },
       errc::bad_value_type, "bool"},
      {"value truncated", [] { return raw_gguf{}.header(0, 1).str("k").u32(10).u32(0); },
       errc::truncated, "metadata value"},
      {"alignment not u32",
       [] { return raw_gguf{}.header(0, 1).str("general.alignment").u32(10).u64(32); },
       errc::bad_alignment, "must be u32"},
      {"alignment zero", [] { return raw_gguf{}.header(0, 1).kv_u32("general.alignment", 0); },
       errc::bad_alignment, "power of two"},
      {"alignment not power of two",
       [] { return raw_gguf{}.header(0, 1).kv_u32("general.alignment", 48); }, errc::bad_alignment,
       "power of two"},
      {"alignment unbounded",
       [] { return raw_gguf{}.header(0, 1).kv_u32("general.alignment", 1u << 31); },
       errc::bad_alignment, "power of two"},
      {"empty tensor name", [] { return raw_gguf{}.header(1, 0).tensor("", {4}, f32, 0); },
       errc::bad_tensor, "empty tensor name"},
      {"tensor name of 64 bytes",
       [] { return raw_gguf{}.header(1, 0).tensor(std::string(64, 'n'), {4}, f32, 0); },
       errc::bad_tensor, "exceeds 63"},
      {"tensor name not UTF-8",
       [] { return raw_gguf{}.header(1, 0).tensor("bad\xc3", {4}, f32, 0); }, errc::bad_tensor,
       "UTF-8"},
      {"duplicate tensor name",
       [] {
         return raw_gguf{}
             .header(2, 0)
             .tensor("t", {8}, f32, 0)
             .tensor("t", {8}, f32, 32)
             .pad()
             .zeros(64);
       },
       errc::bad_tensor, "duplicate tensor"},
      {"five dimensions",
       [] {
         return raw_gguf{}.header(1, 0).tensor("t", {1, 1, 1, 1, 1}, f32, 0);
       },
       errc::bad_tensor, "5 dimensions"},
      {"zero dimension",
       [] {
         return one_tensor({4, 0}, f32);
       },
       errc::bad_tensor, "is zero"},
      {"negative dimension",
       [] {
         return one_tensor({4, ~0ull}, f32);
       },
       errc::bad_tensor, "negative"},
      // ne = (INT64_MAX, 2): the product wraps negative and slips past ggml's nelements > 0 check.
      {"element count overflow bypass",
       [] {
         return one_tensor({~0ull >> 1, 2}, f32);
       },
       errc::size_overflow, "element count overflows"},
      {"element count overflow over 4 dims",
       [] {
         return one_tensor({1ull << 20, 1ull << 20, 1ull << 20, 1ull << 20}, f32);
       },
       errc::size_overflow, "element count"},
      {"byte size overflow", [] { return one_tensor({1ull << 62}, f32); }, errc::size_overflow,
       "byte size"},
      {"unknown tensor type", [] { return one_tensor({4}, 43); }, errc::bad_tensor,
       "unknown ggml type 43"},
      {"removed tensor type Q4_2", [] { return one_tensor({32}, 4); }, errc::bad_tensor,
       "removed ggml type Q4_2"},
      {"removed tensor type Q4_0_4_4", [] { return one_tensor({32}, 31); }, errc::bad_tensor,
       "removed"},
      {"row not a multiple of the block", [] { return one_tensor({33}, q8_0); }, errc::bad_tensor,
       "not a multiple"},
      {"unaligned tensor offset",
       [] { return raw_gguf{}.header(1, 0).tensor("t", {4}, f32, 8).pad().zeros(64); },
       errc::bad_layout, "not a multiple of the alignment"},
      {"tensor data beyond end of file", [] { return one_tensor({64}, f32, 0, 255); },
       errc::truncated, "beyond the end"},
      {"tensor offset beyond end of file", [] { return one_tensor({4}, f32, 1ull << 40); },
       errc::truncated, "beyond the end"},
      // An aligned offset near 2^64: data start + offset wraps unless checked (GGML_PAD wrap).
      {"padding overflow", [] { return one_tensor({4}, f32, ~0ull - 31); }, errc::truncated,
       "beyond the end"},
      {"data section past end of file",
       [] { return raw_gguf{}.header(1, 0).tensor("t", {4}, f32, 0); }, errc::truncated,
       "before the tensor data section"},
      {"overlapping tensors",
       [] {
         return raw_gguf{}
             .header(2, 0)
             .tensor("a", {16}, f32, 0)
             .tensor("b", {8}, f32, 32)
             .pad()
             .zeros(96);
       },
       errc::bad_layout, "overlaps"},
      {"info truncated",
       [] { return raw_gguf{}.header(1, 0).str("a_tensor_with_a_long_name").u32(1); },
       errc::truncated, "tensor"},
  };
}

}  // namespace

TEST_CASE("gguf: every crafted malformed case is refused with its code and a clear message") {
  for (const auto& c : cases()) {
    CAPTURE(c.name);
    const auto r = c.make();
    try {
      (void)fq::gguf::file::from_bytes(r.bytes(), "crafted.gguf");
      FAIL("accepted: " << c.name);
    } catch (const fq::error& e) {
      CHECK(e.code() == c.code);
      CHECK(e.file() == "crafted.gguf");
      CHECK(std::string(e.what()).find(c.says) != std::string::npos);
      CHECK(std::string(e.what()).find('\n') == std::string::npos);
      if (c.code != errc::bad_magic) CHECK(e.has_offset());
      if (e.has_offset()) CHECK(e.offset() <= r.size());
    }
  }
}

TEST_CASE("gguf: the program refuses every crafted case with exit 1 and one line naming the file") {
  fq_test::temp_dir dir;
  for (const auto& c : cases()) {
    CAPTURE(c.name);
    const auto r = c.make();
    const auto path = dir / "crafted.gguf";
    fq_test::write_bytes(path, r.bytes().data(), r.size());
    const auto res = fq_test::run_program({"inspect", path.string()});
    CHECK(res.status == 1);
    CHECK(res.out.empty());
    CHECK(std::count(res.err.begin(), res.err.end(), '\n') == 1);
    CHECK(res.err.find(path.string()) != std::string::npos);
    CHECK(res.err.find(c.says) != std::string::npos);
  }
}

TEST_CASE("gguf: the damaged real files are refused cleanly") {
  const auto dir = fq_test::require_shared("testdata/gguf-corrupted");
  if (dir.empty()) return;
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    CAPTURE(entry.path());
    CHECK_THROWS_AS((void)fq::gguf::file::open(entry.path().string()), fq::error);
    const auto res = fq_test::run_program({"inspect", entry.path().string()});
    CHECK(res.status == 1);
    CHECK(std::count(res.err.begin(), res.err.end(), '\n') == 1);
    ++n;
  }
  CHECK(n >= 3);
}

TEST_CASE("gguf: gaps between aligned tensors are read and reported") {
  raw_gguf r;
  r.header(2, 0).tensor("a", {8}, f32, 0).tensor("b", {8}, f32, 96).pad().zeros(128);
  const auto f = fq::gguf::file::from_bytes(r.bytes(), "gap.gguf");
  REQUIRE(f.gaps().size() == 1);
  CHECK(f.gaps()[0].file_offset == f.data_offset() + 32);
  CHECK(f.gaps()[0].bytes == 64);
  CHECK(f.tensor("b").file_offset == f.data_offset() + 96);
}

TEST_CASE("gguf: a scalar tensor (no dimensions) and alignment 1 are valid") {
  raw_gguf r;
  r.header(1, 1).kv_u32("general.alignment", 1).tensor("s", {}, f32, 0).zeros(4);
  const auto f = fq::gguf::file::from_bytes(r.bytes(), "scalar.gguf");
  CHECK(f.alignment() == 1);
  CHECK(f.tensors()[0].elements == 1);
  CHECK(f.tensors()[0].bytes == 4);
}
