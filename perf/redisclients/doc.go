// Package redisclients measures the two Go Redis clients fraised could
// use for its cluster broker (broker/redis), github.com/redis/go-redis/v9
// and github.com/redis/rueidis, on the broker's own calls: fraised_publish
// one at a time and in pipelines, and the pub/sub hop. It is a separate
// module so rueidis never enters fraised's go.mod; see README.md.
package redisclients
