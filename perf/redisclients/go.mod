module github.com/fraised/fraised/perf/redisclients

go 1.26.8

require (
	github.com/redis/go-redis/v9 v9.17.3
	github.com/redis/rueidis v1.0.79
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dgryski/go-rendezvous v0.0.0-20200823014737-9f7001d12a5f // indirect
	golang.org/x/sys v0.47.0 // indirect
)

// internal/redistest: the redis-server the broker's own tests start.
require github.com/fraised/fraised v0.0.0

replace github.com/fraised/fraised => ../..
