#!/usr/bin/env bash
# Installs kvlab's build and runtime dependencies from Debian 12 packages.
# Idempotent: does nothing when every package is already installed and
# OpenBLAS is the selected libblas.so.3 alternative.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libdnnl-dev
  libsqlitecpp-dev libsqlite3-dev sqlite3
  libboost-program-options-dev libboost-math-dev
  libfmt-dev libgtest-dev nlohmann-json3-dev
  libopenblas0-pthread libopenblas-dev
  libicu-dev
  librsvg2-bin
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Node.js + npm run the independent reference tokenizers in the tests; the
# image may ship its own Node.js build, so only install Debian's when absent.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present" >&2
fi

# LibTorch links the generic libblas.so.3; Debian's default alternative can be
# netlib's reference BLAS (~30-60x slower for fp32 GEMM). Select OpenBLAS.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  name="${lib}-${arch}"
  cand=$(update-alternatives --list "$name" 2>/dev/null | grep -m1 openblas || true)
  if [ -n "$cand" ]; then
    cur=$(readlink -f "/etc/alternatives/$name" 2>/dev/null || true)
    if [ "$cur" != "$(readlink -f "$cand")" ]; then
      echo "install-deps: selecting $cand for $name" >&2
      $SUDO update-alternatives --set "$name" "$cand" >/dev/null
    fi
  fi
done
