package floorproto

import (
	"testing"

	"github.com/fraised/fraised/perf/internal/wsframe"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Msg
	}{
		{`{"type":"connection_init","payload":{}}`, Msg{Kind: Init}},
		{`{"type":"ping"}`, Msg{Kind: Ping}},
		{`{"type":"pong"}`, Msg{Kind: Pong}},
		{`{"id":"3","type":"complete"}`, Msg{Kind: Complete, ID: "3"}},
		{`{"id":"1","type":"subscribe","payload":{"query":"subscription($t:String!){events(topic:$t){seq}}","variables":{"t":"bench.0"}}}`,
			Msg{Kind: Subscribe, ID: "1", Topic: "bench.0"}},
		{`{"id":"2","type":"subscribe","payload":{"query":"subscription{events(topic: \"lit\"){seq}}"}}`,
			Msg{Kind: Subscribe, ID: "2", Topic: "lit"}},
		{`{"id":"2","type":"subscribe","payload":{"query":"subscription{events{seq}}"}}`, Msg{}},
		{`not json`, Msg{}},
	}
	for _, tt := range tests {
		if got := Parse([]byte(tt.in)); got != tt.want {
			t.Errorf("Parse(%s) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestAppendNext(t *testing.T) {
	ev := []byte(`{"seq":5,"ts":1.5,"body":"x"}`)
	f := AppendNext(nil, "7", ev)
	h, n, err := wsframe.ParseHeader(f, 1<<16)
	if err != nil || n == 0 || h.Masked || h.Op != wsframe.OpText || n+h.Len != len(f) {
		t.Fatalf("header %+v n=%d err=%v len=%d", h, n, err, len(f))
	}
	want := `{"id":"7","type":"next","payload":{"data":{"events":{"seq":5,"ts":1.5,"body":"x"}}}}`
	if string(f[n:]) != want {
		t.Fatalf("payload %s", f[n:])
	}
}
