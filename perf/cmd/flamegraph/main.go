// Command flamegraph renders a pprof profile (as fetched from
// net/http/pprof) as an SVG flame graph:
//
//	flamegraph [-sample cpu|alloc_space|...] [-title T] -o out.svg profile.pprof
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/fraised/fraised/perf/internal/flame"
)

func main() {
	out := flag.String("o", "", "output SVG file (default: standard output)")
	sample := flag.String("sample", "", "sample type to weigh frames by (default: the profile's last, e.g. cpu)")
	title := flag.String("title", "", "title (default: the input file name)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: flamegraph [-sample TYPE] [-title T] [-o out.svg] profile.pprof")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *out, *sample, *title); err != nil {
		fmt.Fprintln(os.Stderr, "flamegraph:", err)
		os.Exit(1)
	}
}

func run(in, out, sample, title string) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("cannot open the profile: %w", err)
	}
	defer f.Close()
	p, err := flame.Parse(f)
	if err != nil {
		return fmt.Errorf("cannot parse %s: %w", in, err)
	}
	vi := p.Index(sample)
	if vi < 0 {
		return fmt.Errorf("profile %s has no sample type %q (it has %s)", in, sample, strings.Join(p.SampleTypes, ", "))
	}
	if title == "" {
		title = in
	}
	unit := p.SampleTypes[vi]
	if unit == "cpu" {
		unit = "ns of CPU"
	}
	w := os.Stdout
	if out != "" {
		if w, err = os.Create(out); err != nil {
			return fmt.Errorf("cannot create %s: %w", out, err)
		}
		defer w.Close()
	}
	return p.WriteSVG(w, vi, title, unit)
}
