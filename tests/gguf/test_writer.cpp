// SPDX-License-Identifier: MIT
// The writer: replacing, adding and removing tensors, changing metadata, alignment, atomic output.
#include <sys/stat.h>

#include <fakequant/gguf.hpp>
#include <string>
#include <vector>

#include "gguf/raw_gguf.hpp"
#include "support.hpp"

namespace gg = fq::gguf;
namespace fs = std::filesystem;

namespace {

std::vector<float> iota_floats(std::size_t n, float start) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = start + static_cast<float>(i);
  return v;
}
std::span<const std::byte> as_bytes(const std::vector<float>& v) {
  return std::as_bytes(std::span(v));
}

fs::path small_model(const fq_test::temp_dir& dir, std::vector<std::vector<float>>& data) {
  gg::builder b;
  b.set("general.architecture", gg::value::of("llama"));
  data = {iota_floats(8, 0), iota_floats(24, 100), iota_floats(5, 1000)};
  b.add_tensor("a", gg::ggml_type::f32, {8}, gg::tensor_source::bytes(as_bytes(data[0])));
  b.add_tensor("b", gg::ggml_type::f32, {8, 3}, gg::tensor_source::bytes(as_bytes(data[1])));
  b.add_tensor("c", gg::ggml_type::f32, {5}, gg::tensor_source::bytes(as_bytes(data[2])));
  const auto p = dir / "in.gguf";
  b.write(p);
  return p;
}

std::vector<float> floats(const gg::file& f, std::string_view name) {
  const auto d = f.tensor_data(f.tensor(name));
  std::vector<float> v(d.size() / 4);
  std::memcpy(v.data(), d.data(), d.size());
  return v;
}

bool leftovers(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".fqtmp-") != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("gguf writer: replace, add and remove tensors - change metadata") {
  fq_test::temp_dir dir;
  std::vector<std::vector<float>> data;
  const auto in = small_model(dir, data);
  const auto before = fq_test::read_bytes(in);
  const auto f = gg::file::open(in.string());

  auto b = gg::builder::from(f);
  const auto repl = iota_floats(24, -50);
  b.replace_tensor("b", gg::ggml_type::f32, {8, 3}, gg::tensor_source::bytes(as_bytes(repl)));
  // A produced tensor, computed in chunks.
  b.add_tensor("d", gg::ggml_type::f32, {16},
               gg::tensor_source::produced(64, [](std::uint64_t off, std::span<std::byte> out) {
                 for (std::size_t i = 0; i < out.size(); ++i)
                   out[i] = static_cast<std::byte>((off + i) & 0xFF);
               }));
  CHECK(b.remove_tensor("a"));
  CHECK_FALSE(b.remove_tensor("a"));
  b.set("general.name", gg::value::of("changed"));
  b.set("general.architecture", gg::value::of("llama2"));
  CHECK(b.erase("general.name"));
  b.set("general.alignment", gg::value::of(std::uint32_t{64}));
  b.write(dir / "out.gguf");

  const auto g = gg::file::open((dir / "out.gguf").string());
  CHECK(g.alignment() == 64);
  CHECK(g.get<std::string_view>("general.architecture") == "llama2");
  CHECK_FALSE(g.find_entry("general.name"));
  REQUIRE(g.tensors().size() == 3);
  CHECK(g.tensors()[0].name == "b");
  CHECK(g.tensors()[1].name == "c");
  CHECK(g.tensors()[2].name == "d");
  for (const auto& t : g.tensors()) CHECK(t.file_offset % 64 == 0);
  CHECK(floats(g, "b") == repl);
  CHECK(floats(g, "c") == data[2]);
  const auto d = g.tensor_data(g.tensor("d"));
  for (std::size_t i = 0; i < d.size(); ++i) CHECK(std::to_integer<std::size_t>(d[i]) == i);
  CHECK(fq_test::read_bytes(in) == before);  // the input is never touched
  CHECK_FALSE(leftovers(dir.path()));
}

TEST_CASE("gguf writer: refuses to overwrite its input, by name or through a hard link") {
  fq_test::temp_dir dir;
  std::vector<std::vector<float>> data;
  const auto in = small_model(dir, data);
  const auto before = fq_test::read_bytes(in);
  const auto f = gg::file::open(in.string());
  const auto b = gg::builder::from(f);
  try {
    b.write(in);
    FAIL("overwrote the input");
  } catch (const fq::error& e) {
    CHECK(e.code() == fq::errc::same_file);
  }
  fs::create_hard_link(in, dir / "link.gguf");
  CHECK_THROWS_AS(b.write(dir / "link.gguf"), fq::error);
  CHECK(fq_test::read_bytes(in) == before);

  const auto r = fq_test::run_program({"copy", in.string(), in.string()});
  CHECK(r.status == 1);
  CHECK(r.err.find("refusing to overwrite") != std::string::npos);
  CHECK(fq_test::read_bytes(in) == before);
  CHECK_FALSE(leftovers(dir.path()));
}

TEST_CASE("gguf writer: a failure midway leaves neither the output nor a temporary file") {
  fq_test::temp_dir dir;
  gg::builder b;
  b.add_tensor("x", gg::ggml_type::f32, {1u << 22},
               gg::tensor_source::produced(16u << 20, [](std::uint64_t off, std::span<std::byte>) {
                 if (off > 0) throw std::runtime_error("producer failed");
               }));
  CHECK_THROWS_WITH_AS(b.write(dir / "out.gguf"), "producer failed", std::runtime_error);
  CHECK_FALSE(fs::exists(dir / "out.gguf"));
  CHECK_FALSE(leftovers(dir.path()));
}

TEST_CASE("gguf writer: invalid tensors and outputs are refused with clear errors") {
  fq_test::temp_dir dir;
  gg::builder b;
  std::vector<float> v(8);
  const auto src = gg::tensor_source::bytes(as_bytes(v));
  CHECK_THROWS_AS(b.add_tensor("", gg::ggml_type::f32, {8}, src), fq::error);
  CHECK_THROWS_AS(b.add_tensor("t", gg::ggml_type::f32, {4}, src), fq::error);   // size mismatch
  CHECK_THROWS_AS(b.add_tensor("t", gg::ggml_type::q8_0, {8}, src), fq::error);  // block size
  CHECK_THROWS_AS(b.add_tensor("t", gg::ggml_type::f32, {8, 0}, src), fq::error);
  CHECK_THROWS_AS(b.add_tensor("t", gg::ggml_type::q4_2, {32}, src), fq::error);
  b.add_tensor("t", gg::ggml_type::f32, {8}, src);
  CHECK_THROWS_AS(b.add_tensor("t", gg::ggml_type::f32, {8}, src), fq::error);  // duplicate
  CHECK_THROWS_AS(b.replace_tensor("u", gg::ggml_type::f32, {8}, src), fq::error);
  try {
    b.write(dir / "missing" / "out.gguf");
    FAIL("wrote into a missing folder");
  } catch (const fq::error& e) {
    CHECK(e.code() == fq::errc::not_found);
    CHECK(std::string(e.what()).find("does not exist") != std::string::npos);
  }
  CHECK_THROWS_AS(b.write(dir.path()), fq::error);  // a directory
  b.set("general.alignment", gg::value::of(std::uint64_t{32}));
  CHECK_THROWS_AS(b.write(dir / "bad.gguf"), fq::error);
  CHECK_FALSE(leftovers(dir.path()));
}

TEST_CASE("gguf writer: a file with gaps between tensors is re-packed without them") {
  fq_test::temp_dir dir;
  fq_test::raw_gguf r;
  r.header(2, 0).tensor("a", {8}, 0, 0).tensor("b", {8}, 0, 96).pad().zeros(128);
  fq_test::write_bytes(dir / "gap.gguf", r.bytes().data(), r.size());
  const auto f = gg::file::open((dir / "gap.gguf").string());
  CHECK(f.gaps().size() == 1);
  gg::builder::from(f).write(dir / "packed.gguf");
  const auto g = gg::file::open((dir / "packed.gguf").string());
  CHECK(g.gaps().empty());
  CHECK(g.tensor("b").offset == 32);
}

TEST_CASE("gguf writer: output permissions follow the umask like an ordinary create") {
  fq_test::temp_dir dir;
  gg::builder b;
  b.write(dir / "p.gguf");
  struct stat st {};
  REQUIRE(::stat((dir / "p.gguf").c_str(), &st) == 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  CHECK((st.st_mode & 0777) == (0666 & ~mask));
}
