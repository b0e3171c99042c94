#!/usr/bin/env bash
# Installs Slurm (slurmctld, slurmd, client tools) and MUNGE from Debian 12
# packages, for the opt-in one-node Slurm test (tests/slurm.cmake,
# scripts/slurm-cluster.sh). Idempotent: does nothing when every package is
# already installed. Does not start or enable any daemon: the package
# post-install scripts may try to (systemd is absent in containers, so they
# usually cannot); scripts/slurm-cluster.sh starts private instances itself.
set -euo pipefail

PKGS=(slurm-wlm slurmctld slurmd slurm-client munge)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-slurm: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d exit 101 keeps invoke-rc.d from starting the system daemons
  # (we run private instances with our own config); only set it when absent.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    created_policy=1
  fi
  trap 'if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi' EXIT
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-slurm: all packages present" >&2
fi

for b in sbatch squeue scancel slurmctld slurmd munged; do
  if ! command -v "$b" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$b" ]; then
    echo "install-slurm: $b not found after install" >&2
    exit 1
  fi
done
