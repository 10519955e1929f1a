// SPDX-License-Identifier: MIT
// The GGUF writer. The layout (header, offsets, padding) is computed first; then tensor data is
// streamed in order into a temporary file beside the target, which is flushed and renamed over the
// target only when complete. Data of untouched tensors is copied from the source file by the kernel
// (copy_file_range) or from its mapping, never gathered in memory.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../atomic_file.hpp"
#include "../detail/bytes.hpp"
#include "../error.hpp"
#include "file.hpp"
#include "types.hpp"
#include "value.hpp"

namespace fq::gguf {

/// Fills `out` with the tensor's bytes starting at byte `offset` of its data. Called with
/// consecutive chunks, so a producer can compute a large tensor piece by piece.
using tensor_producer = std::function<void(std::uint64_t offset, std::span<std::byte> out)>;

/// Where a tensor's bytes come from when writing.
class tensor_source {
 public:
  /// Bytes in memory (or in a mapping) that stay valid until the write is done.
  static tensor_source bytes(std::span<const std::byte> data) {
    tensor_source s;
    s.size_ = data.size();
    s.bytes_ = data;
    return s;
  }
  /// A byte range of a mapped file; copied in the kernel where the file systems allow it.
  static tensor_source file_range(const mapped_file& f, std::uint64_t offset, std::uint64_t size) {
    tensor_source s = bytes(f.bytes().subspan(offset, size));
    s.fd_ = f.fd();
    s.fd_offset_ = offset;
    return s;
  }
  /// `size` bytes computed on demand in chunks by `produce`.
  static tensor_source produced(std::uint64_t size, tensor_producer produce) {
    tensor_source s;
    s.size_ = size;
    s.produce_ = std::move(produce);
    return s;
  }

  std::uint64_t size() const noexcept { return size_; }

 private:
  friend class builder;
  std::uint64_t size_ = 0;
  std::span<const std::byte> bytes_;
  int fd_ = -1;
  std::uint64_t fd_offset_ = 0;
  tensor_producer produce_;
};

/// A tensor to be written.
struct tensor_entry {
  std::string name;
  ggml_type type = ggml_type::f32;
  std::vector<std::uint64_t> shape;  ///< ggml order (ne[0] first)
  tensor_source source;
};

/// Builds a GGUF file: from scratch, or from an opened file with tensors replaced, added or removed
/// and metadata changed. A builder made from a file refers to that file's mapping, so the file must
/// outlive the write.
class builder {
 public:
  explicit builder(std::uint32_t version = 3) : version_(version) {}

  /// Everything of `f`: version, metadata and tensors in order; writing it unchanged reproduces a
  /// file that was packed the way ggml and gguf-py pack, byte for byte.
  static builder from(const file& f) {
    builder b(f.version());
    b.metadata_.reserve(f.metadata().size());
    for (const auto& e : f.metadata()) b.metadata_.emplace_back(std::string(e.key), e.value);
    std::uint64_t end = 0;
    for (const auto& t : f.tensors()) {
      b.tensors_.push_back({std::string(t.name), t.type,
                            std::vector<std::uint64_t>(t.shape().begin(), t.shape().end()),
                            tensor_source::file_range(f.mapping(), t.file_offset, t.bytes)});
      end = std::max(end, t.file_offset + t.bytes);
    }
    // gguf-py and ggml pad after the last tensor too; keep whatever the source did.
    b.pad_end_ =
        !f.tensors().empty() && f.file_size() >= *fq::detail::checked_align_up(end, f.alignment());
    b.add_input(f.mapping());
    return b;
  }

  std::uint32_t version() const noexcept { return version_; }

  // --- metadata ---
  const std::vector<std::pair<std::string, value>>& metadata() const noexcept { return metadata_; }
  const value* find(std::string_view key) const noexcept {
    for (const auto& [k, v] : metadata_)
      if (k == key) return &v;
    return nullptr;
  }
  /// Sets `key`, keeping its position when it exists, appending otherwise.
  void set(std::string_view key, value v) {
    if (key.empty() || key.size() > max_key_length)
      throw error(errc::bad_key, "", "metadata key must have 1 to 65535 bytes");
    for (auto& [k, old] : metadata_)
      if (k == key) {
        old = std::move(v);
        return;
      }
    metadata_.emplace_back(std::string(key), std::move(v));
  }
  bool erase(std::string_view key) {
    return std::erase_if(metadata_, [&](const auto& kv) { return kv.first == key; }) > 0;
  }

  // --- tensors ---
  const std::vector<tensor_entry>& tensors() const noexcept { return tensors_; }
  const tensor_entry* find_tensor(std::string_view name) const noexcept {
    for (const auto& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }
  void add_tensor(std::string name, ggml_type type, std::vector<std::uint64_t> shape,
                  tensor_source source) {
    if (find_tensor(name))
      throw error(errc::bad_tensor, "", "a tensor named '" + name + "' already exists");
    check_tensor(name, type, shape, source);
    tensors_.push_back({std::move(name), type, std::move(shape), std::move(source)});
  }
  /// Replaces the tensor `name` in place (its position in the file is kept).
  void replace_tensor(std::string_view name, ggml_type type, std::vector<std::uint64_t> shape,
                      tensor_source source) {
    for (auto& t : tensors_)
      if (t.name == name) {
        check_tensor(t.name, type, shape, source);
        t.type = type;
        t.shape = std::move(shape);
        t.source = std::move(source);
        return;
      }
    throw error(errc::not_found, "", "no tensor named '" + std::string(name) + "' to replace");
  }
  bool remove_tensor(std::string_view name) {
    return std::erase_if(tensors_, [&](const auto& t) { return t.name == name; }) > 0;
  }

  /// Registers a file the output must never overwrite (files given to from() are registered).
  void add_input(const mapped_file& f) {
    struct stat st {};
    if (::fstat(f.fd(), &st) == 0) inputs_.push_back({st.st_dev, st.st_ino, f.path()});
  }

  /// The alignment the output will use (general.alignment, or 32).
  std::uint32_t alignment() const {
    const value* v = find("general.alignment");
    if (!v) return default_alignment;
    const auto a = v->get<std::uint32_t>();
    if (!a || *a == 0 || (*a & (*a - 1)) != 0 || *a > max_alignment)
      throw error(errc::bad_alignment, "",
                  "general.alignment must be a u32 power of two between 1 and " +
                      std::to_string(max_alignment));
    return *a;
  }

  /// Header bytes (magic through the last tensor info) and each tensor's data offset.
  std::vector<std::byte> header(std::vector<std::uint64_t>* offsets = nullptr) const {
    const std::uint64_t align = alignment();
    std::vector<std::byte> h;
    auto put = [&](const void* p, std::size_t n) {
      const auto* b = static_cast<const std::byte*>(p);
      h.insert(h.end(), b, b + n);
    };
    auto put_u32 = [&](std::uint32_t v) { put(&v, 4); };
    auto put_u64 = [&](std::uint64_t v) { put(&v, 8); };
    auto put_str = [&](std::string_view s) {
      put_u64(s.size());
      put(s.data(), s.size());
    };
    put("GGUF", 4);
    put_u32(version_);
    put_u64(tensors_.size());
    put_u64(metadata_.size());
    for (const auto& [k, v] : metadata_) {
      put_str(k);
      put_u32(static_cast<std::uint32_t>(v.type()));
      put(v.payload().data(), v.payload().size());
    }
    std::uint64_t off = 0;
    for (const auto& t : tensors_) {
      put_str(t.name);
      put_u32(static_cast<std::uint32_t>(t.shape.size()));
      for (auto ne : t.shape) put_u64(ne);
      put_u32(static_cast<std::uint32_t>(t.type));
      put_u64(off);
      if (offsets) offsets->push_back(off);
      off = *fq::detail::checked_align_up(off + t.source.size(), align);
    }
    return h;
  }

  /// Writes the file to `out` through a temporary file in the same folder, flushed and renamed
  /// when complete. Refuses to overwrite an input. On failure nothing is left behind.
  void write(const std::filesystem::path& out) const {
    const std::uint64_t align = alignment();
    check_output(out);
    const auto head = header();
    atomic_file f(out);
    f.write(head);
    if (!tensors_.empty()) f.pad_to(*fq::detail::checked_align_up(f.size(), align));
    std::vector<std::byte> chunk;
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      const auto& src = tensors_[i].source;
      if (src.produce_) {
        chunk.resize(static_cast<std::size_t>(std::min<std::uint64_t>(src.size_, 4u << 20)));
        for (std::uint64_t done = 0; done < src.size_;) {
          const auto n =
              static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), src.size_ - done));
          src.produce_(done, {chunk.data(), n});
          f.write({chunk.data(), n});
          done += n;
        }
      } else if (src.fd_ >= 0) {
        f.copy_from(src.fd_, src.fd_offset_, src.bytes_);
      } else {
        f.write(src.bytes_);
      }
      if (i + 1 < tensors_.size() || pad_end_)
        f.pad_to(*fq::detail::checked_align_up(f.size(), align));
    }
    f.commit();
  }

 private:
  struct input_id {
    dev_t dev;
    ino_t ino;
    std::string path;
  };

  static void check_tensor(const std::string& name, ggml_type type,
                           const std::vector<std::uint64_t>& shape, const tensor_source& src) {
    if (name.empty() || name.size() > max_name_length)
      throw error(errc::bad_tensor, "", "tensor name '" + name + "' must have 1 to 63 bytes");
    if (!is_valid_type(static_cast<std::uint32_t>(type)))
      throw error(errc::bad_tensor, "", "tensor '" + name + "' has an invalid ggml type");
    if (shape.size() > max_dims)
      throw error(errc::bad_tensor, "", "tensor '" + name + "' has more than 4 dimensions");
    for (auto ne : shape)
      if (ne == 0 || ne > static_cast<std::uint64_t>(INT64_MAX))
        throw error(errc::bad_tensor, "", "tensor '" + name + "' has a zero or negative dimension");
    const auto bytes = tensor_bytes(type, shape);
    if (!bytes)
      throw error(errc::bad_tensor, "",
                  "tensor '" + name + "': shape does not fit type " + std::string(type_name(type)) +
                      " (row length not a multiple of the block "
                      "size, or size overflow)");
    if (*bytes != src.size())
      throw error(errc::bad_tensor, "",
                  "tensor '" + name + "' needs " + std::to_string(*bytes) + " bytes of " +
                      std::string(type_name(type)) + " data, the source has " +
                      std::to_string(src.size()));
  }

  void check_output(const std::filesystem::path& out) const {
    const std::string s = out.string();
    struct stat st {};
    if (::stat(s.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) throw error(errc::invalid_argument, s, "output is a directory");
      for (const auto& in : inputs_)
        if (in.dev == st.st_dev && in.ino == st.st_ino)
          throw error(
              errc::same_file, s,
              "refusing to overwrite the input file " + in.path + "; choose another output path");
    }
  }

  std::uint32_t version_ = 3;
  std::vector<std::pair<std::string, value>> metadata_;
  std::vector<tensor_entry> tensors_;
  std::vector<input_id> inputs_;
  bool pad_end_ = true;
};

}  // namespace fq::gguf
