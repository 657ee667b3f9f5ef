package flame

import (
	"bytes"
	"errors"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
)

var sink [][]byte

//go:noinline
func allocateForTheProfile() {
	for range 2000 {
		sink = append(sink, make([]byte, 4096))
	}
}

func heapProfile(t *testing.T) []byte {
	t.Helper()
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	allocateForTheProfile()
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("allocs").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseRealProfile(t *testing.T) {
	p, err := Parse(bytes.NewReader(heapProfile(t)))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.SampleTypes, ","); got != "alloc_objects,alloc_space,inuse_objects,inuse_space" {
		t.Fatalf("sample types %q", got)
	}
	vi := p.Index("alloc_space")
	found := false
	for _, s := range p.Samples {
		if len(s.Stack) > 0 && strings.HasSuffix(s.Stack[0], "allocateForTheProfile") && s.Values[vi] >= 2000*4096 {
			found = true
		}
	}
	if !found {
		t.Fatal("the test's allocation site is missing from the parsed profile")
	}
	var svg bytes.Buffer
	if err := p.WriteSVG(&svg, vi, "test <alloc>", "bytes"); err != nil {
		t.Fatal(err)
	}
	out := svg.String()
	for _, want := range []string{"<svg", "allocateForTheProfile", "test &lt;alloc&gt;", "</svg>"} {
		if !strings.Contains(out, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestIndex(t *testing.T) {
	p := &Profile{SampleTypes: []string{"samples", "cpu"}}
	tests := []struct {
		name string
		want int
	}{{"", 1}, {"samples", 0}, {"cpu", 1}, {"nope", -1}}
	for _, tt := range tests {
		if got := p.Index(tt.name); got != tt.want {
			t.Errorf("Index(%q) = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, in := range [][]byte{{0x0a, 0x05, 0x01}, {0x0f}, {0x08}} {
		if _, err := Parse(bytes.NewReader(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: err = %v", in, err)
		}
	}
}

func TestTreeSumsStacks(t *testing.T) {
	p := &Profile{SampleTypes: []string{"cpu"}, Samples: []Sample{
		{Stack: []string{"leaf", "mid", "main"}, Values: []int64{3}},
		{Stack: []string{"other", "main"}, Values: []int64{2}},
		{Stack: []string{"main"}, Values: []int64{0}},
	}}
	root := p.tree(0)
	m := root.children["main"]
	if root.value != 5 || m.value != 5 || m.children["mid"].children["leaf"].value != 3 || m.children["other"].value != 2 {
		t.Fatalf("tree sums wrong: root=%d main=%d", root.value, m.value)
	}
}

// FuzzParse feeds arbitrary bytes whole and in two halves: Parse must
// return an error or a profile, never panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte{0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x32, 0x03, 'c', 'p', 'u'})
	f.Add([]byte{0x12, 0x04, 0x0a, 0x01, 0x01, 0x10, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse(bytes.NewReader(b))
		_, _ = Parse(bytes.NewReader(b[:len(b)/2]))
	})
}
