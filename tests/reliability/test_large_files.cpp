// SPDX-License-Identifier: MIT
// Files over 4 GiB: a sparse GGUF with a tensor larger than 4 GiB and a small tensor whose offset
// lies beyond 2^32 is written by the library, read, copied by `fakequant copy` and fake-quantized
// by `fakequant quantize`, all without the holes turning into real disk blocks. Skipped, visibly,
// where the temporary folder's file system keeps no holes (ctest label large_files).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fakequant/format/float_format.hpp>
#include <fakequant/gguf.hpp>
#include <random>
#include <string>
#include <vector>

#include "support.hpp"

namespace gg = fq::gguf;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t four_gib = std::uint64_t{1} << 32;
constexpr std::uint64_t sentinel_block = 4096;
// Files this size would need 4 GiB of disk if their holes were written out; a sparse copy needs a
// few blocks. The bound leaves room for a file system's extent preallocation.
constexpr std::uint64_t max_disk_bytes = 16u << 20;

// Bytes the file occupies on disk.
std::uint64_t disk_bytes(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// True when files in `dir` can have holes that SEEK_HOLE reports: a 64 MiB file with one written
// byte at its end must use almost no disk and show a hole at its start.
bool sparse_files_work(const fs::path& dir) {
  const auto p = dir / "probe";
  const int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const off_t size = 64 << 20;
  const bool written = ::pwrite(fd, "x", 1, size - 1) == 1 && ::fsync(fd) == 0;
  const bool hole = written && ::lseek(fd, 0, SEEK_HOLE) == 0;
  ::close(fd);
  const bool small = written && disk_bytes(p) < (1u << 20);
  fs::remove(p);
  return hole && small;
}

// The non-zero blocks of the huge tensor, relative to its start: the first, the one at 4 GiB (its
// file offset is past 2^32), and the last.
std::vector<std::uint64_t> sentinel_offsets(std::uint64_t tensor_bytes) {
  return {0, four_gib, tensor_bytes - sentinel_block};
}

std::byte sentinel_byte(std::uint64_t offset_in_tensor) {
  return static_cast<std::byte>(((offset_in_tensor * 131) >> 3 & 0xFF) | 1);
}

// Fills `out` (bytes [offset, offset + size) of the huge tensor): zeros but in the sentinel blocks.
void produce_huge(std::uint64_t tensor_bytes, std::uint64_t offset, std::span<std::byte> out) {
  std::memset(out.data(), 0, out.size());
  for (auto s : sentinel_offsets(tensor_bytes))
    for (std::uint64_t k = std::max(s, offset);
         k < std::min(s + sentinel_block, offset + out.size()); ++k)
      out[k - offset] = sentinel_byte(k);
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct large_input {
  fs::path path;
  std::vector<float> before, after;  // the small tensors' values
  std::uint64_t huge_bytes = 0;
};

// header | "before" (64 f32) | "huge" (4 GiB + 64 KiB, mostly holes) | "after" (256 f32) | "tail"
large_input write_large_input(const fq_test::temp_dir& dir) {
  large_input in;
  in.path = dir / "large.gguf";
  in.before = random_floats(64, 1);
  in.after = random_floats(256, 2);
  const std::vector<std::uint64_t> huge_shape{4096, (four_gib >> 14) + 4};  // f32 rows of 16 KiB
  in.huge_bytes = huge_shape[0] * huge_shape[1] * 4;
  static const std::vector<float> tail(32, 1.5f);
  gg::builder b;
  b.set("general.architecture", gg::value::of("llama"));
  b.set("general.name", gg::value::of("sparse 4 GiB test"));
  b.add_tensor("before", gg::ggml_type::f32, {64},
               gg::tensor_source::bytes(std::as_bytes(std::span(in.before))));
  const auto huge_bytes = in.huge_bytes;
  b.add_tensor("huge", gg::ggml_type::f32, huge_shape,
               gg::tensor_source::produced(huge_bytes,
                                           [huge_bytes](std::uint64_t off, std::span<std::byte> o) {
                                             produce_huge(huge_bytes, off, o);
                                           }));
  b.add_tensor("after", gg::ggml_type::f32, {256},
               gg::tensor_source::bytes(std::as_bytes(std::span(in.after))));
  b.add_tensor("tail", gg::ggml_type::f32, {32},
               gg::tensor_source::bytes(std::as_bytes(std::span(tail))));
  b.write(in.path);
  return in;
}

std::vector<float> floats(const gg::file& f, std::string_view name) {
  const auto d = f.tensor_data(f.tensor(name));
  std::vector<float> v(d.size() / 4);
  std::memcpy(v.data(), d.data(), d.size());
  return v;
}

// The huge tensor's sentinel blocks hold their pattern, and 64 sampled places between them read
// zero; only those pages of the mapping are touched, not 4 GiB.
void check_huge(const gg::file& f, std::uint64_t huge_bytes) {
  const auto& t = f.tensor("huge");
  REQUIRE(t.bytes == huge_bytes);
  const auto d = f.tensor_data(t);
  for (auto s : sentinel_offsets(huge_bytes)) {
    CAPTURE(s);
    std::size_t wrong = 0;
    for (std::uint64_t k = s; k < s + sentinel_block; ++k) wrong += d[k] != sentinel_byte(k);
    CHECK(wrong == 0);
  }
  std::mt19937_64 rng(3);
  std::size_t nonzero = 0;
  for (int i = 0; i < 64; ++i) {
    const std::uint64_t at = sentinel_block + rng() % (huge_bytes - 3 * sentinel_block);
    if (at >= four_gib - 8 && at < four_gib + sentinel_block) continue;
    for (std::uint64_t k = at; k < at + 8; ++k) nonzero += d[k] != std::byte{0};
  }
  CHECK(nonzero == 0);
}

// Same layout and metadata as the input, the unchanged small tensors byte-identical.
void check_layout(const gg::file& in, const gg::file& out) {
  CHECK(out.file_size() == in.file_size());
  CHECK(out.data_offset() == in.data_offset());
  REQUIRE(out.tensors().size() == in.tensors().size());
  for (std::size_t i = 0; i < in.tensors().size(); ++i) {
    const auto& a = in.tensors()[i];
    const auto& b = out.tensors()[i];
    CHECK(a.name == b.name);
    CHECK(a.type == b.type);
    CHECK(a.ne == b.ne);
    CHECK(a.offset == b.offset);
    CHECK(a.file_offset == b.file_offset);
  }
  CHECK(out.metadata().size() == in.metadata().size());
  CHECK(*out.find<std::string_view>("general.name") == "sparse 4 GiB test");
}

bool same_bytes(const gg::file& a, const gg::file& b, std::string_view name) {
  const auto da = a.tensor_data(a.tensor(name)), db = b.tensor_data(b.tensor(name));
  return da.size() == db.size() && std::memcmp(da.data(), db.data(), da.size()) == 0;
}

}  // namespace

TEST_CASE("large files: a sparse GGUF over 4 GiB is read and copied and fake-quantized" *
          doctest::test_suite("large_files")) {
  fq_test::temp_dir dir;
  if (!sparse_files_work(dir.path())) {
    fq_test::skip("the temporary folder's file system keeps no holes: " +
                  dir.path().parent_path().string());
    return;
  }

  // The library's writer leaves the zero blocks of the produced tensor as holes.
  const auto in = write_large_input(dir);
  const auto f = gg::file::open(in.path.string());
  const auto in_disk = disk_bytes(in.path);
  MESSAGE("input: " << f.file_size() << " bytes, " << in_disk << " bytes on disk");
  CHECK(f.file_size() > four_gib + (64u << 10));
  CHECK(in_disk < max_disk_bytes);

  // 64-bit sizes and offsets as read back.
  REQUIRE(f.tensors().size() == 4);
  const auto& huge = f.tensor("huge");
  const auto& after = f.tensor("after");
  CHECK(huge.bytes > four_gib);
  CHECK(huge.elements == (four_gib >> 2) + 4 * 4096);
  CHECK(after.offset > four_gib);
  CHECK(after.file_offset > four_gib);
  CHECK(after.file_offset == f.data_offset() + after.offset);
  CHECK(f.tensor("tail").file_offset + 32 * 4 <= f.file_size());
  CHECK(f.gaps().empty());
  CHECK(floats(f, "before") == in.before);
  CHECK(floats(f, "after") == in.after);
  check_huge(f, in.huge_bytes);

  {  // fakequant copy keeps every byte and the holes
    const auto out = dir / "copy.gguf";
    const auto r = fq_test::run_program({"copy", in.path.string(), out.string()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    const auto c = gg::file::open(out.string());
    const auto out_disk = disk_bytes(out);
    MESSAGE("copy: " << c.file_size() << " bytes, " << out_disk << " bytes on disk");
    CHECK(out_disk < max_disk_bytes);
    check_layout(f, c);
    for (const char* name : {"before", "after", "tail"}) {
      CAPTURE(name);
      CHECK(same_bytes(f, c, name));
    }
    const auto head_in = f.mapping().bytes().first(static_cast<std::size_t>(f.data_offset()));
    const auto head_out = c.mapping().bytes().first(static_cast<std::size_t>(c.data_offset()));
    CHECK(std::memcmp(head_in.data(), head_out.data(), head_in.size()) == 0);
    check_huge(c, in.huge_bytes);
  }

  {  // fakequant quantize rounds the small tensor past 4 GiB and nothing else
    const auto out = dir / "bf16.gguf";
    const auto r = fq_test::run_program(
        {"quantize", in.path.string(), out.string(), "--tensors", "after", "--format", "bf16"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    const auto q = gg::file::open(out.string());
    const auto out_disk = disk_bytes(out);
    MESSAGE("quantized: " << q.file_size() << " bytes, " << out_disk << " bytes on disk");
    CHECK(out_disk < max_disk_bytes);
    check_layout(f, q);
    CHECK(q.tensor("after").file_offset > four_gib);
    fq::format::round_options opt;
    opt.overflow = fq::format::bf16.default_overflow();
    const auto got = floats(q, "after");
    REQUIRE(got.size() == in.after.size());
    std::size_t wrong = 0, changed = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const float want = fq::format::round_to(fq::format::bf16, in.after[i], opt, i);
      wrong += std::memcmp(&want, &got[i], 4) != 0;
      changed += got[i] != in.after[i];
    }
    CHECK(wrong == 0);
    CHECK(changed > 200);  // random normals are almost never exact in bf16
    CHECK(same_bytes(f, q, "before"));
    CHECK(same_bytes(f, q, "tail"));
    check_huge(q, in.huge_bytes);
  }
}
