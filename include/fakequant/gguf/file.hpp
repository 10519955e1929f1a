// SPDX-License-Identifier: MIT
// The GGUF reader: validates a whole file against every malformed-input case we know of (ggml's own
// guards and the ones it misses), then exposes metadata and tensor data as zero-copy views of a
// read-only memory map. Nothing is allocated with a size taken from the file before that size has
// been bounded by the bytes actually present.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../detail/bytes.hpp"
#include "../error.hpp"
#include "../utf8.hpp"
#include "mapped_file.hpp"
#include "types.hpp"
#include "value.hpp"

namespace fq::gguf {

inline constexpr std::uint32_t default_alignment = 32;
/// Largest general.alignment accepted. The spec sets no bound; an absurd one is how padding
/// arithmetic overflows (advisory V-01), and no real writer uses more than a few KiB.
inline constexpr std::uint32_t max_alignment = 1u << 20;
inline constexpr std::size_t max_key_length = 65535;  // the spec's limit
inline constexpr std::size_t max_name_length = 63;    // ggml: names shorter than GGML_MAX_NAME (64)
inline constexpr std::uint32_t max_dims = 4;

/// One metadata entry: key, value, and where it starts in the file.
struct metadata_entry {
  std::string_view key;
  gguf::value value;
  std::uint64_t file_offset = 0;
};

/// One tensor's description.
struct tensor_info {
  std::string_view name;
  ggml_type type = ggml_type::f32;
  std::uint32_t n_dims = 0;
  std::array<std::uint64_t, max_dims> ne{1, 1, 1, 1};  ///< ggml order: ne[0] is the row length
  std::uint64_t offset = 0;       ///< relative to the data section, as stored in the file
  std::uint64_t file_offset = 0;  ///< absolute position of the data in the file
  std::uint64_t bytes = 0;
  std::uint64_t elements = 0;
  std::uint64_t info_offset = 0;  ///< where the tensor's info record starts

  std::span<const std::uint64_t> shape() const noexcept { return {ne.data(), n_dims}; }
  std::uint64_t rows() const noexcept { return ne[1] * ne[2] * ne[3]; }
};

/// A region of the data section that no tensor covers, beyond alignment padding. The GGUF spec
/// allows them; ggml refuses them; `inspect` reports them.
struct data_gap {
  std::uint64_t file_offset;
  std::uint64_t bytes;
};

/// Number of bytes a tensor of `type` with dimensions `ne` occupies, or an error message.
/// Computed as (ne0 / block) * type_size * ne1 * ..., which cannot overflow where ne0 * size can.
inline std::optional<std::uint64_t> tensor_bytes(ggml_type type,
                                                 std::span<const std::uint64_t> ne) noexcept {
  const auto tr = traits_of(type);
  if (tr.block_size == 0) return std::nullopt;
  const std::uint64_t ne0 = ne.empty() ? 1 : ne[0];
  if (ne0 % tr.block_size != 0) return std::nullopt;
  std::optional<std::uint64_t> n = fq::detail::checked_mul(ne0 / tr.block_size, tr.type_size);
  for (std::size_t i = 1; i < ne.size() && n; ++i) n = fq::detail::checked_mul(*n, ne[i]);
  return n;
}

namespace detail {

// A bounded reader over the mapped bytes; every read is checked against what is left.
class cursor {
 public:
  cursor(std::span<const std::byte> bytes, const std::string& path) : b_(bytes), path_(path) {}

  std::uint64_t pos() const noexcept { return pos_; }
  std::uint64_t left() const noexcept { return b_.size() - pos_; }
  const std::byte* here() const noexcept { return b_.data() + pos_; }

  [[noreturn]] void fail(errc code, std::uint64_t at, std::string message) const {
    throw error(code, path_, at, std::move(message));
  }
  void need(std::uint64_t n, std::string_view what) const {
    if (n > left())
      fail(errc::truncated, pos_,
           "file ends inside " + std::string(what) + " (needs " + std::to_string(n) + " bytes, " +
               std::to_string(left()) + " left)");
  }
  template <class T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    const T v = fq::detail::load_le<T>(here());
    pos_ += sizeof(T);
    return v;
  }
  void skip(std::uint64_t n, std::string_view what) {
    need(n, what);
    pos_ += n;
  }
  /// A GGUF string (u64 length + bytes) as a view.
  std::string_view read_string(std::string_view what) {
    const std::uint64_t at = pos_;
    const auto n = read<std::uint64_t>(what);
    if (n > left())
      fail(errc::truncated, at,
           std::string(what) + " length " + std::to_string(n) + " exceeds the " +
               std::to_string(left()) + " bytes left in the file");
    std::string_view s(reinterpret_cast<const char*>(here()), static_cast<std::size_t>(n));
    pos_ += n;
    return s;
  }

 private:
  std::span<const std::byte> b_;
  const std::string& path_;
  std::uint64_t pos_ = 0;
};

inline std::string printable(std::span<const std::byte> b) {
  std::string s;
  for (auto c : b) {
    const auto u = std::to_integer<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) {
      s += static_cast<char>(u);
    } else {
      static constexpr char hex[] = "0123456789ABCDEF";
      s += "\\x";
      s += hex[u >> 4];
      s += hex[u & 15];
    }
  }
  return s;
}

}  // namespace detail

/// A validated, memory-mapped GGUF file. Views it hands out live as long as the file object.
class file {
 public:
  /// Opens, maps and validates `path`. Throws fq::error naming the file, the byte offset and the
  /// problem for anything malformed.
  static file open(const std::string& path) {
    file f;
    f.map_ = mapped_file::open(path);
    f.parse();
    return f;
  }

  /// Validates GGUF bytes already in memory (they must outlive the object); `name` stands for the
  /// file in error messages.
  static file from_bytes(std::span<const std::byte> bytes, std::string name) {
    file f;
    f.map_ = mapped_file::view(bytes, std::move(name));
    f.parse();
    return f;
  }

  const std::string& path() const noexcept { return map_.path(); }
  std::uint32_t version() const noexcept { return version_; }
  std::uint32_t alignment() const noexcept { return alignment_; }
  std::uint64_t file_size() const noexcept { return map_.size(); }
  /// Bytes of header (magic through the last tensor info), before alignment padding.
  std::uint64_t header_size() const noexcept { return header_size_; }
  /// Absolute offset of the data section.
  std::uint64_t data_offset() const noexcept { return data_offset_; }
  const mapped_file& mapping() const noexcept { return map_; }

  const std::vector<metadata_entry>& metadata() const noexcept { return metadata_; }
  const std::vector<tensor_info>& tensors() const noexcept { return tensors_; }
  /// Stretches of the data section not covered by any tensor (beyond alignment padding).
  const std::vector<data_gap>& gaps() const noexcept { return gaps_; }

  const metadata_entry* find_entry(std::string_view key) const noexcept {
    auto it = key_index_.find(key);
    return it == key_index_.end() ? nullptr : &metadata_[it->second];
  }
  const tensor_info* find_tensor(std::string_view name) const noexcept {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }
  /// The tensor, or an error naming it.
  const tensor_info& tensor(std::string_view name) const {
    if (auto* t = find_tensor(name)) return *t;
    throw error(errc::not_found, path(), "no tensor named '" + std::string(name) + "'");
  }
  std::span<const std::byte> tensor_data(const tensor_info& t) const noexcept {
    return map_.bytes().subspan(t.file_offset, t.bytes);
  }

  /// Value of `key` as T (exact GGUF type; std::string_view for strings); nullopt when absent,
  /// an error naming the key when it has another type.
  template <class T>
  std::optional<T> find(std::string_view key) const {
    const auto* e = find_entry(key);
    if (!e) return std::nullopt;
    std::optional<T> v;
    if constexpr (std::is_same_v<T, std::string_view>) {
      v = e->value.get_string();
    } else {
      v = e->value.template get<T>();
    }
    if (!v) {
      std::string_view expected = "string";
      if constexpr (!std::is_same_v<T, std::string_view>)
        expected = value_type_name(value_type_of_v<T>);
      throw error(errc::type_mismatch, path(), e->file_offset,
                  "metadata key '" + std::string(key) + "' has type " +
                      std::string(value_type_name(e->value.type())) + ", expected " +
                      std::string(expected));
    }
    return v;
  }
  /// Value of `key` as T; an error naming the key when it is absent or of another type.
  template <class T>
  T get(std::string_view key) const {
    auto v = find<T>(key);
    if (!v) throw error(errc::not_found, path(), "missing metadata key '" + std::string(key) + "'");
    return *v;
  }

 private:
  file() = default;

  void parse() {
    const auto& p = map_.path();
    detail::cursor c(map_.bytes(), p);
    if (map_.size() == 0) c.fail(errc::bad_magic, 0, "empty file, not a GGUF file");
    if (map_.size() < 4 || std::memcmp(map_.data(), "GGUF", 4) != 0) {
      const auto head = map_.bytes().first(std::min<std::size_t>(4, map_.size()));
      c.fail(errc::bad_magic, 0,
             "not a GGUF file (magic is \"" + detail::printable(head) + "\", expected \"GGUF\")");
    }
    c.skip(4, "magic");
    version_ = c.read<std::uint32_t>("version");
    if (version_ != 0 && (version_ & 0xFFFF) == 0)
      c.fail(errc::big_endian, 4,
             "big-endian (byte-swapped) GGUF file: version reads as " + std::to_string(version_) +
                 "; convert it with gguf-py's gguf_convert_endian.py");
    if (version_ == 1)
      c.fail(errc::unsupported_version, 4, "GGUF v1 is not supported (only v2 and v3)");
    if (version_ != 2 && version_ != 3)
      c.fail(errc::unsupported_version, 4,
             "unsupported GGUF version " + std::to_string(version_) + " (only v2 and v3)");

    const std::uint64_t n_tensors_at = c.pos();
    const auto n_tensors = c.read<std::uint64_t>("tensor count");
    const std::uint64_t n_kv_at = c.pos();
    const auto n_kv = c.read<std::uint64_t>("metadata count");
    // Each record needs a minimum number of bytes, so a count beyond left/min is a lie; this bounds
    // every allocation below by the file's real size.
    constexpr std::uint64_t min_kv_bytes = 8 + 1 + 4 + 1;
    constexpr std::uint64_t min_tensor_bytes = 8 + 1 + 4 + 4 + 8;
    if (n_tensors > c.left() / min_tensor_bytes)
      c.fail(errc::limit_exceeded, n_tensors_at,
             "tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
                 std::to_string(c.left()) + " bytes left in the file");
    if (n_kv > c.left() / min_kv_bytes)
      c.fail(errc::limit_exceeded, n_kv_at,
             "metadata count " + std::to_string(n_kv) + " cannot fit in the " +
                 std::to_string(c.left()) + " bytes left in the file");

    metadata_.reserve(n_kv);
    key_index_.reserve(n_kv);
    for (std::uint64_t i = 0; i < n_kv; ++i) read_kv(c);
    read_alignment(c);

    tensors_.reserve(n_tensors);
    tensor_index_.reserve(n_tensors);
    for (std::uint64_t i = 0; i < n_tensors; ++i) read_tensor_info(c);
    header_size_ = c.pos();
    check_layout(c);
  }

  void read_kv(detail::cursor& c) {
    const std::uint64_t at = c.pos();
    const auto key = c.read_string("metadata key");
    if (key.empty()) c.fail(errc::bad_key, at, "empty metadata key");
    if (key.size() > max_key_length)
      c.fail(errc::bad_key, at,
             "metadata key of " + std::to_string(key.size()) + " bytes exceeds 65535");
    if (!fq::valid_utf8(reinterpret_cast<const unsigned char*>(key.data()), key.size()))
      c.fail(errc::bad_key, at, "metadata key is not valid UTF-8");
    const auto type_at = c.pos();
    const auto type = c.read<std::uint32_t>("metadata value type");
    if (type >= value_type_count)
      c.fail(
          errc::bad_value_type, type_at,
          "metadata key '" + std::string(key) + "' has invalid value type " + std::to_string(type));
    auto v = read_value(c, static_cast<value_type>(type), key);
    if (!key_index_.emplace(key, metadata_.size()).second)
      c.fail(errc::bad_key, at, "duplicate metadata key '" + std::string(key) + "'");
    metadata_.push_back({key, std::move(v), at});
  }

  gguf::value read_value(detail::cursor& c, value_type type, std::string_view key) {
    const std::uint64_t at = c.pos();
    const std::byte* start = c.here();
    auto fail_bool = [&](std::uint64_t where, std::byte b) {
      c.fail(errc::bad_value_type, where,
             "metadata key '" + std::string(key) + "' has bool value " +
                 std::to_string(std::to_integer<int>(b)) + " (must be 0 or 1)");
    };
    switch (type) {
      case value_type::string:
        c.read_string("metadata string");
        break;
      case value_type::array: {
        const auto elem_at = c.pos();
        const auto elem = c.read<std::uint32_t>("array element type");
        if (elem >= value_type_count || elem == static_cast<std::uint32_t>(value_type::array))
          c.fail(errc::bad_value_type, elem_at,
                 "metadata key '" + std::string(key) + "' has invalid array element type " +
                     std::to_string(elem));
        const auto count_at = c.pos();
        const auto count = c.read<std::uint64_t>("array length");
        const auto et = static_cast<value_type>(elem);
        const std::uint64_t min_size = et == value_type::string ? 8 : value_type_size(et);
        if (count > c.left() / min_size)
          c.fail(errc::truncated, count_at,
                 "metadata key '" + std::string(key) + "': array of " + std::to_string(count) +
                     " " + std::string(value_type_name(et)) + " values exceeds the " +
                     std::to_string(c.left()) + " bytes left in the file");
        std::shared_ptr<std::vector<std::uint64_t>> offsets;
        if (et == value_type::string) {
          offsets = std::make_shared<std::vector<std::uint64_t>>();
          offsets->reserve(count);
          for (std::uint64_t i = 0; i < count; ++i) {
            offsets->push_back(c.pos() - at);
            c.read_string("array string");
          }
        } else {
          const std::byte* data = c.here();
          c.skip(count * min_size, "array");
          if (et == value_type::boolean)
            for (std::uint64_t i = 0; i < count; ++i)
              if (std::to_integer<unsigned>(data[i]) > 1) fail_bool(c.pos() - count + i, data[i]);
        }
        return gguf::value::view(type, et, count, {start, static_cast<std::size_t>(c.pos() - at)},
                                 std::move(offsets));
      }
      default: {
        const auto n = value_type_size(type);
        c.skip(n, "metadata value");
        if (type == value_type::boolean && std::to_integer<unsigned>(*start) > 1)
          fail_bool(at, *start);
        break;
      }
    }
    return gguf::value::view(type, value_type::u8, 1,
                             {start, static_cast<std::size_t>(c.pos() - at)});
  }

  void read_alignment(detail::cursor& c) {
    alignment_ = default_alignment;
    const auto* e = find_entry("general.alignment");
    if (!e) return;
    const auto v = e->value.get<std::uint32_t>();
    if (!v)
      c.fail(errc::bad_alignment, e->file_offset,
             "general.alignment has type " + std::string(value_type_name(e->value.type())) +
                 ", must be u32");
    if (*v == 0 || (*v & (*v - 1)) != 0 || *v > max_alignment)
      c.fail(errc::bad_alignment, e->file_offset,
             "general.alignment " + std::to_string(*v) + " must be a power of two between 1 and " +
                 std::to_string(max_alignment));
    alignment_ = *v;
  }

  void read_tensor_info(detail::cursor& c) {
    tensor_info t;
    t.info_offset = c.pos();
    t.name = c.read_string("tensor name");
    const std::string name(t.name);
    if (t.name.empty()) c.fail(errc::bad_tensor, t.info_offset, "empty tensor name");
    if (t.name.size() > max_name_length)
      c.fail(errc::bad_tensor, t.info_offset,
             "tensor name of " + std::to_string(t.name.size()) + " bytes exceeds 63");
    if (!fq::valid_utf8(reinterpret_cast<const unsigned char*>(t.name.data()), t.name.size()))
      c.fail(errc::bad_tensor, t.info_offset, "tensor name is not valid UTF-8");
    const auto dims_at = c.pos();
    t.n_dims = c.read<std::uint32_t>("tensor dimension count");
    if (t.n_dims > max_dims)
      c.fail(errc::bad_tensor, dims_at,
             "tensor '" + name + "' has " + std::to_string(t.n_dims) + " dimensions (at most 4)");
    std::uint64_t elements = 1;
    for (std::uint32_t d = 0; d < t.n_dims; ++d) {
      const auto ne_at = c.pos();
      const auto ne = c.read<std::uint64_t>("tensor dimension");
      // Zero is refused explicitly: ggml's nelements>0 guard can be bypassed by a product that
      // wraps (llama.cpp#27203), and a zero dimension divides by zero downstream.
      if (ne == 0 || ne > static_cast<std::uint64_t>(INT64_MAX))
        c.fail(errc::bad_tensor, ne_at,
               "tensor '" + name + "' dimension " + std::to_string(d) + " is " +
                   (ne == 0 ? std::string("zero")
                            : "negative (" + std::to_string(static_cast<std::int64_t>(ne)) + ")"));
      const auto e = fq::detail::checked_mul(elements, ne);
      if (!e || *e > static_cast<std::uint64_t>(INT64_MAX))
        c.fail(errc::size_overflow, ne_at, "tensor '" + name + "' element count overflows 63 bits");
      elements = *e;
      t.ne[d] = ne;
    }
    t.elements = elements;
    const auto type_at = c.pos();
    const auto type = c.read<std::uint32_t>("tensor type");
    if (!is_valid_type(type)) {
      const auto tr = traits_of(type);
      c.fail(
          errc::bad_tensor, type_at,
          "tensor '" + name + "' has " +
              (tr ? "removed ggml type " + std::string(tr->name) + " (" + std::to_string(type) + ")"
                  : "unknown ggml type " + std::to_string(type)));
    }
    t.type = static_cast<ggml_type>(type);
    const auto tr = traits_of(t.type);
    if (t.ne[0] % tr.block_size != 0)
      c.fail(errc::bad_tensor, dims_at,
             "tensor '" + name + "' row length " + std::to_string(t.ne[0]) +
                 " is not a multiple of the " + std::string(tr.name) + " block size " +
                 std::to_string(tr.block_size));
    const auto bytes = tensor_bytes(t.type, t.shape());
    if (!bytes)
      c.fail(errc::size_overflow, dims_at, "tensor '" + name + "' byte size overflows 64 bits");
    t.bytes = *bytes;
    const auto off_at = c.pos();
    t.offset = c.read<std::uint64_t>("tensor data offset");
    if (t.offset % alignment_ != 0)
      c.fail(errc::bad_layout, off_at,
             "tensor '" + name + "' data offset " + std::to_string(t.offset) +
                 " is not a multiple of the alignment " + std::to_string(alignment_));
    if (!tensor_index_.emplace(t.name, tensors_.size()).second)
      c.fail(errc::bad_tensor, t.info_offset, "duplicate tensor name '" + name + "'");
    tensors_.push_back(t);
  }

  void check_layout(detail::cursor& c) {
    const auto start = fq::detail::checked_align_up(header_size_, alignment_);
    data_offset_ = start.value_or(header_size_);
    if (tensors_.empty()) return;
    if (!start || *start > map_.size())
      c.fail(errc::truncated, header_size_,
             "file ends before the tensor data section (at byte " + std::to_string(data_offset_) +
                 ", file size " + std::to_string(map_.size()) + ")");
    for (auto& t : tensors_) {
      const auto begin = fq::detail::checked_add(data_offset_, t.offset);
      const auto end = begin ? fq::detail::checked_add(*begin, t.bytes) : std::nullopt;
      if (!end || *end > map_.size())
        c.fail(errc::truncated, t.info_offset,
               "tensor '" + std::string(t.name) + "' data (" + std::to_string(t.bytes) +
                   " bytes at offset " + std::to_string(t.offset) +
                   ") extends beyond the end of the file");
      t.file_offset = *begin;
    }
    std::vector<std::size_t> order(tensors_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](auto a, auto b) { return tensors_[a].offset < tensors_[b].offset; });
    std::uint64_t prev_end = data_offset_;
    for (std::size_t k = 0; k < order.size(); ++k) {
      const auto& t = tensors_[order[k]];
      if (t.file_offset < prev_end)
        c.fail(errc::bad_layout, t.info_offset,
               "tensor '" + std::string(t.name) + "' data overlaps tensor '" +
                   std::string(tensors_[order[k - 1]].name) + "'");
      // Offsets are aligned, so anything past the previous tensor's padding is a gap.
      const auto expected =
          k == 0 ? data_offset_ : *fq::detail::checked_align_up(prev_end, alignment_);
      if (t.file_offset > expected) gaps_.push_back({expected, t.file_offset - expected});
      prev_end = t.file_offset + t.bytes;
    }
  }

  mapped_file map_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = default_alignment;
  std::uint64_t header_size_ = 0;
  std::uint64_t data_offset_ = 0;
  std::vector<metadata_entry> metadata_;
  std::vector<tensor_info> tensors_;
  std::vector<data_gap> gaps_;
  std::unordered_map<std::string_view, std::size_t> key_index_;
  std::unordered_map<std::string_view, std::size_t> tensor_index_;
};

}  // namespace fq::gguf
