#!/bin/sh
# `make perf-cluster`: scenario $SCENARIO (default S3: 1,000 events/s to 100 subscribers)
# against one node, then against one node of a cluster (--cluster on a
# real redis-server, publishing through the node: every event goes to
# Redis and back), same machine, same run; the harness's report shows the
# p99 of both. DURATION shortens the publishing phase (default: S3's).
#
# ROUNDS (default 4; keep it even) repeats the pair, in ABBA order
# (single, cluster; cluster, single; ...) so that a machine getting busier
# or quieter during the run weighs on both alike; the last lines give each
# target's p99 per round, their means and medians, and what the cluster
# adds: the difference of the means, and the median of the per-round
# differences. A run that fails stops the script (the rounds would no
# longer pair).
#
# CPUs (2-core machine): the server gets PERF_SERVER_CPU alone in both
# runs, the harness PERF_HARNESS_CPU, and redis-server PERF_REDIS_CPU,
# by default the harness's: in production Redis has a machine of its
# own, so it must not take the node's core (that would charge Redis' CPU
# to the node and make its event loops wait behind Redis); sharing the
# harness's core can only delay the harness's reads, which counts against
# the cluster, never for it. Unpinned, the kernel moves Redis onto
# whichever core is idler, and the two runs are not on equal terms.
set -eu
BIN=${PERF_BIN:-bin}
OUT=${OUT:-perf/results/cluster.jsonl}
MD=${MD:-perf/results/cluster.md}
DURATION=${DURATION:-}
SCENARIO=${SCENARIO:-S3}
SERVER_CPU=${PERF_SERVER_CPU:-0}
HARNESS_CPU=${PERF_HARNESS_CPU:-1}
REDIS_CPU=${PERF_REDIS_CPU:-$HARNESS_CPU}
TS_SERVER=""; TS_HARNESS=""; TS_REDIS=""
if command -v taskset >/dev/null 2>&1; then
	TS_SERVER="taskset -c $SERVER_CPU"; TS_HARNESS="taskset -c $HARNESS_CPU"; TS_REDIS="taskset -c $REDIS_CPU"
fi
DIR=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT"

# shellcheck disable=SC2086
$TS_REDIS redis-server --port 6391 --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" >"$DIR/redis.log" 2>&1 &
pids="$pids $!"
until redis-cli -p 6391 PING >/dev/null 2>&1; do sleep 0.1; done

run() { # label extra-flags...
	label=$1; shift
	# shellcheck disable=SC2086
	$TS_SERVER "$BIN/fraised" --schema examples/schema.graphql --listen 127.0.0.1:4300 \
		--publish-listen 127.0.0.1:4301 --log-level warn "$@" >"$DIR/$label.log" 2>&1 &
	srv=$!
	until curl -fs http://127.0.0.1:4300/readyz >/dev/null 2>&1; do sleep 0.1; done
	set -- --target "fraised-$label" --ws 127.0.0.1:4300 --publish 127.0.0.1:4301 --pid "$srv" --scenario "$SCENARIO" --out "$OUT"
	[ -n "$DURATION" ] && set -- "$@" --duration "$DURATION"
	# shellcheck disable=SC2086
	$TS_HARNESS "$BIN/fraised-bench" run "$@" || { echo "$label failed"; cat "$DIR/$label.log"; exit 1; }
	kill "$srv"; wait "$srv" 2>/dev/null || true
	echo "perf-cluster: $label done"
}
ROUNDS=${ROUNDS:-4}
i=1
while [ "$i" -le "$ROUNDS" ]; do
	if [ $((i % 2)) -eq 1 ]; then
		run single
		run cluster --cluster redis://127.0.0.1:6391
	else
		run cluster --cluster redis://127.0.0.1:6391
		run single
	fi
	i=$((i + 1))
done
"$BIN/fraised-bench" report --in "$OUT" --out "$MD" >/dev/null || true
cat "$MD" 2>/dev/null || true
# Each target's p99 (ms) per round, mean and median, and the difference.
if command -v jq >/dev/null 2>&1; then
	jq -rs '
		def med: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		def ms: . / 1000 | . * 100 | round / 100;
		(map(select(.target == "fraised-single") | .p99_us)) as $s |
		(map(select(.target == "fraised-cluster") | .p99_us)) as $c |
		"p99 single (ms):  \($s | map(ms))  mean \($s | add / length | ms)  median \($s | med | ms)",
		"p99 cluster (ms): \($c | map(ms))  mean \($c | add / length | ms)  median \($c | med | ms)",
		([range(0; $s | length) as $k | $c[$k] - $s[$k]]) as $d |
		"added by Redis (ms): mean \((($c | add / length) - ($s | add / length)) | ms)  median of the rounds \($d | med | ms)  per round \($d | map(ms))"
	' "$OUT" | tee -a "$MD"
fi
