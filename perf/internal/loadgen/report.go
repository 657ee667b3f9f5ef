package loadgen

import (
	"fmt"
	"io"
	"slices"
)

// targetOrder is the column order of the summary.
var targetOrder = []string{"fraised", "fraised-unix", "gnet-floor", "net-floor", "gqlgen"}

// index keeps the latest result per target and scenario.
type index map[string]map[string]Result

func newIndex(rs []Result) (index, []string) {
	ix := index{}
	var targets []string
	for _, r := range rs {
		if ix[r.Target] == nil {
			ix[r.Target] = map[string]Result{}
			targets = append(targets, r.Target)
		}
		ix[r.Target][r.Scenario] = r
	}
	slices.SortStableFunc(targets, func(a, b string) int { return rank(a) - rank(b) })
	return ix, targets
}

func rank(t string) int {
	if i := slices.Index(targetOrder, t); i >= 0 {
		return i
	}
	return len(targetOrder)
}

// metric is one row of the summary: a value per target (ok false = not run).
type metric struct {
	name   string
	value  func(ix index, target string) (float64, bool)
	format func(float64) string
	lower  bool // lower is better
}

func get(ix index, t, sc string) (Result, bool) {
	r, ok := ix[t][sc]
	ok = ok && (r.Delivered > 0 || r.RSSAfterKB > 0)
	return r, ok
}

func field(sc string, f func(Result) float64) func(index, string) (float64, bool) {
	return func(ix index, t string) (float64, bool) {
		r, ok := get(ix, t, sc)
		if !ok {
			return 0, false
		}
		return f(r), true
	}
}

// extraSub is S1b's RSS per extra subscription: (S1b growth − S1-19k
// growth) ÷ (connections × extra subscriptions each).
func extraSub(ix index, t string) (float64, bool) {
	b, ok1 := get(ix, t, "S1b")
	a, ok2 := get(ix, t, "S1-19k")
	if !ok1 || !ok2 || b.Subs <= 1 {
		return 0, false
	}
	grow := float64((b.RSSAfterKB-b.RSSBeforeKB)-(a.RSSAfterKB-a.RSSBeforeKB)) * 1024
	return grow / float64(b.Conns*(b.Subs-1)), true
}

func deliveredPct(r Result) float64 {
	if r.Expected == 0 {
		return 0
	}
	return 100 * float64(r.Delivered) / float64(r.Expected)
}

// absorbedPct is the share of the scheduled events the server took before
// the publishing deadline (HTTP publishers wait for each answer).
func absorbedPct(r Result) float64 {
	if r.Scheduled == 0 {
		return 100
	}
	return 100 * float64(r.Published) / float64(r.Scheduled)
}

func metrics() []metric {
	msF := func(v float64) string { return fmt.Sprintf("%.2f ms", v/1000) }
	usF := func(v float64) string { return fmt.Sprintf("%.2f µs", v) }
	pctF := func(v float64) string { return fmt.Sprintf("%.2f %%", v) }
	secF := func(v float64) string { return fmt.Sprintf("%.2f s", v) }
	rate := func(v float64) string { return human(v) + "/s" }
	p99 := func(r Result) float64 { return r.P99Us }
	p999 := func(r Result) float64 { return r.P999Us }
	cpu := func(r Result) float64 { return r.ServerCPUUs }
	rssConn := func(r Result) float64 { return r.RSSPerConnB }
	return []metric{
		{"S1 RSS per subscribed connection (1k)", field("S1-1k", rssConn), bytesPer, true},
		{"S1 RSS per subscribed connection (10k)", field("S1-10k", rssConn), bytesPer, true},
		{"S1 RSS per subscribed connection (19k)", field("S1-19k", rssConn), bytesPer, true},
		{"S1 connect+subscribe 19k", field("S1-19k", func(r Result) float64 { return r.ConnectS }), secF, true},
		{"S1 19k: 10 events delivered", field("S1-19k", deliveredPct), pctF, false},
		{"S1b RSS per extra subscription", extraSub, bytesPer, true},
		{"S1b 19k×5: 10 events delivered", field("S1b", deliveredPct), pctF, false},
		{"S2 ceiling (p99 < 50 ms)", field("S2", func(r Result) float64 { return r.CeilingDPS }), rate, false},
		{"S3 events absorbed (published ÷ scheduled)", field("S3", absorbedPct), pctF, false},
		{"S3 delivered (of published)", field("S3", deliveredPct), pctF, false},
		{"S3 p99", field("S3", p99), msF, true},
		{"S3 p99.9", field("S3", p999), msF, true},
		{"S3 server CPU per delivery", field("S3", cpu), usF, true},
		{"S4 events absorbed (published ÷ scheduled)", field("S4", absorbedPct), pctF, false},
		{"S4 delivered (of published)", field("S4", deliveredPct), pctF, false},
		{"S4 p99", field("S4", p99), msF, true},
		{"S4 p99.9", field("S4", p999), msF, true},
		{"S4 server CPU per delivery", field("S4", cpu), usF, true},
		{"S5 delivered (of published)", field("S5", deliveredPct), pctF, false},
		{"S5 p99", field("S5", p99), msF, true},
		{"S5 p99.9", field("S5", p999), msF, true},
		{"S6 events absorbed (published ÷ scheduled)", field("S6", absorbedPct), pctF, false},
		{"S6 others' p99", field("S6", p99), msF, true},
		{"S6 slow consumers cut off (of 10)", field("S6", func(r Result) float64 { return float64(r.SlowCut) }), func(v float64) string { return fmt.Sprintf("%.0f", v) }, false},
		{"S6 server RSS max", field("S6", func(r Result) float64 { return float64(r.RSSMaxKB) * 1024 }), bytesPer, true},
	}
}

// WriteSummary writes the side-by-side Markdown table: a column per target
// and the ratios fraised ÷ gnet-floor and gqlgen ÷ fraised where both ran.
func WriteSummary(w io.Writer, rs []Result) {
	ix, targets := newIndex(rs)
	fmt.Fprint(w, "| scenario |")
	for _, t := range targets {
		fmt.Fprintf(w, " %s |", t)
	}
	fmt.Fprintln(w, " fraised ÷ gnet-floor | gqlgen ÷ fraised |")
	fmt.Fprint(w, "|---|")
	for range targets {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w, "---|---|")
	for _, m := range metrics() {
		row, any := fmt.Sprintf("| %s |", m.name), false
		for _, t := range targets {
			if v, ok := m.value(ix, t); ok {
				row += " " + m.format(v) + " |"
				any = true
			} else {
				row += " - |"
			}
		}
		if !any {
			continue
		}
		row += " " + ratio(m, ix, "fraised", "gnet-floor") + " | " + ratio(m, ix, "gqlgen", "fraised") + " |"
		fmt.Fprintln(w, row)
	}
}

func ratio(m metric, ix index, a, b string) string {
	va, ok1 := m.value(ix, a)
	vb, ok2 := m.value(ix, b)
	if !ok1 || !ok2 || vb == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", va/vb)
}
