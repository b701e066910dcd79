#!/usr/bin/env bash
# Installs what mailscope needs on Debian 12, from Debian's packages.
#   scripts/install-deps.sh            build dependencies
#   scripts/install-deps.sh --test     also the real peers the tests start (Dovecot 2.3,
#                                      Exim 4.96 with swaks, PostgreSQL 15, Prometheus
#                                      with promtool, tmux, daemontools' multilog),
#                                      clang's fuzzing runtime
#                                      and tools
# Uses sudo when not run as root. Installing a server package would start the
# distribution's service: a policy-rc.d that denies service starts is put in
# place for the duration of the install and removed afterwards.
set -euo pipefail

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
  cmake ninja-build g++ ccache pkg-config git
  libboost1.81-dev libfmt-dev libspdlog-dev libtomlplusplus-dev libcli11-dev
  libncurses-dev libgtest-dev libgmock-dev libbenchmark-dev libsimdjson-dev
  libsqlite3-dev libpq-dev zlib1g-dev libzstd-dev libssl-dev
)
if [ "$want_test" -eq 1 ]; then
  packages+=(clang libclang-rt-14-dev clang-format python3 curl socat tmux
             dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd prometheus
             exim4-daemon-light swaks openssl postgresql-15 daemontools tzdata gzip zstd)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
policy=/usr/sbin/policy-rc.d
placed_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  placed_policy=1
fi
cleanup() { if [ "$placed_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
