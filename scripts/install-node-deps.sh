#!/usr/bin/env bash
# Installs the JavaScript reference tokenizers used by the tokenizer tests
# (tests/node: @huggingface/tokenizers, gpt-3-encoder; pure JavaScript) with
# `npm ci` from tests/node/package-lock.json.
#
# Idempotent: does nothing when tests/node/node_modules was installed from
# the current lock file (a stamp holds the lock file's SHA-256). Needs node
# and npm (Debian: nodejs, npm) and the npm registry; fails with a clear
# message when they are missing. Safe to run concurrently (flock).
set -euo pipefail
cd "$(dirname "$0")/../tests/node"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-node-deps: node and npm are required for the tokenizer reference tests" \
       "(Debian packages: nodejs npm); not found on PATH" >&2
  exit 1
fi

stamp=node_modules/.kvlab-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)

exec 9>"${TMPDIR:-/tmp}/kvlab-node-deps-$(pwd | sha256sum | cut -c1-16).lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && [ -d node_modules/@huggingface/tokenizers ] && [ -d node_modules/gpt-3-encoder ]; then
  echo "install-node-deps: tests/node/node_modules is up to date" >&2
  exit 0
fi
echo "install-node-deps: npm ci in tests/node" >&2
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
