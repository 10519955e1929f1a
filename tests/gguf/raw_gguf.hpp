// SPDX-License-Identifier: MIT
// Hand-assembled GGUF bytes, for crafting malformed files field by field.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

namespace fq_test {

class raw_gguf {
 public:
  raw_gguf& u8(std::uint8_t v) { return put(&v, 1); }
  raw_gguf& u32(std::uint32_t v) { return put(&v, 4); }
  raw_gguf& u64(std::uint64_t v) { return put(&v, 8); }
  raw_gguf& str(std::string_view s) {
    u64(s.size());
    return put(s.data(), s.size());
  }
  raw_gguf& put(const void* p, std::size_t n) {
    const auto* c = static_cast<const std::byte*>(p);
    b_.insert(b_.end(), c, c + n);
    return *this;
  }
  /// Magic, version and the two counts.
  raw_gguf& header(std::uint64_t n_tensors, std::uint64_t n_kv, std::uint32_t version = 3) {
    put("GGUF", 4);
    u32(version);
    u64(n_tensors);
    return u64(n_kv);
  }
  raw_gguf& kv_u32(std::string_view key, std::uint32_t v) {
    str(key);
    u32(4);
    return u32(v);
  }
  raw_gguf& kv_str(std::string_view key, std::string_view v) {
    str(key);
    u32(8);
    return str(v);
  }
  raw_gguf& tensor(std::string_view name, std::initializer_list<std::uint64_t> ne,
                   std::uint32_t type, std::uint64_t offset) {
    str(name);
    u32(static_cast<std::uint32_t>(ne.size()));
    for (auto d : ne) u64(d);
    u32(type);
    return u64(offset);
  }
  raw_gguf& pad(std::size_t align = 32) {
    while (b_.size() % align) b_.push_back(std::byte{0});
    return *this;
  }
  raw_gguf& zeros(std::size_t n) {
    b_.insert(b_.end(), n, std::byte{0});
    return *this;
  }
  std::span<const std::byte> bytes() const { return b_; }
  std::size_t size() const { return b_.size(); }

 private:
  std::vector<std::byte> b_;
};

}  // namespace fq_test
