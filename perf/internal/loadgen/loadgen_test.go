package loadgen

import (
	"strings"
	"testing"

	"github.com/fraised/fraised/perf/internal/wsframe"
)

func TestAppendEventCarriesSeq(t *testing.T) {
	for _, seq := range []int64{-1, 0, 17, 1 << 40} {
		ev := appendEvent(nil, seq, 1732740000.123456)
		got, ok := wsframe.Seq(ev)
		if !ok || got != seq {
			t.Fatalf("seq %d: parsed %d, %v from %s", seq, got, ok, ev)
		}
		if !strings.Contains(string(ev), `"ts":1732740000.123456,"body":"xxxx`) {
			t.Fatalf("event %s", ev)
		}
	}
}

func TestHTTPResponseEnd(t *testing.T) {
	tests := []struct {
		in string
		n  int
		ok bool
	}{
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02{}", 56, true},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n", 0, false},
		{"HTTP/1.1 400 Bad Request\r\n\r\n", 28, false},
	}
	for _, tt := range tests {
		n, ok := httpResponseEnd([]byte(tt.in))
		if n != tt.n || ok != tt.ok {
			t.Errorf("%q: got %d, %v", tt.in, n, ok)
		}
	}
}

func TestSubscribeFrame(t *testing.T) {
	f := appendSubscribe(nil, 3, []byte("bench.7"), [4]byte{1, 2, 3, 4})
	h, n, err := wsframe.ParseHeader(f, 1<<16)
	if err != nil || n == 0 || !h.Masked || n+h.Len != len(f) {
		t.Fatalf("header %+v n=%d err=%v", h, n, err)
	}
	p := f[n:]
	wsframe.Mask(p, h.Mask, 0)
	if string(wsframe.ID(p)) != "3" || string(wsframe.Type(p)) != "subscribe" || !strings.Contains(string(p), `"variables":{"t":"bench.7"}`) {
		t.Fatalf("payload %s", p)
	}
}

func TestScenarioSubscriptionLayout(t *testing.T) {
	sc := Scenarios()["S6"]
	if sc.allSubs() != sc.Conns*sc.SubsPerConn+sc.Slow*sc.SlowSubs {
		t.Fatalf("allSubs = %d", sc.allSubs())
	}
	s5 := Scenarios()["S5"]
	seen := map[int]bool{}
	for k := range s5.totalSubs() {
		seen[s5.topicOf(k)] = true
	}
	if len(seen) != s5.Topics {
		t.Fatalf("S5 spreads %d subscriptions over %d topics, want %d", s5.totalSubs(), len(seen), s5.Topics)
	}
	if _, err := Lookup("nope"); err == nil || !strings.Contains(err.Error(), "S3") {
		t.Fatalf("Lookup error must list the scenarios, got %v", err)
	}
}

func TestSummaryRatiosAndExtraSubscription(t *testing.T) {
	rs := []Result{
		{Target: "fraised", Scenario: "S3", Expected: 10, Delivered: 10, P99Us: 2000},
		{Target: "gnet-floor", Scenario: "S3", Expected: 10, Delivered: 10, P99Us: 1000},
		{Target: "gqlgen", Scenario: "S3", Expected: 10, Delivered: 10, P99Us: 200000},
		{Target: "fraised", Scenario: "S1-19k", Conns: 19000, Subs: 1, RSSBeforeKB: 1000, RSSAfterKB: 1000 + 19000},
		{Target: "fraised", Scenario: "S1b", Conns: 19000, Subs: 5, RSSBeforeKB: 1000, RSSAfterKB: 1000 + 19000 + 19000*4/2},
	}
	var b strings.Builder
	WriteSummary(&b, rs)
	out := b.String()
	for _, want := range []string{
		"| S3 p99 | 2.00 ms | 1.00 ms | 200.00 ms | 2.00× | 100.00× |",
		"| S1b RSS per extra subscription | 512 B | - | - | - | - |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
