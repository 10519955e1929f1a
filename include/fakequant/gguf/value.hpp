// SPDX-License-Identifier: MIT
// A GGUF metadata value, held as its serialized bytes: a view into the mapped file for values that
// were read (so a 200k-entry vocabulary costs one index, not 200k strings), or owned bytes for
// values a program sets. Writing a value back is a copy of those bytes, which is what makes a
// read-and-rewrite byte-identical.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../detail/bytes.hpp"
#include "types.hpp"

namespace fq::gguf {

namespace detail {
template <class T>
struct value_type_of;
template <>
struct value_type_of<std::uint8_t> {
  static constexpr auto v = value_type::u8;
};
template <>
struct value_type_of<std::int8_t> {
  static constexpr auto v = value_type::i8;
};
template <>
struct value_type_of<std::uint16_t> {
  static constexpr auto v = value_type::u16;
};
template <>
struct value_type_of<std::int16_t> {
  static constexpr auto v = value_type::i16;
};
template <>
struct value_type_of<std::uint32_t> {
  static constexpr auto v = value_type::u32;
};
template <>
struct value_type_of<std::int32_t> {
  static constexpr auto v = value_type::i32;
};
template <>
struct value_type_of<float> {
  static constexpr auto v = value_type::f32;
};
template <>
struct value_type_of<bool> {
  static constexpr auto v = value_type::boolean;
};
template <>
struct value_type_of<std::uint64_t> {
  static constexpr auto v = value_type::u64;
};
template <>
struct value_type_of<std::int64_t> {
  static constexpr auto v = value_type::i64;
};
template <>
struct value_type_of<double> {
  static constexpr auto v = value_type::f64;
};
}  // namespace detail

/// The GGUF value type that stores a C++ scalar type T (u8…f64, bool).
template <class T>
inline constexpr value_type value_type_of_v = detail::value_type_of<T>::v;

/// One metadata value (see the file comment for the representation).
class value {
 public:
  // Layout of the serialized bytes (after the value's type tag):
  //   scalar: the little-endian value; string: u64 length + bytes;
  //   array: u32 element type + u64 count + elements (strings as above).
  static constexpr std::size_t array_header = 12;

  /// A scalar value of C++ type T (u8…f64, bool).
  template <class T>
  static value of(T v) {
    value r;
    r.type_ = value_type_of_v<T>;
    std::vector<std::byte> b(sizeof(T));
    if constexpr (std::is_same_v<T, bool>) {
      b[0] = std::byte{v ? std::uint8_t{1} : std::uint8_t{0}};
    } else {
      fq::detail::store_le(b.data(), v);
    }
    r.own(std::move(b));
    return r;
  }
  /// A string value (GGUF strings are UTF-8 by convention; the bytes are kept as given).
  static value of(std::string_view s) {
    value r;
    r.type_ = value_type::string;
    std::vector<std::byte> b(8 + s.size());
    fq::detail::store_le<std::uint64_t>(b.data(), s.size());
    if (!s.empty()) std::memcpy(b.data() + 8, s.data(), s.size());
    r.own(std::move(b));
    return r;
  }
  static value of(const char* s) { return of(std::string_view(s)); }
  static value of(const std::string& s) { return of(std::string_view(s)); }

  /// An array of scalars of C++ type T.
  template <class T>
  static value array(std::span<const T> items) {
    value r;
    r.type_ = value_type::array;
    r.elem_ = value_type_of_v<T>;
    r.count_ = items.size();
    std::vector<std::byte> b(array_header + items.size() * sizeof(T));
    fq::detail::store_le(b.data(), static_cast<std::uint32_t>(r.elem_));
    fq::detail::store_le<std::uint64_t>(b.data() + 4, items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      if constexpr (std::is_same_v<T, bool>) {
        b[array_header + i] = std::byte{items[i] ? std::uint8_t{1} : std::uint8_t{0}};
      } else {
        fq::detail::store_le(b.data() + array_header + i * sizeof(T), items[i]);
      }
    }
    r.own(std::move(b));
    return r;
  }
  /// An array of strings.
  template <class S>
  requires std::is_convertible_v<const S&, std::string_view>
  static value string_array(std::span<const S> items) {
    value r;
    r.type_ = value_type::array;
    r.elem_ = value_type::string;
    r.count_ = items.size();
    std::size_t total = array_header;
    for (const auto& s : items) total += 8 + std::string_view(s).size();
    std::vector<std::byte> b(total);
    fq::detail::store_le(b.data(), static_cast<std::uint32_t>(value_type::string));
    fq::detail::store_le<std::uint64_t>(b.data() + 4, items.size());
    auto offsets = std::make_shared<std::vector<std::uint64_t>>();
    offsets->reserve(items.size());
    std::size_t p = array_header;
    for (const auto& item : items) {
      const std::string_view s(item);
      offsets->push_back(p);
      fq::detail::store_le<std::uint64_t>(b.data() + p, s.size());
      if (!s.empty()) std::memcpy(b.data() + p + 8, s.data(), s.size());
      p += 8 + s.size();
    }
    r.string_offsets_ = std::move(offsets);
    r.own(std::move(b));
    return r;
  }

  /// A value over serialized bytes that outlive it (the reader's mapped file). `string_offsets`
  /// holds, for an array of strings, the offset of each element within `payload`.
  static value view(value_type type, value_type elem, std::uint64_t count,
                    std::span<const std::byte> payload,
                    std::shared_ptr<const std::vector<std::uint64_t>> string_offsets = {}) {
    value r;
    r.type_ = type;
    r.elem_ = elem;
    r.count_ = count;
    r.payload_ = payload;
    r.string_offsets_ = std::move(string_offsets);
    return r;
  }

  value_type type() const noexcept { return type_; }
  /// Element type of an array (meaningless for other types).
  value_type element_type() const noexcept { return elem_; }
  bool is_array() const noexcept { return type_ == value_type::array; }
  /// Number of elements of an array; 1 for other types.
  std::uint64_t size() const noexcept { return is_array() ? count_ : 1; }
  /// The serialized bytes that follow the type tag in a GGUF file.
  std::span<const std::byte> payload() const noexcept { return payload_; }

  /// The scalar as T when the value's type is exactly T's GGUF type.
  template <class T>
  std::optional<T> get() const noexcept {
    if (type_ != value_type_of_v<T>) return std::nullopt;
    return load<T>(payload_.data());
  }
  std::optional<std::string_view> get_string() const noexcept {
    if (type_ != value_type::string) return std::nullopt;
    return string_at_offset(0);
  }
  /// Any integer-typed scalar widened to int64 (nullopt for non-integers and u64 > INT64_MAX).
  std::optional<std::int64_t> get_integer() const noexcept { return integer_at(type_, 0); }
  /// Element i of an array of T.
  template <class T>
  std::optional<T> at(std::uint64_t i) const noexcept {
    if (type_ != value_type::array || elem_ != value_type_of_v<T> || i >= count_)
      return std::nullopt;
    return load<T>(payload_.data() + array_header + i * sizeof(T));
  }
  /// Element i of an array of any integer type, widened to int64.
  std::optional<std::int64_t> integer_at(std::uint64_t i) const noexcept {
    if (type_ != value_type::array || i >= count_) return std::nullopt;
    return integer_at(elem_, array_header + i * value_type_size(elem_));
  }
  /// Element i of an array of strings.
  std::optional<std::string_view> string_at(std::uint64_t i) const noexcept {
    if (type_ != value_type::array || elem_ != value_type::string || i >= count_ ||
        !string_offsets_)
      return std::nullopt;
    return string_at_offset((*string_offsets_)[i]);
  }

  friend bool operator==(const value& a, const value& b) noexcept {
    return a.type_ == b.type_ && a.payload_.size() == b.payload_.size() &&
           (a.payload_.empty() ||
            std::memcmp(a.payload_.data(), b.payload_.data(), a.payload_.size()) == 0);
  }

 private:
  value() = default;

  void own(std::vector<std::byte> b) {
    auto keep = std::make_shared<const std::vector<std::byte>>(std::move(b));
    payload_ = {keep->data(), keep->size()};
    owned_ = std::move(keep);
  }
  template <class T>
  static T load(const std::byte* p) noexcept {
    if constexpr (std::is_same_v<T, bool>) {
      return std::to_integer<std::uint8_t>(*p) != 0;
    } else {
      return fq::detail::load_le<T>(p);
    }
  }
  std::string_view string_at_offset(std::uint64_t off) const noexcept {
    const auto n = fq::detail::load_le<std::uint64_t>(payload_.data() + off);
    return {reinterpret_cast<const char*>(payload_.data() + off + 8), static_cast<std::size_t>(n)};
  }
  std::optional<std::int64_t> integer_at(value_type t, std::uint64_t off) const noexcept {
    const std::byte* p = payload_.data() + off;
    switch (t) {
      case value_type::u8:
        return load<std::uint8_t>(p);
      case value_type::i8:
        return load<std::int8_t>(p);
      case value_type::u16:
        return load<std::uint16_t>(p);
      case value_type::i16:
        return load<std::int16_t>(p);
      case value_type::u32:
        return load<std::uint32_t>(p);
      case value_type::i32:
        return load<std::int32_t>(p);
      case value_type::i64:
        return load<std::int64_t>(p);
      case value_type::u64: {
        const auto v = load<std::uint64_t>(p);
        if (v > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
        return static_cast<std::int64_t>(v);
      }
      default:
        return std::nullopt;
    }
  }

  value_type type_ = value_type::u8;
  value_type elem_ = value_type::u8;
  std::uint64_t count_ = 0;
  std::span<const std::byte> payload_;
  std::shared_ptr<const std::vector<std::uint64_t>> string_offsets_;
  std::shared_ptr<const std::vector<std::byte>> owned_;
};

}  // namespace fq::gguf
