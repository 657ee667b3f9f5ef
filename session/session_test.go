package session

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/proto"
)

// TestInternalErrorCloses4500: a panic while handling a message closes
// that connection with 4500 and nothing else.
func TestInternalErrorCloses4500(t *testing.T) {
	e := newTestEnv(t)
	s, c := e.start(e.shared(Config{}))
	testHookMessage = func() { panic("boom") }
	defer func() { testHookMessage = nil }()
	msg(s, `{"type":"connection_init"}`)
	if code := c.closedWith(); code != proto.CloseInternalError {
		t.Fatalf("close code %d, want 4500", code)
	}
	if got := c.sent(); len(got) != 0 {
		t.Fatalf("sent %q after the panic", got)
	}
	s.End()
}

// TestAnsweredQueryFreesItsID: once a query is answered, its id may be
// used again and it no longer counts against the operations cap; a
// running query's id is taken (4409).
func TestAnsweredQueryFreesItsID(t *testing.T) {
	e := newTestEnv(t)
	s, c := e.start(e.shared(Config{Limits: Limits{MaxOperations: 1}}))
	defer s.End()
	msg(s, `{"type":"connection_init"}`)
	msg(s, `{"id":"q","type":"subscribe","payload":{"query":"{ __typename }"}}`)
	got := c.waitSent(t, 3)
	if got[0] != string(proto.MessageAck) || !strings.Contains(got[1], `"type":"next"`) || got[2] != `{"id":"q","type":"complete"}` {
		t.Fatalf("sent %q, want ack, next, complete", got)
	}
	msg(s, `{"id":"q","type":"subscribe","payload":{"query":"{ __typename }"}}`)
	if got := c.waitSent(t, 5); c.closedWith() != 0 || got[4] != `{"id":"q","type":"complete"}` {
		t.Fatalf("reused id after its answer: closed %d, sent %q", c.closedWith(), got)
	}
	msg(s, `{"id":"s","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { seq } }"}}`)
	msg(s, `{"id":"s","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { seq } }"}}`)
	if code := c.closedWith(); code != proto.CloseSubscriberExists {
		t.Fatalf("duplicate id of an active subscription: close %d, want 4409", code)
	}
	e.d.DiscardQueued()
}

// TestOperationsCapCountsRunningWork: the per-connection cap counts
// active subscriptions, and a refused subscribe is an error message, not
// a close.
func TestOperationsCapCountsRunningWork(t *testing.T) {
	e := newTestEnv(t)
	s, c := e.start(e.shared(Config{Limits: Limits{MaxOperations: 1}}))
	defer s.End()
	msg(s, `{"type":"connection_init"}`)
	msg(s, `{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { seq } }"}}`)
	msg(s, `{"id":"2","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { seq } }"}}`)
	got := c.sent()
	if len(got) != 2 || !strings.HasPrefix(got[1], `{"id":"2","type":"error","payload":[{"message":"too many active operations`) {
		t.Fatalf("sent %q, want the ack and an error for id 2", got)
	}
	msg(s, `{"id":"1","type":"complete"}`)
	msg(s, `{"id":"2","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { seq } }"}}`)
	if got := c.sent(); len(got) != 2 || c.closedWith() != 0 {
		t.Fatalf("after complete, a new subscription is accepted silently: sent %q, closed %d", got, c.closedWith())
	}
	e.d.DiscardQueued()
}

// TestSubscribeBeforeAckCloses4401 and a second init closes 4429.
func TestInitOrder(t *testing.T) {
	e := newTestEnv(t)
	s, c := e.start(e.shared(Config{}))
	msg(s, `{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { seq } }"}}`)
	if code := c.closedWith(); code != proto.CloseUnauthorized {
		t.Fatalf("subscribe before init: close %d, want 4401", code)
	}
	s.End()
	s, c = e.start(e.shared(Config{}))
	msg(s, `{"type":"connection_init"}`)
	msg(s, `{"type":"connection_init"}`)
	if code := c.closedWith(); code != proto.CloseTooManyInitRequests || c.inits != 1 || !s.Acked() {
		t.Fatalf("second init: close %d (want 4429), initialised %d times, acked %v", code, c.inits, s.Acked())
	}
	s.End()
}

// FuzzMessages feeds a session arbitrary messages after a valid init:
// nothing may panic, and whatever the session sends is valid JSON.
func FuzzMessages(f *testing.F) {
	f.Add([]byte(`{"type":"ping","payload":{"a":1}}`), []byte(`{"id":"1","type":"complete"}`))
	f.Add([]byte(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { seq } }"}}`), []byte(`{"id":"1","type":"complete"}`))
	f.Add([]byte(`{"id":"q","type":"subscribe","payload":{"query":"{ __typename }"}}`), []byte(`{"id":"q","type":"complete"}`))
	f.Add([]byte(`{"id":"\u0000\"","type":"subscribe","payload":{"query":"subscription {"}}`), []byte(`{"type":"pong"}`))
	e := newTestEnv(f)
	h := e.shared(Config{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if !utf8.Valid(a) || !utf8.Valid(b) {
			return // the transport closes with 1007 before the session sees it
		}
		s, c := e.start(h)
		msg(s, `{"type":"connection_init"}`)
		s.OnMessage(a, 1)
		s.OnMessage(b, 2)
		s.End()
		e.d.DiscardQueued()
		for _, m := range c.sent() {
			if !json.Valid([]byte(m)) {
				t.Fatalf("sent invalid JSON %q", m)
			}
		}
	})
}

// FuzzPongEcho: whatever ping payload a client sends, the pong is valid
// JSON, never larger than the bound, and never carries the token key.
func FuzzPongEcho(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"authorization":"Bearer x","a":1}`))
	f.Add([]byte(`{"AUTHORIZATION":"x","authorization":"y","b":{"authorization":"nested stays"}}`))
	f.Add([]byte(`{"a\u0000":"\ud800","é":[1,2,{"x":null}]}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		msg := append(append([]byte(`{"type":"ping","payload":`), payload...), '}')
		m, err := proto.Decode(msg)
		if err != nil || m.Payload == nil {
			return
		}
		body := appendPong(nil, m.Payload, "authorization", 1<<20)
		var v struct {
			Type    string                     `json:"type"`
			Payload map[string]json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.Type != "pong" {
			t.Fatalf("pong is not valid JSON: %q: %v", body, err)
		}
		for k := range v.Payload {
			if strings.EqualFold(k, "authorization") {
				t.Fatalf("token key echoed: %q", body)
			}
		}
		if utf8.Valid(msg) && !utf8.Valid(body) {
			t.Fatalf("valid UTF-8 ping, invalid UTF-8 pong: %q", body)
		}
		if len(body) > len(msg) {
			t.Fatalf("pong (%d bytes) larger than its ping (%d)", len(body), len(msg))
		}
		if small := appendPong(nil, m.Payload, "authorization", len(body)-1); string(small) != string(proto.MessagePong) {
			t.Fatalf("pong past the bound is not the bare pong: %q", small)
		}
	})
}

// FuzzRootField: naming the root field of any document, valid or not,
// never panics and never names something that is not in the document.
func FuzzRootField(f *testing.F) {
	f.Add("subscription A { events(topic: \"x\") { seq } }", "A")
	f.Add("query Q { a } subscription S { ... on Subscription { ...F } } fragment F on Subscription { tenantEvents { seq } }", "S")
	f.Add("fragment F on S { ...F } subscription { ...F }", "")
	f.Add("{ ... { ... { ... { x } } } }", "")
	f.Add("subscription { a: b }", "")
	f.Fuzz(func(t *testing.T, query, op string) {
		name, field := rootField(query, op)
		if field != "" && !strings.Contains(query, field) {
			t.Fatalf("rootField(%q, %q) field %q, not in the document", query, op, field)
		}
		if name != "" && !strings.Contains(query, name) {
			t.Fatalf("rootField(%q, %q) name %q, not in the document", query, op, name)
		}
	})
}

// TestExistsReasonFitsACloseFrame: the 4409 reason of any id is valid
// UTF-8, fits a close frame uncut, and holds a JSON-escaped prefix of the
// id that ends between two escapes.
func TestExistsReasonFitsACloseFrame(t *testing.T) {
	for _, id := range []string{"a1", strings.Repeat("\x01", 200), strings.Repeat("€", 100), strings.Repeat(`"`, 100), "a\xffb", strings.Repeat("x", 92) + "€"} {
		r := existsReason(id)
		inner := strings.TrimSuffix(strings.TrimPrefix(r, "Subscriber for "), " already exists")
		var unq string
		if !utf8.ValidString(r) || len(r) > codec.MaxCloseReason || json.Unmarshal([]byte(`"`+inner+`"`), &unq) != nil ||
			!strings.HasPrefix(strings.ToValidUTF8(id, "\uFFFD"), unq) || unq == "" {
			t.Fatalf("existsReason(%q) = %q (%d bytes)", id, r, len(r))
		}
	}
}
