package postgres

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strconv"
	"strings"
)

// macBytes is how much of the sha256 a carried event's notification holds
// (as hex), see fraised.publish.
const macBytes = 16

// note is one fraised_outbox notification (see fraised.publish): the shard
// it names and, for a small event, the event itself.
type note struct {
	shard   int
	carried bool // id, topic and payload are set
	id      int64
	head    string // "shard:id:topic_bytes:", signed with topic and payload
	mac     string // hex
	topic   string
	payload string
}

// parseNote reads a notification's payload: "shard", or for a carried
// event "shard:id:topic_bytes:mac:topic" followed by the payload text. ok
// is false for anything else: an empty payload (an older install's), or a
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
	lenText, rest, _ := strings.Cut(rest, ":")
	mac, rest, found := strings.Cut(rest, ":")
	id, okID := digits(idText)
	tl, okLen := digits(lenText)
	if !found || !okID || !okLen || id == 0 || tl == 0 || tl >= int64(len(rest)) || len(mac) != 2*macBytes {
		return note{}, false
	}
	n.carried, n.id = true, id
	n.head = p[:len(p)-len(rest)-len(mac)-1]
	n.mac, n.topic, n.payload = mac, rest[:tl], rest[tl:]
	return n, true
}

// signedBy reports whether n's mac is the one fraised.publish computes
// with key: sha256(key || head || topic || payload), its first macBytes.
// buf is scratch space, returned for reuse.
func (n *note) signedBy(key string, buf []byte) (bool, []byte) {
	var want [macBytes]byte
	if _, err := hex.Decode(want[:], []byte(n.mac)); key == "" || err != nil {
		return false, buf
	}
	buf = append(append(append(append(buf[:0], key...), n.head...), n.topic...), n.payload...)
	sum := sha256.Sum256(buf)
	return subtle.ConstantTimeCompare(sum[:macBytes], want[:]) == 1, buf
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
