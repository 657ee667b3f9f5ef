// Publishes to fraised with ioredis, as a Node backend would, and prints
// the reply of every PUBLISH (in order) as JSON for
// e2e/redisclients_test.go. ioredis runs its INFO ready check first.
//
// Each round: one plain publish, a pipeline() of 5, a multi().exec()
// (MULTI/EXEC) of 5, and a PING.
import Redis from "ioredis";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "4001" },
    topic: { type: "string" },
    rounds: { type: "string", default: "20" },
  },
});
const topic = values.topic;
const redis = new Redis({ host: values.host, port: Number(values.port), maxRetriesPerRequest: 0, lazyConnect: true });
redis.on("error", (err) => {
  console.error("ioredis error:", err);
  process.exit(1);
});
await redis.connect();

const replies = [];
let seq = 0;
const event = () => JSON.stringify({ seq: seq++ });

// results of pipeline().exec() and multi().exec(): [[err, reply], ...]
const take = (results) => {
  for (const [err, reply] of results) {
    if (err) throw err;
    replies.push(reply);
  }
};

for (let round = 0; round < Number(values.rounds); round++) {
  replies.push(await redis.publish(topic, event()));
  let pipe = redis.pipeline();
  for (let i = 0; i < 5; i++) pipe.publish(topic, event());
  take(await pipe.exec());
  let tx = redis.multi();
  for (let i = 0; i < 5; i++) tx.publish(topic, event());
  take(await tx.exec());
  if ((await redis.ping()) !== "PONG") throw new Error("PING did not answer PONG (a stale reply?)");
}
await redis.quit();
console.log(JSON.stringify({ replies, steps: [`ioredis: ${values.rounds} rounds`] }));
