// SPDX-License-Identifier: MIT
// libFuzzer target for the GGUF reader: any input is refused with fq::error or read consistently.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fakequant/gguf.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto f =
        fq::gguf::file::from_bytes({reinterpret_cast<const std::byte*>(data), size}, "fuzz.gguf");
    std::uint64_t h = 0;
    for (const auto& e : f.metadata()) {
      const auto& v = e.value;
      if (v.is_array() && v.element_type() == fq::gguf::value_type::string) {
        for (std::uint64_t i = 0; i < v.size(); ++i) h += v.string_at(i)->size();
      } else if (v.is_array()) {
        for (std::uint64_t i = 0; i < v.size(); ++i) h += v.integer_at(i).value_or(0) != 0;
      }
    }
    for (const auto& t : f.tensors()) {
      const auto d = f.tensor_data(t);
      if (!d.empty())
        h += std::to_integer<unsigned>(d.front()) + std::to_integer<unsigned>(d.back());
    }
    // Re-serializing what was read must reproduce the header bytes when the file was packed.
    const auto header = fq::gguf::builder::from(f).header();
    if (f.gaps().empty() &&
        (header.size() != f.header_size() || std::memcmp(header.data(), data, header.size()) != 0))
      std::abort();
    return h == 0xFFFFFFFFFFFFFFFFull ? 1 : 0;
  } catch (const fq::error&) {
    return 0;
  }
}
