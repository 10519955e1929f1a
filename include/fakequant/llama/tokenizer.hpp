// SPDX-License-Identifier: MIT
// The LLaMA SentencePiece tokenizer as llama.cpp runs it from GGUF metadata (tokenizer.ggml.model =
// llama): spaces become ▁ with a space prefixed to each run of text, adjacent pieces are merged by
// score (highest first, leftmost on ties), and whatever is left that is not a piece falls back to
// the byte tokens <0xXX>. Special tokens can be matched in the text as whole strings.
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <functional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../error.hpp"
#include "../gguf/file.hpp"

namespace fq::llama {

/// Token types of tokenizer.ggml.token_type.
enum class token_type : std::int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

class tokenizer {
 public:
  /// Reads the vocabulary of `f`; an error naming the file and key for anything inconsistent.
  static tokenizer from_file(const gguf::file& f) {
    tokenizer t;
    const auto model = f.find<std::string_view>("tokenizer.ggml.model");
    if (!model)
      throw error(errc::not_found, f.path(), "missing metadata key 'tokenizer.ggml.model'");
    if (*model != "llama")
      throw error(
          errc::unsupported, f.path(),
          "unsupported tokenizer '" + std::string(*model) +
              "' (tokenizer.ggml.model); the built-in tokenizer reads SentencePiece 'llama'");
    const auto* tokens = f.find_entry("tokenizer.ggml.tokens");
    if (!tokens)
      throw error(errc::not_found, f.path(), "missing metadata key 'tokenizer.ggml.tokens'");
    if (!tokens->value.is_array() || tokens->value.element_type() != gguf::value_type::string)
      throw error(errc::type_mismatch, f.path(), tokens->file_offset,
                  "'tokenizer.ggml.tokens' must be an array of strings");
    const std::size_t n = static_cast<std::size_t>(tokens->value.size());
    if (n == 0 || n > (1u << 24))
      throw error(errc::invalid_argument, f.path(), tokens->file_offset,
                  "'tokenizer.ggml.tokens' has " + std::to_string(n) + " entries");
    const auto* scores = f.find_entry("tokenizer.ggml.scores");
    const auto* types = f.find_entry("tokenizer.ggml.token_type");
    auto check_array = [&](const gguf::metadata_entry* e, const char* key, gguf::value_type et) {
      if (!e) return;
      if (!e->value.is_array() || e->value.element_type() != et || e->value.size() != n)
        throw error(errc::invalid_argument, f.path(), e->file_offset,
                    std::string("'") + key + "' must be an array of " +
                        std::string(gguf::value_type_name(et)) + " with one entry per token (" +
                        std::to_string(n) + ")");
    };
    check_array(scores, "tokenizer.ggml.scores", gguf::value_type::f32);
    check_array(types, "tokenizer.ggml.token_type", gguf::value_type::i32);
    t.pieces_.reserve(n);
    t.scores_.assign(n, 0.0f);
    t.types_.assign(n, token_type::normal);
    t.index_.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
      t.pieces_.emplace_back(*tokens->value.string_at(i));
      if (scores) t.scores_[i] = *scores->value.at<float>(i);
      if (types) t.types_[i] = static_cast<token_type>(*types->value.at<std::int32_t>(i));
      t.index_.emplace(t.pieces_.back(), static_cast<std::int32_t>(i));
    }
    t.byte_tokens_.fill(-1);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& p = t.pieces_[i];
      if (t.types_[i] == token_type::byte) {
        // Exactly <0xHH>: stoi would read "<0x-1>" as -1, an index before byte_tokens_, and
        // token_to_piece decodes every byte token this way.
        const auto hex = [&](std::size_t k) {
          return std::isxdigit(static_cast<unsigned char>(p[k]));
        };
        if (p.size() != 6 || !p.starts_with("<0x") || !hex(3) || !hex(4) || p[5] != '>')
          throw error(
              errc::invalid_argument, f.path(), tokens->file_offset,
              "token " + std::to_string(i) + " has type byte but is '" + p + "', not <0xHH>");
        const int b = std::stoi(p.substr(3, 2), nullptr, 16);
        t.byte_tokens_[static_cast<std::size_t>(b)] = static_cast<std::int32_t>(i);
      }
      if (t.types_[i] == token_type::control || t.types_[i] == token_type::user_defined ||
          t.types_[i] == token_type::unknown)
        if (!p.empty()) t.specials_.push_back(static_cast<std::int32_t>(i));
    }
    // Longest special strings first, as llama.cpp matches them.
    std::stable_sort(t.specials_.begin(), t.specials_.end(), [&](std::int32_t a, std::int32_t b) {
      return t.pieces_[static_cast<std::size_t>(a)].size() >
             t.pieces_[static_cast<std::size_t>(b)].size();
    });
    auto id_key = [&](const char* key, std::int32_t fallback) {
      const auto* e = f.find_entry(key);
      if (!e) return fallback;
      const auto v = e->value.get_integer();
      if (!v || *v < -1 || *v >= static_cast<std::int64_t>(n))
        throw error(errc::invalid_argument, f.path(), e->file_offset,
                    std::string("'") + key + "' is not a token id of this vocabulary");
      return static_cast<std::int32_t>(*v);
    };
    t.bos_ = id_key("tokenizer.ggml.bos_token_id", 1);
    t.eos_ = id_key("tokenizer.ggml.eos_token_id", 2);
    t.unk_ = id_key("tokenizer.ggml.unknown_token_id", 0);
    auto flag = [&](const char* key, bool fallback) {
      const auto v = f.find<bool>(key);
      return v ? *v : fallback;
    };
    t.add_bos_ = flag("tokenizer.ggml.add_bos_token", true);
    t.add_eos_ = flag("tokenizer.ggml.add_eos_token", false);
    t.add_space_prefix_ = flag("tokenizer.ggml.add_space_prefix", true);
    return t;
  }

  std::size_t size() const noexcept { return pieces_.size(); }
  std::int32_t bos() const noexcept { return bos_; }
  std::int32_t eos() const noexcept { return eos_; }
  bool add_bos() const noexcept { return add_bos_; }
  const std::string& piece(std::int32_t id) const {
    return pieces_.at(static_cast<std::size_t>(id));
  }
  token_type type(std::int32_t id) const { return types_.at(static_cast<std::size_t>(id)); }
  /// The id of a piece, or -1.
  std::int32_t find(std::string_view piece) const {
    const auto it = index_.find(piece);
    return it == index_.end() ? -1 : it->second;
  }

  /// Token ids of `text`. `add_special` adds BOS/EOS as the vocabulary asks; `parse_special`
  /// recognises control tokens written in the text (user-defined ones are always recognised).
  std::vector<std::int32_t> encode(std::string_view text, bool add_special = true,
                                   bool parse_special = false) const {
    std::vector<std::int32_t> out;
    if (add_special && add_bos_) out.push_back(bos_);
    bool prev_special = true;  // a space is prefixed to the first run of text
    std::size_t pos = 0;
    while (pos < text.size()) {
      // The next special token in the text, if any (longest first at the same position).
      std::size_t best_at = text.size();
      std::int32_t best = -1;
      for (auto id : specials_) {
        const auto tt = types_[static_cast<std::size_t>(id)];
        if (!parse_special && (tt == token_type::control || tt == token_type::unknown)) continue;
        const auto at = text.find(pieces_[static_cast<std::size_t>(id)], pos);
        if (at < best_at) {
          best_at = at;
          best = id;
        }
      }
      if (best_at > pos) {
        encode_run(text.substr(pos, best_at - pos), prev_special, out);
        prev_special = false;
      }
      if (best < 0) break;
      out.push_back(best);
      prev_special = true;
      pos = best_at + pieces_[static_cast<std::size_t>(best)].size();
    }
    if (add_special && add_eos_) out.push_back(eos_);
    return out;
  }

  /// The bytes of one token as text: ▁ becomes a space, byte tokens their byte; control tokens
  /// give nothing unless `special`.
  std::string token_to_piece(std::int32_t id, bool special = false) const {
    if (id < 0 || static_cast<std::size_t>(id) >= pieces_.size()) return {};
    const auto& p = pieces_[static_cast<std::size_t>(id)];
    switch (types_[static_cast<std::size_t>(id)]) {
      case token_type::byte:
        return std::string(1, static_cast<char>(std::stoi(p.substr(3, 2), nullptr, 16)));
      case token_type::control:
        return special ? p : std::string();
      case token_type::unknown:
        return "\xe2\x96\x85";  // ▅, as llama.cpp shows an unknown token
      default: {
        std::string s;
        for (std::size_t i = 0; i < p.size(); ++i) {
          if (p.compare(i, 3, "\xe2\x96\x81") == 0) {
            s += ' ';
            i += 2;
          } else {
            s += p[i];
          }
        }
        return s;
      }
    }
  }

  /// Text of a sequence of tokens: byte tokens reassemble into UTF-8; the space the tokenizer
  /// prefixed to the text is removed after BOS (or at the start) as llama.cpp does.
  std::string decode(std::span<const std::int32_t> ids, bool special = false) const {
    std::string s;
    bool strip = add_space_prefix_;
    for (auto id : ids) {
      if (id == bos_ && !special) {
        strip = add_space_prefix_;
        continue;
      }
      auto piece = token_to_piece(id, special);
      if (strip && !piece.empty()) {
        if (piece[0] == ' ') piece.erase(0, 1);
        strip = false;
      }
      s += piece;
    }
    return s;
  }

 private:
  struct symbol {
    std::size_t start, n;
    std::int64_t prev, next;
  };
  struct bigram {
    std::int64_t left, right;
    float score;
    std::size_t size;
  };
  struct bigram_order {
    bool operator()(const bigram& a, const bigram& b) const noexcept {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };

  // One run of text without special tokens: SentencePiece merges, then byte fallback.
  void encode_run(std::string_view raw, bool prefix_space, std::vector<std::int32_t>& out) const {
    std::string text;
    text.reserve(raw.size() * 3 + 3);
    if (add_space_prefix_ && prefix_space) text += "\xe2\x96\x81";
    for (char c : raw) {
      if (c == ' ') {
        text += "\xe2\x96\x81";
      } else {
        text += c;
      }
    }
    std::vector<symbol> sym;
    sym.reserve(text.size());
    for (std::size_t off = 0; off < text.size();) {
      const auto c = static_cast<unsigned char>(text[off]);
      // A stray continuation byte (0x80-0xBF) is a symbol of its own, as in llama.cpp; taken as a
      // lead byte it swallowed the next character (found by fuzz/tokenizer_fuzz).
      const std::size_t len = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      const std::size_t n = std::min(len, text.size() - off);
      const auto i = static_cast<std::int64_t>(sym.size());
      sym.push_back({off, n, i - 1, off + n == text.size() ? -1 : i + 1});
      off += n;
    }
    std::priority_queue<bigram, std::vector<bigram>, bigram_order> queue;
    const std::string_view tv(text);
    auto try_add = [&](std::int64_t l, std::int64_t r) {
      if (l < 0 || r < 0) return;
      const auto& a = sym[static_cast<std::size_t>(l)];
      const auto& b = sym[static_cast<std::size_t>(r)];
      const auto it = index_.find(tv.substr(a.start, a.n + b.n));
      if (it == index_.end()) return;
      queue.push({l, r, scores_[static_cast<std::size_t>(it->second)], a.n + b.n});
    };
    for (std::size_t i = 1; i < sym.size(); ++i)
      try_add(static_cast<std::int64_t>(i) - 1, static_cast<std::int64_t>(i));
    while (!queue.empty()) {
      const auto bg = queue.top();
      queue.pop();
      auto& l = sym[static_cast<std::size_t>(bg.left)];
      auto& r = sym[static_cast<std::size_t>(bg.right)];
      if (l.n == 0 || r.n == 0 || l.n + r.n != bg.size) continue;  // stale: a side merged since
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym[static_cast<std::size_t>(r.next)].prev = bg.left;
      try_add(l.prev, bg.left);
      try_add(bg.left, l.next);
    }
    for (std::int64_t i = sym.empty() ? -1 : 0; i != -1;
         i = sym[static_cast<std::size_t>(i)].next) {
      const auto& s = sym[static_cast<std::size_t>(i)];
      const auto it = index_.find(tv.substr(s.start, s.n));
      if (it != index_.end()) {
        out.push_back(it->second);
        continue;
      }
      for (std::size_t j = 0; j < s.n; ++j) {
        const auto b = static_cast<unsigned char>(text[s.start + j]);
        out.push_back(byte_tokens_[b] >= 0 ? byte_tokens_[b] : unk_);
      }
    }
  }

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<token_type> types_;
  // Heterogeneous lookup: pieces of the text are looked up as views, without a string copy.
  struct piece_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, std::int32_t, piece_hash, std::equal_to<>> index_;
  std::array<std::int32_t, 256> byte_tokens_{};
  std::vector<std::int32_t> specials_;
  std::int32_t bos_ = 1, eos_ = 2, unk_ = 0;
  bool add_bos_ = true, add_eos_ = false, add_space_prefix_ = true;
};

}  // namespace fq::llama
