// SPDX-License-Identifier: MIT
// `fakequant generate` and `compare-generate`: llama.cpp's greedy text, reproducible sampling,
// multi-turn sessions, errors.
#include <fstream>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace {
nlohmann::json generate_json(const std::vector<std::string>& args, const std::string& input = "") {
  std::vector<std::string> all{"generate"};
  all.insert(all.end(), args.begin(), args.end());
  all.push_back("--json");
  const auto r = fq_test::run_program(all, input);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}
}  // namespace

TEST_CASE("cli generate: greedy text equals llama.cpp's on every reference prompt and model") {
  const auto ref = fq_test::require_shared("reference/tl-mini/llama.cpp-reference.json");
  if (ref.empty()) return;
  std::ifstream in(ref);
  const auto j = nlohmann::json::parse(in);
  std::size_t n = 0;
  for (const auto& g : j["greedy"]) {
    const auto model =
        (fq_test::shared_dir() / "testdata/models" / g["model"].get<std::string>()).string();
    CAPTURE(g["model"].get<std::string>());
    CAPTURE(g["prompt"].get<std::string>());
    const auto r =
        fq_test::run_program({"generate", "-m", model, "-p", g["prompt"].get<std::string>(), "-n",
                              std::to_string(g["n"].get<int>()), "--temp", "0", "-s", "1"});
    REQUIRE(r.status == 0);
    // stdout is the completion and a final newline.
    CHECK(r.out == g["continuation"].get<std::string>() + "\n");
    CHECK(r.err.find("tokens per second") != std::string::npos);
    ++n;
  }
  CHECK(n >= 21);
}

TEST_CASE("cli generate: the same seed gives the same sampled text with 1 and 2 threads") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-q8_0.gguf");
  if (model.empty()) return;
  const std::vector<std::string> common{"-m", model.string(), "-p", "The history of the city",
                                        "-n", "40",           "-s", "1234"};
  auto with = [&](const char* t) {
    auto args = common;
    args.insert(args.end(), {"-t", t});
    return generate_json(args);
  };
  const auto a = with("1"), b = with("2");
  CHECK(a["tokens"] == b["tokens"]);
  CHECK(a["tokens"].size() == 40);
  const auto c = generate_json(
      {"-m", model.string(), "-p", "The history of the city", "-n", "40", "-s", "99"});
  CHECK(c["tokens"] != a["tokens"]);  // another seed, another text
}

TEST_CASE("cli generate -i: three turns, the second answer sees the first") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  if (model.empty()) return;
  const std::string turn1 = "讓我們聊聊天吧。", turn2 = "你最喜歡什麼季節？為什麼？",
                    turn3 = "請用一句話總結我們剛才聊了什麼。";
  const auto session =
      generate_json({"-m", model.string(), "-i", "-n", "30", "--temp", "0", "-p", turn1},
                    turn2 + "\n" + turn3 + "\n");
  REQUIRE(session["turns"].size() == 3);
  for (const auto& t : session["turns"]) CHECK(!t["tokens"].empty());
  // The second turn alone, without the first in context: its answer's log-probabilities differ.
  const auto alone = generate_json({"-m", model.string(), "-n", "30", "--temp", "0", "-p", turn2});
  const auto& with_history = session["turns"][1];
  const bool differs =
      with_history["tokens"] != alone["tokens"] || with_history["logprobs"] != alone["logprobs"];
  CHECK(differs);
  // Its prompt holds the new turn only (the last answer token in place of BOS): history is cached.
  CHECK(with_history["prompt_tokens"].size() == alone["prompt_tokens"].size());
}

TEST_CASE("cli compare-generate: identical models agree, others diverge") {
  const auto models = fq_test::require_shared("testdata/models");
  if (models.empty()) return;
  const auto f32 = (models / "tl-mini-f32.gguf").string(),
             q8 = (models / "tl-mini-q8_0.gguf").string();
  const auto same = fq_test::run_program({"compare-generate", "-m", f32, "-m", f32, "-p", "Hello",
                                          "-n", "12", "--temp", "0", "--json"});
  REQUIRE(same.status == 0);
  const auto j = nlohmann::json::parse(same.out);
  CHECK(j["identical"] == true);
  for (const auto& d : j["logprob_a_minus_b"]) CHECK(std::abs(d.get<double>()) < 1e-4);
  const auto r =
      fq_test::run_program({"compare-generate", "-m", f32, "-m", q8, "-p",
                            " = Valkyria Chronicles III = \n", "-n", "24", "--temp", "0"});
  REQUIRE(r.status == 0);
  CHECK(r.out.find("logp A - B") != std::string::npos);
}

TEST_CASE("cli generate: invalid input gives a clear error") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  if (model.empty()) return;
  const auto m = model.string();
  const auto too_long =
      fq_test::run_program({"generate", "-m", m, "-c", "16", "-p", std::string(200, 'a')});
  CHECK(too_long.status == 1);
  CHECK(too_long.err.find("context overflow") != std::string::npos);
  const auto tmpl =
      fq_test::run_program({"generate", "-m", m, "-p", "x", "--chat-template", "vicuna"});
  CHECK(tmpl.status == 1);
  CHECK(tmpl.err.find("unknown chat template 'vicuna'") != std::string::npos);
  CHECK(fq_test::run_program({"generate", "-m", m, "-p", "x", "-n", "0"}).status == 2);
  CHECK(fq_test::run_program({"generate", "-m", m}).status == 2);
  const auto missing =
      fq_test::run_program({"generate", "-m", "/nonexistent/model.gguf", "-p", "x"});
  CHECK(missing.status == 1);
  CHECK(missing.err.find("/nonexistent/model.gguf") != std::string::npos);
}
