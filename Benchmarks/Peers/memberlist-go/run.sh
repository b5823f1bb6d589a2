#!/bin/sh
# Builds and runs the hashicorp/memberlist peer measurement offline, from
# Debian's packages (no Go module proxy needed).
#   ./run.sh [runs] [extra flags for memberlist-peer, e.g. -quiet 60s -n 64]
# Prints "# ..." progress lines and one "RESULT ..." line per run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
runs=${1:-3}
[ $# -gt 0 ] && shift

# 1. Toolchain and sources (Debian bookworm: Go 1.19, memberlist 0.2.2).
if ! command -v go >/dev/null 2>&1 || ! [ -d /usr/share/gocode/src/github.com/hashicorp/memberlist ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update >&2
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y golang-go golang-github-hashicorp-memberlist-dev >&2
fi
echo "# $(go version); memberlist $(dpkg-query -W -f='${Version}' golang-github-hashicorp-memberlist-dev)"

# 2. Build in GOPATH mode against /usr/share/gocode (offline).
out=${TMPDIR:-/tmp}/memberlist-peer-build
mkdir -p "$out/cache"
(cd "$here" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$out/cache" GOFLAGS= \
    go build -o "$out/memberlist-peer" .)

# 3. Run (sequentially: 64 members each, on 127.0.0.1).
i=1
while [ "$i" -le "$runs" ]; do
    "$out/memberlist-peer" -run "$i" "$@" || echo "# run $i failed (exit $?)"
    i=$((i + 1))
done
