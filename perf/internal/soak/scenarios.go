package soak

// Scenarios is the suite, in the order it runs: the abuses of issue 8's
// adversarial test, then its faults.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "idle-flood", Quick: true, NOFILE: [2]int{16384, 2048}, Run: idleFlood,
			What: "TCP connections from 127.0.0.2-250 that never send a byte, past the server's descriptor limit"},
		{Name: "healthz-pipeline-noread", Quick: true, Run: healthzNoread,
			What: "one connection pipelines GET /healthz and never reads"},
		{Name: "ws-ping-flood-noread", Quick: true, Run: pingFloodNoread,
			What: "one WebSocket floods ping frames and never reads"},
		{Name: "slowloris-body", Quick: true, Run: slowlorisBody,
			What: "POSTs announcing 1 MiB that send one byte less, then stall"},
		{Name: "noread-subscribers", Quick: true, Run: noreadSubscribers,
			What: "2,000 subscribers (300 in the subset) that never read, 64 KiB events"},
		{Name: "slow-consumer-close-codes", Quick: true, Run: slowConsumerCloseCodes,
			What: "slow consumers, cut, must each find close 1013 \"slow consumer\""},
		{Name: "close-with-input-in-flight", Quick: true, Run: closeWithInputInFlight,
			What: "clients closed for 4429 or 4400 with more messages in flight must get that code"},
		{Name: "sigterm-under-load", Quick: true, Ends: true, Run: sigtermUnderLoad,
			What: "SIGTERM while publishing 10,000 events/s: acknowledged vs delivered, close 1001, exit 0"},
		{Name: "kill9-restart", Quick: true, Ends: true, Run: kill9Restart,
			What: "kill -9 with clients connected, restart on the same addresses, clients reconnect"},
		{Name: "publisher-flood-fairness", Quick: true, Run: publisherFloodFairness,
			What: "three publishers flood; a light publisher's reply times"},
		{Name: "publisher-noread-replies", Quick: true, Run: publisherNoreadReplies,
			What: "publishers pipeline PUBLISH and never read the replies"},
		{Name: "publisher-partial-inline", Quick: true, Run: publisherPartialInline,
			What: "publishers each send 1 MiB of an inline command with no newline, then stall"},
		{Name: "ring-bytes", Quick: true, Run: ringBytes,
			What: "1 MB events published faster than the dispatcher takes them"},
		{Name: "resume-storm", SDL: historySDL, Run: resumeStorm,
			What: "100 clients (20 with --quick) cut and resume at random moments during 10 s at 10,000 events/s (2 s at 2,000/s): gap-free, duplicate-free"},
		{Name: "cluster-kill9", SDL: historySDL, Cluster: true, Ends: true, Run: clusterKill9,
			What: "3 nodes on Redis behind a round-robin proxy, 10,000 events/s across 100 topics to 300 recipe clients (2,000/s, 20, 60 with --quick); kill -9 one node, restart it: 0 lost, 0 duplicated, in order"},
		{Name: "cluster-drain", SDL: historySDL, Cluster: true, Ends: true, Run: clusterDrain,
			What: "3 nodes on Redis behind a round-robin proxy, 1,000 recipe clients on 100 topics at 5,000 events/s (100, 10, 1,000/s with --quick); SIGTERM one node: 1001 after the queued frames, resumed elsewhere, 0 lost"},
	}
}
