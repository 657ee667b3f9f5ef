package postgres

import (
	"strconv"
	"strings"
)

// note is one fraised_outbox notification (see fraised.publish): the shard
// it names and, for a small event, the event itself.
type note struct {
	shard   int
	carried bool // id, topic and payload are set
	id      int64
	topic   string
	payload string
}

// parseNote reads a notification's payload: "shard", or for a carried
// event "shard:id:topic_bytes:topic" followed by the payload text. ok is
// false for anything else: an empty payload (an older install's), or a
// NOTIFY sent by hand.
func parseNote(p string) (n note, ok bool) {
	head, rest, carried := strings.Cut(p, ":")
	shard, ok := digits(head)
	if !ok || shard > maxShards {
		return note{}, false
	}
	n.shard = int(shard)
	if !carried {
		return n, true
	}
	idText, rest, _ := strings.Cut(rest, ":")
	lenText, rest, found := strings.Cut(rest, ":")
	id, okID := digits(idText)
	tl, okLen := digits(lenText)
	if !found || !okID || !okLen || id == 0 || tl == 0 || tl >= int64(len(rest)) {
		return note{}, false
	}
	n.carried, n.id = true, id
	n.topic, n.payload = rest[:tl], rest[tl:]
	return n, true
}

// digits parses a non-negative decimal that fits an int64, written as
// PostgreSQL writes it: no sign, no spaces, no leading zero (strconv alone
// would take "+3" and "03").
func digits(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 19 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}
