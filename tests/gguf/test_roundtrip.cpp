// SPDX-License-Identifier: MIT
// Writer → reader round trips over every value type and every tensor type, and byte-identical
// copies of real files written by other tools.
#include <fakequant/gguf.hpp>
#include <random>
#include <string>
#include <vector>

#include "support.hpp"

namespace gg = fq::gguf;

namespace {

// A file with one metadata entry of every scalar type, an array of every element type (and an
// empty one), and one tensor of every valid ggml type, filled with random bytes.
gg::builder every_type(std::vector<std::vector<std::byte>>& storage) {
  gg::builder b;
  b.set("t.u8", gg::value::of(std::uint8_t{200}));
  b.set("t.i8", gg::value::of(std::int8_t{-100}));
  b.set("t.u16", gg::value::of(std::uint16_t{60000}));
  b.set("t.i16", gg::value::of(std::int16_t{-30000}));
  b.set("t.u32", gg::value::of(std::uint32_t{4000000000u}));
  b.set("t.i32", gg::value::of(std::int32_t{-2000000000}));
  b.set("t.f32", gg::value::of(1.5f));
  b.set("t.bool", gg::value::of(true));
  b.set("t.string", gg::value::of("héllo, 世界"));
  b.set("t.u64", gg::value::of(std::uint64_t{1} << 63));
  b.set("t.i64", gg::value::of(std::int64_t{-1} << 62));
  b.set("t.f64", gg::value::of(-2.25));
  const std::vector<std::uint8_t> u8{1, 2, 255};
  const std::vector<std::int8_t> i8{-1, 0, 1};
  const std::vector<std::uint16_t> u16{1, 65535};
  const std::vector<std::int16_t> i16{-32768, 32767};
  const std::vector<std::uint32_t> u32{7, 8, 9};
  const std::vector<std::int32_t> i32{-7};
  const std::vector<float> f32{0.5f, -0.0f, 3e38f};
  const bool bools[] = {true, false, true};
  const std::vector<std::uint64_t> u64{~0ull};
  const std::vector<std::int64_t> i64{-5, 5};
  const std::vector<double> f64{1e300, -1e-300};
  const std::vector<std::string> strs{"", "a", "bc", std::string(300, 'x')};
  b.set("a.u8", gg::value::array<std::uint8_t>(u8));
  b.set("a.i8", gg::value::array<std::int8_t>(i8));
  b.set("a.u16", gg::value::array<std::uint16_t>(u16));
  b.set("a.i16", gg::value::array<std::int16_t>(i16));
  b.set("a.u32", gg::value::array<std::uint32_t>(u32));
  b.set("a.i32", gg::value::array<std::int32_t>(i32));
  b.set("a.f32", gg::value::array<float>(f32));
  b.set("a.bool", gg::value::array<bool>(std::span<const bool>(bools)));
  b.set("a.u64", gg::value::array<std::uint64_t>(u64));
  b.set("a.i64", gg::value::array<std::int64_t>(i64));
  b.set("a.f64", gg::value::array<double>(f64));
  b.set("a.string", gg::value::string_array<std::string>(strs));
  b.set("a.empty", gg::value::array<std::uint32_t>({}));

  std::mt19937_64 rng(42);
  for (std::uint32_t id = 0; id < gg::ggml_type_count; ++id) {
    if (!gg::is_valid_type(id)) continue;
    const auto type = static_cast<gg::ggml_type>(id);
    const auto tr = gg::traits_of(type);
    std::vector<std::uint64_t> shape{tr.block_size * 2, 3};
    auto& data = storage.emplace_back(*gg::tensor_bytes(type, shape));
    for (auto& x : data) x = static_cast<std::byte>(rng());
    b.add_tensor("w." + std::string(tr.name), type, shape, gg::tensor_source::bytes(data));
  }
  return b;
}

}  // namespace

TEST_CASE("gguf: every value type and every tensor type round-trip through writer and reader") {
  fq_test::temp_dir dir;
  std::vector<std::vector<std::byte>> storage;
  const auto b = every_type(storage);
  const auto path = dir / "all.gguf";
  b.write(path);
  const auto f = gg::file::open(path.string());

  CHECK(f.version() == 3);
  CHECK(f.get<std::uint8_t>("t.u8") == 200);
  CHECK(f.get<std::int8_t>("t.i8") == -100);
  CHECK(f.get<std::uint16_t>("t.u16") == 60000);
  CHECK(f.get<std::int16_t>("t.i16") == -30000);
  CHECK(f.get<std::uint32_t>("t.u32") == 4000000000u);
  CHECK(f.get<std::int32_t>("t.i32") == -2000000000);
  CHECK(f.get<float>("t.f32") == 1.5f);
  CHECK(f.get<bool>("t.bool") == true);
  CHECK(f.get<std::string_view>("t.string") == "héllo, 世界");
  CHECK(f.get<std::uint64_t>("t.u64") == (std::uint64_t{1} << 63));
  CHECK(f.get<std::int64_t>("t.i64") == (std::int64_t{-1} << 62));
  CHECK(f.get<double>("t.f64") == -2.25);

  const auto& strs = f.find_entry("a.string")->value;
  REQUIRE(strs.size() == 4);
  CHECK(strs.element_type() == gg::value_type::string);
  CHECK(strs.string_at(0) == "");
  CHECK(strs.string_at(2) == "bc");
  CHECK(strs.string_at(3)->size() == 300);
  CHECK_FALSE(strs.string_at(4).has_value());
  CHECK(f.find_entry("a.f64")->value.at<double>(1) == -1e-300);
  CHECK(f.find_entry("a.bool")->value.at<bool>(1) == false);
  CHECK(f.find_entry("a.i16")->value.integer_at(0) == -32768);
  CHECK(f.find_entry("a.u64")->value.at<std::uint64_t>(0) == ~0ull);
  CHECK(f.find_entry("a.empty")->value.size() == 0);
  CHECK(f.find_entry("a.f32")->value.at<float>(2) == 3e38f);

  // Every tensor: same type, shape and bytes, at an aligned offset.
  std::size_t k = 0;
  for (std::uint32_t id = 0; id < gg::ggml_type_count; ++id) {
    if (!gg::is_valid_type(id)) continue;
    const auto& t =
        f.tensor("w." + std::string(gg::traits_of(static_cast<gg::ggml_type>(id)).name));
    CHECK(static_cast<std::uint32_t>(t.type) == id);
    CHECK(t.file_offset % 32 == 0);
    const auto d = f.tensor_data(t);
    REQUIRE(d.size() == storage[k].size());
    CHECK(std::equal(d.begin(), d.end(), storage[k].begin()));
    ++k;
  }
  CHECK(k == f.tensors().size());

  // Re-writing the file through the library reproduces it byte for byte.
  gg::builder::from(f).write(dir / "again.gguf");
  CHECK(fq_test::read_bytes(path) == fq_test::read_bytes(dir / "again.gguf"));
}

TEST_CASE("gguf: typed accessors report a wrong type or a missing key as errors naming the key") {
  fq_test::temp_dir dir;
  gg::builder b;
  b.set("general.name", gg::value::of("x"));
  b.set("n", gg::value::of(std::uint32_t{5}));
  b.write(dir / "k.gguf");
  const auto f = gg::file::open((dir / "k.gguf").string());
  CHECK(f.get<std::uint32_t>("n") == 5);
  CHECK_FALSE(f.find<std::uint32_t>("absent").has_value());
  try {
    (void)f.get<float>("n");
    FAIL("no error");
  } catch (const fq::error& e) {
    CHECK(e.code() == fq::errc::type_mismatch);
    CHECK(std::string(e.what()).find("'n' has type u32, expected f32") != std::string::npos);
  }
  try {
    (void)f.get<std::string_view>("absent");
    FAIL("no error");
  } catch (const fq::error& e) {
    CHECK(e.code() == fq::errc::not_found);
    CHECK(std::string(e.what()).find("'absent'") != std::string::npos);
  }
  CHECK_FALSE(f.find_entry("n")->value.get_string().has_value());
  CHECK_FALSE(f.find_entry("n")->value.at<std::uint32_t>(0).has_value());
}

TEST_CASE("gguf: the type table matches ggml") {
  using gg::ggml_type;
  CHECK(gg::traits_of(ggml_type::q8_1).type_size == 36);
  CHECK(gg::traits_of(ggml_type::q2_k).type_size == 84);
  CHECK(gg::traits_of(ggml_type::iq1_s).type_size == 50);
  CHECK(gg::traits_of(ggml_type::iq4_nl).block_size == 32);
  CHECK(gg::traits_of(ggml_type::iq4_nl).type_size == 18);
  CHECK(gg::traits_of(ggml_type::q6_k).type_size == 210);
  CHECK(gg::traits_of(ggml_type::mxfp4).type_size == 17);
  CHECK(gg::traits_of(ggml_type::nvfp4).block_size == 64);
  CHECK(gg::traits_of(ggml_type::q2_0).type_size == 18);
  CHECK(gg::traits_of(ggml_type::bf16).type_size == 2);
  for (std::uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u})
    CHECK_FALSE(gg::is_valid_type(removed));
  CHECK_FALSE(gg::is_valid_type(43));
  CHECK(gg::type_from_name("q4_k") == ggml_type::q4_k);
  CHECK(gg::type_from_name("BF16") == ggml_type::bf16);
  CHECK_FALSE(gg::type_from_name("Q4_2").has_value());
  CHECK(gg::tensor_bytes(ggml_type::q4_k, std::vector<std::uint64_t>{512, 3}) == 2 * 144 * 3);
  CHECK_FALSE(gg::tensor_bytes(ggml_type::q4_k, std::vector<std::uint64_t>{100}).has_value());
}

TEST_CASE("gguf: copies of real files written by gguf-py and llama.cpp are byte-identical") {
  const auto root = fq_test::require_shared("testdata");
  if (root.empty()) return;
  fq_test::temp_dir dir;
  int n = 0;
  for (const auto* sub : {"gguf", "models"}) {
    for (const auto& e : std::filesystem::directory_iterator(root / sub)) {
      if (e.path().extension() != ".gguf") continue;
      CAPTURE(e.path());
      const auto f = gg::file::open(e.path().string());
      const auto out = dir / "copy.gguf";
      gg::builder::from(f).write(out);
      CHECK(fq_test::read_bytes(out) == fq_test::read_bytes(e.path()));
      ++n;
    }
  }
  CHECK(n >= 21);
}
