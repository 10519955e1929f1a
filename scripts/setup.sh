#!/usr/bin/env bash
# One-command set-up on Debian bookworm: installs the packages fakequant needs, configures and builds,
# then runs what was asked for.
#   scripts/setup.sh demo   build, then run the main job on its embedded default
#   scripts/setup.sh test   build, then run the whole test suite
#   scripts/setup.sh build  build only
# Environment: BUILD_DIR (default build), FQ_CMAKE_ARGS (extra cmake arguments), JOBS.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-build}
case "$what" in demo|test|build) ;; *) echo "usage: scripts/setup.sh demo|test|build" >&2; exit 2;; esac

packages=(cmake ninja-build g++ libxsimd-dev libfmt-dev doctest-dev libbenchmark-dev
          nlohmann-json3-dev libcli11-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
# shellcheck disable=SC2086  # FQ_CMAKE_ARGS is a list of arguments
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${FQ_CMAKE_ARGS:-}
cmake --build "$build" -j "$jobs"

case "$what" in
  demo) "$build/fakequant" test1 --demo --workdir "${DEMO_DIR:-fakequant-demo}" ;;
  # ctest-junit.xml: every test's output and status, for .ci/run's check of the skips.
  test) ctest --test-dir "$build" -j "$jobs" --output-on-failure --output-junit ctest-junit.xml ;;
  build) ;;
esac
