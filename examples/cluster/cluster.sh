#!/bin/sh
# `make cluster`: a real redis-server and three fraised nodes on it, behind
# a TCP round-robin proxy (perf/cmd/rrproxy), all on loopback. Ctrl-C
# stops everything. Ports: proxy 4000 (WebSocket and HTTP), nodes
# 4100/4110/4120 (HTTP) and 4101/4111/4121 (RESP publish), Redis 6390.
set -eu
BIN=${BIN:-bin/fraised}
PROXY=${PROXY:-bin/rrproxy}
SCHEMA=${SCHEMA:-examples/schema.graphql}
REDIS_PORT=${REDIS_PORT:-6390}
TOKEN=${TOKEN:-cluster-demo}
DIR=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" >"$DIR/redis.log" 2>&1 &
pids="$pids $!"
i=0
while ! redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 100 ] && { echo "redis-server did not start:"; cat "$DIR/redis.log"; exit 1; }
	sleep 0.1
done
for n in 0 1 2; do
	"$BIN" --schema "$SCHEMA" --listen "127.0.0.1:41${n}0" --publish-listen "127.0.0.1:41${n}1" \
		--publish-token "$TOKEN" --cluster "redis://127.0.0.1:$REDIS_PORT" >"$DIR/node$n.log" 2>&1 &
	pids="$pids $!"
done
"$PROXY" -listen 127.0.0.1:4000 127.0.0.1:4100 127.0.0.1:4110 127.0.0.1:4120 &
pids="$pids $!"
for n in 0 1 2; do
	i=0
	until curl -fs "http://127.0.0.1:41${n}0/readyz" >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 100 ] && { echo "node $n not ready:"; cat "$DIR/node$n.log"; exit 1; }
		sleep 0.1
	done
done
cat <<MSG
fraised cluster: Redis 127.0.0.1:$REDIS_PORT, nodes 127.0.0.1:4100 4110 4120, proxy ws://127.0.0.1:4000/graphql
  subscribe (through the proxy; each connection lands on the next node):
      npm ci --prefix e2e/npm && node e2e/npm/subscribe.mjs events.demo   (its default URL is the proxy)
  publish through any node (RESP answers the number of nodes that received it):
      redis-cli -p 4101 PUBLISH events.demo '{"seq":1,"ts":1.5,"body":"hello"}'
      curl -H 'Authorization: Bearer $TOKEN' -d '{"seq":2,"ts":1.5,"body":"hi"}' http://127.0.0.1:4110/publish/events.demo
  or straight into Redis, as any backend may:
      redis-cli -p $REDIS_PORT FCALL fraised_publish 2 fraised:m:events.demo fraised:s:events.demo fraised:c:events.demo '{"seq":3,"ts":1.5,"body":"direct"}' 1000 60000 86400000
  readiness: curl http://127.0.0.1:4100/readyz     logs: $DIR
Ctrl-C stops the cluster.
MSG
wait
