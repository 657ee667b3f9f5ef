package proto

import (
	"errors"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		in      string
		typ     Type
		id      string
		query   string
		payload string
		vars    string
		bad     bool
	}{
		{in: `{"type":"connection_init"}`, typ: TypeConnectionInit},
		{in: ` {"type":"connection_init","payload":{"authorization":"Bearer x"}}`, typ: TypeConnectionInit, payload: `{"authorization":"Bearer x"}`},
		{in: `{"type":"connection_init","payload":null}`, typ: TypeConnectionInit},
		{in: `{"type":"ping","payload":{"a":1}}`, typ: TypePing, payload: `{"a":1}`},
		{in: `{"type":"pong"}`, typ: TypePong},
		{in: `{"id":"a\"b","type":"subscribe","payload":{"query":"{ x }","variables":{"v":1},"operationName":null}}`,
			typ: TypeSubscribe, id: `a"b`, query: "{ x }", vars: `{"v":1}`, payload: `{"query":"{ x }","variables":{"v":1},"operationName":null}`},
		{in: `{"id":"1","type":"complete"}`, typ: TypeComplete, id: "1"},
		{in: `{"type":"connection_init","payload":[1]}`, bad: true},
		{in: `{"type":"ping","payload":"x"}`, bad: true},
		{in: `{"type":"subscribe","payload":{"query":"x"}}`, bad: true},
		{in: `{"id":"","type":"subscribe","payload":{"query":"x"}}`, bad: true},
		{in: `{"id":1,"type":"subscribe","payload":{"query":"x"}}`, bad: true},
		{in: `{"id":"1","type":"subscribe"}`, bad: true},
		{in: `{"id":"1","type":"subscribe","payload":{"query":1}}`, bad: true},
		{in: `{"id":"1","type":"subscribe","payload":{"query":"x","variables":"v"}}`, bad: true},
		{in: `{"id":"1","type":"subscribe","payload":{"query":"x","operationName":3}}`, bad: true},
		{in: `{"id":"1","type":"subscribe","payload":{"query":"x","extensions":[]}}`, bad: true},
		{in: `{"type":"complete"}`, bad: true},
		{in: `{"type":"next","id":"1","payload":{}}`, bad: true},
		{in: `{"type":"connection_ack"}`, bad: true},
		{in: `{"type":"what"}`, bad: true},
		{in: `{"type":1}`, bad: true},
		{in: `[]`, bad: true},
		{in: `{"type":"ping"`, bad: true},
		{in: ``, bad: true},
	}
	for _, tt := range tests {
		m, err := Decode([]byte(tt.in))
		if tt.bad {
			if !errors.Is(err, ErrBadMessage) {
				t.Errorf("%s: err = %v, want ErrBadMessage", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if m.Type != tt.typ || m.IDString != tt.id || m.Query != tt.query || string(m.Payload) != tt.payload || string(m.Variables) != tt.vars {
			t.Errorf("%s: got %+v", tt.in, m)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { seq } }","variables":{}}}`))
	f.Add([]byte(`{"type":"connection_init","payload":{"authorization":"Bearer abc"}}`))
	f.Add([]byte(`{"id":"1","type":"complete"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if m.Type == TypeUnknown {
			t.Fatal("decoded an unknown type")
		}
		if (m.Type == TypeSubscribe || m.Type == TypeComplete) && (m.IDString == "" || len(m.ID) < 2) {
			t.Fatalf("%s without id", m.Type)
		}
	})
}
