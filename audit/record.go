package audit

import (
	"strconv"
	"strings"
	"time"

	"github.com/fraised/fraised/internal/jsonx"
)

// Event names. Records may use others; these are the ones fraised writes.
const (
	EventConnAccepted      = "conn.accepted"
	EventConnRefused       = "conn.refused"
	EventAuthOK            = "auth.ok"
	EventAuthFailed        = "auth.failed"
	EventSubscribeAccepted = "subscribe.accepted"
	EventSubscribeRefused  = "subscribe.refused"
	EventRateLimit         = "ratelimit"
	EventSlowConsumer      = "slow_consumer"
	EventTokenExpired      = "token.expired"
	EventTokenRenewed      = "token.renewed"
)

// Record is one audit event. Empty fields are left out of the JSON line.
// Never put a token, a password or an event payload in a Record.
type Record struct {
	Time      time.Time // zero: filled in by Write
	Event     string
	Remote    string // client address
	Subject   string // identity subject
	Reason    string // why something was refused or closed
	Operation string // GraphQL operation name
	Field     string // subscription root field
	DocHash   string // hash of the GraphQL document
	Topic     string
	ConnID    uint64
}

// AppendJSON appends r as one JSON line ({"time":...}\n) to dst and returns
// the extended buffer: "time" in RFC3339Nano UTC, then event, conn_id,
// remote, subject, reason, operation, field, doc_hash, topic, each left out
// when empty. Invalid UTF-8 becomes U+FFFD, so every line parses. Safe for
// concurrent use; allocates only to grow dst.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"time":"`...)
	dst = r.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	dst = appendField(dst, "event", r.Event)
	if r.ConnID != 0 {
		dst = append(dst, `,"conn_id":`...)
		dst = strconv.AppendUint(dst, r.ConnID, 10)
	}
	dst = appendField(dst, "remote", r.Remote)
	dst = appendField(dst, "subject", r.Subject)
	dst = appendField(dst, "reason", r.Reason)
	dst = appendField(dst, "operation", r.Operation)
	dst = appendField(dst, "field", r.Field)
	dst = appendField(dst, "doc_hash", r.DocHash)
	dst = appendField(dst, "topic", r.Topic)
	return append(dst, "}\n"...)
}

// own makes r's strings its own: one allocation holding all of them, so r
// no longer views memory its creator may reuse.
// (A concatenation would not do: Go returns a lone non-empty operand
// itself.)
func (r *Record) own() {
	fields := [...]*string{&r.Event, &r.Remote, &r.Subject, &r.Reason, &r.Operation, &r.Field, &r.DocHash, &r.Topic}
	n := 0
	for _, f := range fields {
		n += len(*f)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range fields {
		b.WriteString(*f)
	}
	all := b.String()
	for _, f := range fields {
		*f, all = all[:len(*f)], all[len(*f):]
	}
}

// appendField appends ,"name":"value" unless value is empty.
func appendField(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, `":`...)
	return jsonx.AppendString(dst, value) // escapes what could forge a line
}
