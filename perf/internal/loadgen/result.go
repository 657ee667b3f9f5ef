package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// Step is one rate of the S2 fan-out ceiling search.
type Step struct {
	Rate        float64 `json:"rate"`
	Expected    int64   `json:"expected"`
	Delivered   int64   `json:"delivered"`
	DeliveriesS float64 `json:"deliveries_per_s"`
	P99Us       float64 `json:"p99_us"`
	LagMaxMs    float64 `json:"publish_lag_max_ms"`
	HarnessSat  bool    `json:"harness_saturated"`
	Pass        bool    `json:"pass"`
}

// Result is one scenario against one target: a JSON line in the results
// file. Latencies are event-to-socket (publish write → frame read), µs.
type Result struct {
	Time      string  `json:"time"`
	Target    string  `json:"target"`
	Scenario  string  `json:"scenario"`
	Machine   string  `json:"machine"`
	Conns     int     `json:"conns"`
	Subs      int     `json:"subs"`
	Topics    int     `json:"topics"`
	Rate      float64 `json:"rate"`
	DurationS float64 `json:"duration_s"`

	ConnectS   float64 `json:"connect_subscribe_s"`
	ConnFailed int64   `json:"conn_failed"`
	ConnCut    int64   `json:"conns_closed_by_server"`

	Scheduled     int64   `json:"scheduled"` // events the rate called for
	Published     int64   `json:"published"` // events handed to the server
	PublishAcked  int64   `json:"publish_acked"`
	Expected      int64   `json:"expected"`
	Delivered     int64   `json:"delivered"`
	LossPct       float64 `json:"loss_pct"`
	SubsShort     int64   `json:"subs_missing_events"`
	PublishErrors int64   `json:"publish_errors"`
	Unknown       int64   `json:"unknown_frames"`
	ServerErrors  int64   `json:"server_error_messages"`

	P50Us  float64 `json:"p50_us"`
	P90Us  float64 `json:"p90_us"`
	P99Us  float64 `json:"p99_us"`
	P999Us float64 `json:"p999_us"`
	MaxUs  float64 `json:"max_us"`
	MeanUs float64 `json:"mean_us"`
	// The same latencies to the kernel's receive timestamp of the read
	// that carried each frame (SO_TIMESTAMPNS): when the frame reached
	// the subscriber's socket, without the harness's own wait to run.
	KernelP50Us  float64 `json:"kernel_rx_p50_us"`
	KernelP99Us  float64 `json:"kernel_rx_p99_us"`
	KernelP999Us float64 `json:"kernel_rx_p999_us"`

	RSSBeforeKB int64   `json:"server_rss_before_kb"`
	RSSAfterKB  int64   `json:"server_rss_after_kb"`
	RSSMaxKB    int64   `json:"server_rss_max_kb"`
	RSSPerConnB float64 `json:"server_rss_per_conn_b,omitempty"`

	ServerCPUUs  float64 `json:"server_cpu_us_per_delivery"`
	ServerCPUPct float64 `json:"server_cpu_pct"`
	HarnessCPUUs float64 `json:"harness_cpu_us_per_delivery"`
	HarnessPct   float64 `json:"harness_cpu_pct"`
	HarnessSat   bool    `json:"harness_saturated"`
	LagMaxMs     float64 `json:"publish_lag_max_ms"`
	OtherCPUPct  float64 `json:"other_cpu_pct"`

	CeilingDPS float64 `json:"ceiling_deliveries_per_s,omitempty"`
	CeilingBy  string  `json:"ceiling_limited_by,omitempty"`
	Steps      []Step  `json:"steps,omitempty"`

	SlowConns     int   `json:"slow_conns,omitempty"`
	SlowCut       int   `json:"slow_cut_off,omitempty"`
	SlowOpen      int   `json:"slow_still_open,omitempty"`
	SlowDelivered int64 `json:"slow_delivered,omitempty"`

	Notes []string `json:"notes,omitempty"`
}

// machine describes where the numbers come from.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	cpus := runtime.NumCPU()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = strings.Count(string(b), "\nprocessor") + 1
	}
	return fmt.Sprintf("%s, %d CPUs, %s", model, cpus, runtime.Version())
}

// AppendJSONL appends r as one line to path.
func AppendJSONL(path string, r Result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open results file: %w", err)
	}
	defer f.Close()
	b, _ := json.Marshal(r)
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("cannot append to %s: %w", path, err)
	}
	return nil
}

// ReadJSONL reads every result in path.
func ReadJSONL(path string) ([]Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open results: %w", err)
	}
	defer f.Close()
	var out []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("cannot parse %s: %w", path, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// WriteDetail writes one Markdown row per result with every measured value.
func WriteDetail(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| target | scenario | conns×subs | rate/s | delivered/expected | p50 ms | p99 ms | p99.9 ms | max ms | server µs/delivery | server CPU % | harness µs/delivery | RSS per conn | RSS max MB | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		notes := strings.Join(r.Notes, "; ")
		if r.CeilingDPS > 0 || r.CeilingBy != "" {
			notes = fmt.Sprintf("ceiling %s deliveries/s (%s); %s", human(r.CeilingDPS), r.CeilingBy, notes)
		}
		if r.SlowConns > 0 {
			notes = fmt.Sprintf("slow: %d cut off, %d open, RSS max %.1f MB; %s", r.SlowCut, r.SlowOpen, float64(r.RSSMaxKB)/1024, notes)
		}
		if r.KernelP99Us > 0 {
			notes = fmt.Sprintf("to the socket (kernel rx time): p50 %s, p99 %s, p99.9 %s ms; %s", ms(r.KernelP50Us), ms(r.KernelP99Us), ms(r.KernelP999Us), notes)
		}
		fmt.Fprintf(w, "| %s | %s | %d×%d | %s | %d/%d (%.2f%% lost) | %s | %s | %s | %s | %.2f | %.0f | %.2f | %s | %.1f | %s |\n",
			r.Target, r.Scenario, r.Conns, r.Subs, human(r.Rate), r.Delivered, r.Expected, r.LossPct,
			ms(r.P50Us), ms(r.P99Us), ms(r.P999Us), ms(r.MaxUs), r.ServerCPUUs, r.ServerCPUPct, r.HarnessCPUUs,
			bytesPer(r.RSSPerConnB), float64(r.RSSMaxKB)/1024, strings.TrimSuffix(notes, "; "))
	}
}

func ms(us float64) string { return fmt.Sprintf("%.2f", us/1000) }

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func bytesPer(b float64) string {
	if b == 0 {
		return "-"
	}
	if b >= 1024 {
		return fmt.Sprintf("%.1f KiB", b/1024)
	}
	return fmt.Sprintf("%.0f B", b)
}
