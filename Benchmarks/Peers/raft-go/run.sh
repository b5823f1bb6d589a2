#!/bin/sh
# Builds and runs the etcd raft and hashicorp/raft peers of Chorus's Raft
# benchmark, offline, from Debian's Go packages (no proxy.golang.org).
#   ./run.sh                 install (apt, needs root), build, run both
#   RUNS=3 ./run.sh          measured runs per workload (default 5; median)
#   ONLY=etcd ./run.sh       only etcd raft (or ONLY=hashicorp)
#   ETCD_GOMAXPROCS=1 ...    GOMAXPROCS for the etcd run (default 1: one thread, as Chorus)
#   HASHICORP_GOMAXPROCS=n   GOMAXPROCS for the hashicorp/raft run (default: Go's, all cores)
# Machine-readable lines: "<impl> <workload> <metric> <value>", e.g.
#   etcd-raft pipelined commits/s 312345
# Lines starting with '#' are per-run detail.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-5}
ONLY=${ONLY:-}
ETCD_GOMAXPROCS=${ETCD_GOMAXPROCS:-1}

need=""
command -v go >/dev/null 2>&1 || need="$need golang-go"
[ -d /usr/share/gocode/src/go.etcd.io/etcd/raft ] || need="$need golang-etcd-server-dev"
[ -d /usr/share/gocode/src/github.com/hashicorp/raft ] || need="$need golang-github-hashicorp-raft-dev"
if [ -n "$need" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y $need
fi

# GOPATH mode against Debian's source tree: no module download at all.
export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off
export GOCACHE=${GOCACHE:-${TMPDIR:-/tmp}/chorus-peer-raft-gocache}
bin=${TMPDIR:-/tmp}/chorus-peer-raft-bin
mkdir -p "$bin"
(cd "$here/etcd" && go build -o "$bin/etcd-raft-bench" .)
(cd "$here/hashicorp" && go build -o "$bin/hashicorp-raft-bench" .)

echo "# $(go version); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
dpkg-query -W -f='# ${Package} ${Version}\n' golang-go golang-etcd-server-dev golang-github-hashicorp-raft-dev 2>/dev/null || true
if [ "$ONLY" != hashicorp ]; then
    GOMAXPROCS=$ETCD_GOMAXPROCS "$bin/etcd-raft-bench" -runs "$RUNS"
fi
if [ "$ONLY" != etcd ]; then
    if [ -n "${HASHICORP_GOMAXPROCS:-}" ]; then
        GOMAXPROCS=$HASHICORP_GOMAXPROCS "$bin/hashicorp-raft-bench" -runs "$RUNS"
    else
        "$bin/hashicorp-raft-bench" -runs "$RUNS"
    fi
fi
