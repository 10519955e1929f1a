// SPDX-License-Identifier: MIT
// The bad-input table of the README, row by row, for every subcommand: exit status 1 or 2, one
// line on stderr that names the thing and says what to do, the inputs untouched, nothing written.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

namespace fs = std::filesystem;
using fq_test::read_bytes;
using fq_test::run_program;

// Files shared by every row: a small model, a text long enough for perplexity, and the bad ones.
struct fixture {
  fq_test::temp_dir dir;
  std::vector<char> model_bytes, text_bytes;

  fixture() {
    const auto r = run_program({"synth", "--preset", "tiny", p("model.gguf")});
    REQUIRE(r.status == 0);
    std::string text;
    for (int i = 0; i < 300; ++i)
      text += "The quick brown fox jumps over the lazy dog while the model is rounded. ";
    put("good.txt", text);
    model_bytes = read_bytes(dir / "model.gguf");
    text_bytes = read_bytes(dir / "good.txt");
    fs::create_directory(dir / "adir");
    put("empty.gguf", "");
    put("empty.txt", "");
    put("short.txt", "Hello there.");
    put("latin1.txt", "caf\xe9 cr\xe8me br\xfbl\xe9" + text);
    put("notgguf.gguf", "hello, this is a text file and not a model\n");
    // Cut inside the tensor data: the header parses, the data it declares is missing.
    put("trunc.gguf",
        std::string(model_bytes.begin(), model_bytes.begin() + model_bytes.size() / 2));
    put("unread.gguf", std::string(model_bytes.begin(), model_bytes.end()));
    fs::permissions(dir / "unread.gguf", fs::perms::none);
    fs::create_symlink(dir / "model.gguf", dir / "link.gguf");
    fs::create_hard_link(dir / "model.gguf", dir / "hard.gguf");
    fs::create_directory(dir / "ro");
    fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  }
  ~fixture() {
    std::error_code ec;
    fs::permissions(dir / "ro", fs::perms::owner_all, ec);
  }

  std::string p(const std::string& name) const { return (dir / name).string(); }
  void put(const std::string& name, const std::string& s) const {
    fq_test::write_bytes(dir / name, s.data(), s.size());
  }
};

fixture& fx() {
  static fixture f;
  return f;
}

// Whether permissions bite (they do not for root): then the unreadable and read-only rows run.
bool permissions_bite() {
  std::FILE* f = std::fopen(fx().p("unread.gguf").c_str(), "rb");
  if (f != nullptr) std::fclose(f);
  return f == nullptr;
}

void skip_for_root(const char* row) {
  fq_test::skip(std::string("running as root, permissions do not apply: ") + row);
}

// "@name" is a file of the fixture.
std::vector<std::string> expand(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& a : args) out.push_back(a.size() > 1 && a[0] == '@' ? fx().p(a.substr(1)) : a);
  return out;
}

// Runs one row and checks everything the table promises.
void check_row(const std::vector<std::string>& args, int status,
               const std::vector<std::string>& expect) {
  auto& f = fx();
  const auto argv = expand(args);
  std::string shown;
  for (const auto& a : argv) shown += a + " ";
  CAPTURE(shown);
  const auto r = run_program(argv);
  CAPTURE(r.err);
  CHECK(r.status == status);
  // Exactly one line, from the program, naming the thing and the fix.
  REQUIRE(!r.err.empty());
  CHECK(r.err.back() == '\n');
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.rfind("fakequant: ", 0) == 0);
  for (const auto& e : expand(expect)) {
    CAPTURE(e);
    CHECK(r.err.find(e) != std::string::npos);
  }
  // The inputs are untouched and nothing was left behind.
  CHECK(read_bytes(f.dir / "model.gguf") == f.model_bytes);
  CHECK(read_bytes(f.dir / "good.txt") == f.text_bytes);
  CHECK(!fs::exists(f.dir / "out.gguf"));
  CHECK(!fs::exists(f.dir / "out.json"));
  for (const auto& e : fs::recursive_directory_iterator(f.dir.path()))
    CHECK(e.path().filename().string().find(".fqtmp-") == std::string::npos);
  std::error_code ec;
  fs::remove_all(f.dir / "wd", ec);
}

// Whether this build has `name`: every command does, so a missing one is a failure, not a skip.
bool has_command(const char* name) {
  const bool ok = run_program({name, "--help"}).status == 0;
  CHECK_MESSAGE(ok, "no " << name << " command in this build");
  return ok;
}

// Every command that reads a GGUF file, with IN standing for it.
struct command {
  const char* name;
  std::vector<std::string> args;
};
const std::vector<command>& gguf_commands() {
  static const std::vector<command> c = {
      {"inspect", {"inspect", "IN"}},
      {"copy", {"copy", "IN", "@out.gguf"}},
      {"synth", {"synth", "--preset", "tiny", "--vocab", "IN", "@out.gguf"}},
      {"diff", {"diff", "@model.gguf", "IN"}},
      {"perplexity", {"perplexity", "-m", "IN", "-f", "@good.txt", "-c", "64"}},
      {"generate", {"generate", "-m", "IN", "-p", "Hello", "-n", "2"}},
      {"compare-generate", {"compare-generate", "-m", "@model.gguf", "-m", "IN", "-p", "Hi"}},
      {"quantize", {"quantize", "IN", "@out.gguf", "--tensors", "*", "--format", "bf16"}},
      {"test1", {"test1", "--model", "IN", "--text", "@good.txt", "--workdir", "@wd"}},
  };
  static const std::vector<command> with_sweep = [] {
    auto v = c;
    if (has_command("sweep"))
      v.push_back({"sweep",
                   {"sweep", "--model", "IN", "--text", "@good.txt", "--workdir", "@wd",
                    "--tensors", "blk.0.ffn_norm.weight", "--formats", "bf16"}});
    return v;
  }();
  return with_sweep;
}

void every_gguf_command(const std::string& in, int status, const std::vector<std::string>& expect) {
  for (const auto& c : gguf_commands()) {
    CAPTURE(c.name);
    auto args = c.args;
    std::replace(args.begin(), args.end(), std::string("IN"), in);
    check_row(args, status, expect);
  }
}

}  // namespace

TEST_CASE("bad input - missing file - every command") {
  every_gguf_command("@missing.gguf", 1, {"@missing.gguf", "No such file", "check the path"});
}

TEST_CASE("bad input - directory instead of file - every command") {
  every_gguf_command("@adir", 1, {"@adir", "is a directory", "give the path of a file"});
}

TEST_CASE("bad input - unreadable file - every command") {
  if (!permissions_bite()) return skip_for_root("unreadable file (chmod 000)");
  every_gguf_command("@unread.gguf", 1, {"@unread.gguf", "Permission denied", "permissions"});
}

TEST_CASE("bad input - empty file - every command") {
  every_gguf_command("@empty.gguf", 1, {"@empty.gguf", "empty file", "download or convert"});
}

TEST_CASE("bad input - truncated file - every command") {
  every_gguf_command("@trunc.gguf", 1, {"@trunc.gguf", "download or convert it again"});
}

TEST_CASE("bad input - non-GGUF file - every command") {
  every_gguf_command("@notgguf.gguf", 1,
                     {"@notgguf.gguf", "not a GGUF file", "download or convert"});
}

TEST_CASE("bad input - corrupted GGUF from the shared test data - every command") {
  const auto dir = fq_test::require_shared("testdata/gguf-corrupted");
  if (dir.empty()) return;
  for (const auto& e : fs::directory_iterator(dir)) {
    CAPTURE(e.path());
    every_gguf_command(e.path().string(), 1, {e.path().string(), "download or convert it again"});
  }
}

TEST_CASE("bad input - wrong tensor name or pattern") {
  const std::string fix = "'fakequant inspect FILE' lists the tensor names";
  check_row({"quantize", "@model.gguf", "@out.gguf", "--tensors", "blk.0.ffn_nrom.weight",
             "--format", "bf16"},
            1, {"blk.0.ffn_nrom.weight", "closest: blk.0.ffn_norm.weight", fix});
  check_row(
      {"quantize", "@model.gguf", "@out.gguf", "--tensors", "blk.*.nothing", "--format", "bf16"}, 1,
      {"blk.*.nothing", fix});
  check_row({"diff", "@model.gguf", "@model.gguf", "--tensors", "nosuch"}, 1, {"nosuch", fix});
  check_row({"test1", "--model", "@model.gguf", "--text", "@good.txt", "--workdir", "@wd",
             "--tensors", "blk.9.ffn_norm.weight"},
            1, {"@model.gguf", "blk.9.ffn_norm.weight", fix});
  if (has_command("sweep"))
    check_row({"sweep", "--model", "@model.gguf", "--text", "@good.txt", "--workdir", "@wd",
               "--tensors", "blk.9.ffn_norm.weight", "--formats", "bf16"},
              1, {"@model.gguf", "blk.9.ffn_norm.weight", fix});
}

TEST_CASE("bad input - unknown format") {
  check_row({"quantize", "@model.gguf", "@out.gguf", "--tensors", "*", "--format", "bf17"}, 1,
            {"unknown format 'bf17'", "known: bf16"});
  check_row({"test1", "--model", "@model.gguf", "--text", "@good.txt", "--workdir", "@wd",
             "--format", "fp9"},
            1, {"unknown format 'fp9'", "known: bf16"});
  if (has_command("sweep"))
    check_row({"sweep", "--model", "@model.gguf", "--text", "@good.txt", "--workdir", "@wd",
               "--tensors", "*", "--formats", "fp9"},
              1, {"unknown format 'fp9'", "known: bf16"});
  check_row({"synth", "--preset", "tiny", "--type", "bf17", "@out.gguf"}, 2,
            {"--type", "bf17", "for usage"});
  check_row({"perplexity", "-m", "@model.gguf", "-f", "@good.txt", "--kld-format", "f8"}, 2,
            {"--kld-format", "for usage"});
  check_row({"generate", "-m", "@model.gguf", "-p", "Hi", "--activations", "f8"}, 2,
            {"--activations", "for usage"});
  check_row(
      {"perplexity", "-m", "@model.gguf", "--kl-divergence", "--kl-divergence-base", "@good.txt"},
      1, {"@good.txt", "not a KL-divergence base file"});
}

TEST_CASE("bad input - invalid numbers in options") {
  struct number_row {
    std::vector<std::string> args;
    const char* option;  // as the message names it
  };
  const std::vector<number_row> rows = {
      {{"synth", "--preset", "tiny", "--seed", "abc", "@out.gguf"}, "--seed"},
      {{"diff", "@model.gguf", "@model.gguf", "--epsilon", "nan"}, "--epsilon"},
      {{"diff", "@model.gguf", "@model.gguf", "--epsilon", "-1"}, "--epsilon"},
      {{"diff", "@model.gguf", "@model.gguf", "--threads", "two"}, "--threads"},
      {{"perplexity", "-m", "@model.gguf", "-f", "@good.txt", "-c", "0"}, "--ctx-size"},
      {{"perplexity", "-m", "@model.gguf", "-f", "@good.txt", "--chunks", "3x"}, "--chunks"},
      {{"generate", "-m", "@model.gguf", "-p", "Hi", "-n", "0"}, "--n-predict"},
      {{"generate", "-m", "@model.gguf", "-p", "Hi", "--temp", "nan"}, "--temp"},
      {{"generate", "-m", "@model.gguf", "-p", "Hi", "--top-p", "inf"}, "--top-p"},
      {{"compare-generate", "-m", "@model.gguf", "-m", "@model.gguf", "-p", "Hi", "--min-p", "2"},
       "--min-p"},
      {{"quantize", "@model.gguf", "@out.gguf", "--tensors", "*", "--format", "bf16", "--seed",
        "x"},
       "--seed"},
      {{"test1", "--model", "@model.gguf", "--text", "@good.txt", "--workdir", "@wd", "--ctx-size",
        "abc"},
       "--ctx-size"},
      {{"test1", "--model", "@model.gguf", "--text", "@good.txt", "--workdir", "@wd", "--threads",
        "0"},
       "--threads"},
  };
  for (const auto& r : rows) check_row(r.args, 2, {r.option, "for usage"});
}

TEST_CASE("bad input - output path equal to input") {
  const std::string fix = "choose another output path";
  for (const char* out : {"@model.gguf", "@link.gguf", "@hard.gguf"}) {
    check_row({"copy", "@model.gguf", out}, 1, {out, "@model.gguf", fix});
    check_row({"quantize", "@model.gguf", out, "--tensors", "*", "--format", "bf16"}, 1,
              {out, fix});
  }
  // The same file through a ./ path, from inside the folder.
  const auto cwd = fs::current_path();
  fs::current_path(fx().dir.path());
  check_row({"copy", "model.gguf", "./model.gguf"}, 1, {"./model.gguf", fix});
  fs::current_path(cwd);
  check_row({"synth", "--preset", "tiny", "--vocab", "@model.gguf", "@link.gguf"}, 1, {fix});
  check_row({"diff", "@model.gguf", "@model.gguf", "--output", "@link.gguf"}, 1, {fix});
  check_row(
      {"perplexity", "-m", "@model.gguf", "-f", "@good.txt", "--kl-divergence-base", "@good.txt"},
      1, {"@good.txt", fix});
  check_row(
      {"perplexity", "-m", "@model.gguf", "-f", "@good.txt", "--kl-divergence-base", "@hard.gguf"},
      1, {"@hard.gguf", fix});
}

TEST_CASE("bad input - output folder missing") {
  const std::string fix = "create it";
  check_row({"copy", "@model.gguf", "@nodir/out.gguf"}, 1, {"@nodir", fix});
  check_row({"quantize", "@model.gguf", "@nodir/out.gguf", "--tensors", "*", "--format", "bf16"}, 1,
            {"@nodir", fix});
  check_row({"synth", "--preset", "tiny", "@nodir/out.gguf"}, 1, {"@nodir", fix});
  check_row({"diff", "@model.gguf", "@model.gguf", "--output", "@nodir/out.json"}, 1,
            {"@nodir", fix});
  check_row({"perplexity", "-m", "@model.gguf", "-f", "@good.txt", "--kl-divergence-base",
             "@nodir/base.kld"},
            1, {"@nodir", fix});
  // test1 creates its work folder; one that is a file cannot be.
  check_row({"test1", "--model", "@model.gguf", "--text", "@good.txt", "--workdir", "@good.txt/wd"},
            1, {"@good.txt/wd", "choose another --workdir"});
  // An output that is a folder.
  check_row({"copy", "@model.gguf", "@adir"}, 1, {"@adir", "give a file name inside it"});
}

TEST_CASE("bad input - output folder read-only") {
  if (!permissions_bite()) return skip_for_root("output folder read-only (chmod 555)");
  const std::string fix = "choose another output folder";
  check_row({"copy", "@model.gguf", "@ro/out.gguf"}, 1, {"@ro", fix});
  check_row({"quantize", "@model.gguf", "@ro/out.gguf", "--tensors", "*", "--format", "bf16"}, 1,
            {"@ro", fix});
  check_row({"synth", "--preset", "tiny", "@ro/out.gguf"}, 1, {"@ro", fix});
  check_row({"diff", "@model.gguf", "@model.gguf", "--output", "@ro/out.json"}, 1, {"@ro", fix});
  check_row({"perplexity", "-m", "@model.gguf", "-f", "@good.txt", "--kl-divergence-base",
             "@ro/base.kld"},
            1, {"@ro", fix});
  check_row({"test1", "--model", "@model.gguf", "--text", "@good.txt", "--workdir", "@ro/wd"}, 1,
            {"@ro/wd", "choose another --workdir"});
}

TEST_CASE("bad input - text file missing or a directory or empty or too short or not UTF-8") {
  struct text_row {
    const char* file;
    std::vector<std::string> expect;
  };
  const std::vector<text_row> rows = {
      {"@missing.txt", {"@missing.txt", "check the path"}},
      {"@adir", {"@adir", "is a directory", "text file inside it"}},
      {"@empty.txt", {"@empty.txt", "empty", "a few thousand words"}},
      {"@short.txt", {"@short.txt", "tokens", "longer text"}},
      {"@latin1.txt", {"@latin1.txt", "byte 3", "not valid UTF-8", "iconv"}},
  };
  const bool sweep = has_command("sweep");
  for (const auto& r : rows) {
    check_row({"perplexity", "-m", "@model.gguf", "-f", r.file, "-c", "64"}, 1, r.expect);
    check_row({"test1", "--model", "@model.gguf", "--text", r.file, "--workdir", "@wd"}, 1,
              r.expect);
    if (sweep)
      check_row({"sweep", "--model", "@model.gguf", "--text", r.file, "--workdir", "@wd",
                 "--tensors", "*", "--formats", "bf16"},
                1, r.expect);
  }
  if (permissions_bite()) {
    fs::copy_file(fx().dir / "good.txt", fx().dir / "unread.txt");
    fs::permissions(fx().dir / "unread.txt", fs::perms::none);
    check_row({"perplexity", "-m", "@model.gguf", "-f", "@unread.txt"}, 1,
              {"@unread.txt", "permissions"});
    fs::remove(fx().dir / "unread.txt");
  } else {
    skip_for_root("unreadable text file (chmod 000)");
  }
  // The prompt is text too.
  check_row({"generate", "-m", "@model.gguf", "-p", "caf\xe9", "-n", "2"}, 2,
            {"--prompt", "not valid UTF-8 at byte 3", "UTF-8"});
  check_row({"compare-generate", "-m", "@model.gguf", "-m", "@model.gguf", "-p", "\xff"}, 2,
            {"not valid UTF-8 at byte 0"});
}
