package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/proto"
)

// upgradedConn returns a connection past connection_init over a real
// socketpair whose peer end is drained.
func upgradedConn(t testing.TB) (*wsConn, *fakeConn) {
	s := newFuzzServer(t)
	fd, peer := socketpair(t)
	go func() { _, _ = bytes.NewBuffer(nil).ReadFrom(peer) }()
	fc := &fakeConn{fd: fd}
	c := newWSConn(s, fc)
	fc.in = []byte(upgradeRequest)
	c.onTraffic(fc)
	fc.in = append(fc.in, maskedText(`{"type":"connection_init"}`)...)
	c.onTraffic(fc)
	if c.phase != phaseWS || c.init.Load() != initAcked {
		t.Fatal("connection not initialised")
	}
	return c, fc
}

// TestPingWithoutPayloadDoesNotAllocate: answering a ping without payload
// (the keep-alive of every graphql-ws client) allocates nothing, UTF-8
// check included.
func TestPingWithoutPayloadDoesNotAllocate(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	c, fc := upgradedConn(t)
	ping := maskedText(`{"type":"ping"}`)
	in := make([]byte, 0, len(ping))
	if n := testing.AllocsPerRun(200, func() {
		fc.in = append(in[:0], ping...)
		c.onTraffic(fc)
	}); n != 0 {
		t.Fatalf("%v allocations per ping, want 0", n)
	}
	if c.phase != phaseWS {
		t.Fatal("connection closed by the pings")
	}
}

// FuzzPongEcho: whatever ping payload a client sends, the pong is one
// whole text frame holding valid JSON, never larger than the bound, and
// never carrying the token key.
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
		frame := appendPong(nil, m.Payload, "authorization", 1<<20)
		h, n, err := codec.ParseHeader(frame)
		if err != nil || n == 0 || int(h.Length) != len(frame)-n {
			t.Fatalf("pong is not one whole frame: %q", frame)
		}
		body := frame[n:]
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
		if small := appendPong(nil, m.Payload, "authorization", len(body)-1); !bytes.Equal(small, codec.FramePong) {
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
		if name := rootField(query, op); name != "" && !strings.Contains(query, name) {
			t.Fatalf("rootField(%q, %q) = %q, not in the document", query, op, name)
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

// BenchmarkUTF8CheckSubscribe is the cost of the RFC 6455 UTF-8 check on
// a typical subscribe message.
func BenchmarkUTF8CheckSubscribe(b *testing.B) {
	msg := []byte(`{"id":"6f1c2a7e-5d1b-4a8e-9c3f-2b7d8e1a0c55","type":"subscribe","payload":{"query":"subscription OnEvents($topic: String!) { events(topic: $topic) { seq ts body kind author { id name } tags } }","operationName":"OnEvents","variables":{"topic":"events.room-42"}}}`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		sinkBool = utf8.Valid(msg)
	}
}

var sinkBool bool
