package resp

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// nextTest is a stream of bytes and the commands and errors Next finds in it.
type nextTest struct {
	name             string
	maxBulk, maxArgs int
	in               string
	want             []string // fmt "%q" of each command's args, or "-" + error text
	rest             string   // bytes left buffered: an incomplete command
}

var respTests = []nextTest{
	{name: "ping", in: "*1\r\n$4\r\nPING\r\n", want: []string{`["PING"]`}},
	{name: "publish", in: "*3\r\n$7\r\nPUBLISH\r\n$5\r\ntopic\r\n$7\r\n{\"a\":1}\r\n",
		want: []string{`["PUBLISH" "topic" "{\"a\":1}"]`}},
	{name: "empty bulk", in: "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", want: []string{`["GET" ""]`}},
	{name: "binary bulk", in: "*1\r\n$6\r\na\r\n\x00\"b\r\n", want: []string{`["a\r\n\x00\"b"]`}},
	{name: "pipelined", in: "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nQUIT\r\n",
		want: []string{`["PING"]`, `["ECHO" "hi"]`, `["QUIT"]`}},
	{name: "empty and null arrays skipped", in: "*0\r\n*-1\r\n*1\r\n$1\r\nx\r\n", want: []string{`["x"]`}},
	{name: "incomplete", in: "*1\r\n$4\r\nPING\r\n*2\r\n$1\r\na\r\n$1\r\n",
		want: []string{`["PING"]`}, rest: "*2\r\n$1\r\na\r\n$1\r\n"},
	{name: "incomplete terminator", in: "*1\r\n$1\r\na\r", rest: "*1\r\n$1\r\na\r"},
	{name: "bulk at limit", maxBulk: 4, in: "*1\r\n$4\r\nabcd\r\n", want: []string{`["abcd"]`}},
	{name: "args at limit", maxArgs: 2, in: "*2\r\n$1\r\na\r\n$1\r\nb\r\n", want: []string{`["a" "b"]`}},

	{name: "bad count", in: "*x\r\nPING\r\n",
		want: []string{"-ERR Protocol error: invalid multibulk length", `["PING"]`}},
	{name: "count with leading zero", in: "*01\r\n", want: []string{"-ERR Protocol error: invalid multibulk length"}},
	{name: "count with plus", in: "*+1\r\n", want: []string{"-ERR Protocol error: invalid multibulk length"}},
	{name: "count over array limit", in: "*1048577\r\n", want: []string{"-ERR Protocol error: invalid multibulk length"}},
	{name: "count without CR", in: "*1\n$4\r\nPING\r\n",
		want: []string{"-ERR Protocol error: expected CRLF", `["$4"]`, `["PING"]`}},
	{name: "bad bulk length", in: "*2\r\n$4\r\nECHO\r\n$x\r\nPING\r\n",
		want: []string{"-ERR Protocol error: invalid bulk length", `["PING"]`}},
	{name: "negative bulk length", in: "*1\r\n$-1\r\nPING\r\n",
		want: []string{"-ERR Protocol error: invalid bulk length", `["PING"]`}},
	{name: "bulk length -0", in: "*1\r\n$-0\r\n", want: []string{"-ERR Protocol error: invalid bulk length"}},
	{name: "expected dollar", in: "*1\r\n:1\r\nPING\r\n",
		want: []string{"-ERR Protocol error: expected '$', got ':'", `["PING"]`}},
	{name: "expected dollar, got CR", in: "*1\r\n\r\nPING\r\n",
		want: []string{`-ERR Protocol error: expected '$', got '\r'`, `["PING"]`}},
	{name: "bulk longer than its length", in: "*1\r\n$3\r\nabcd\r\nPING\r\n",
		want: []string{"-ERR Protocol error: expected CRLF", `["PING"]`}},
	{name: "count line at header limit", in: "*" + strings.Repeat("1", maxHeaderLine-2) + "\r\nPING\r\n",
		want: []string{"-ERR Protocol error: invalid multibulk length", `["PING"]`}},
	{name: "count line over header limit", in: "*" + strings.Repeat("1", maxHeaderLine-1) + "\r\nPING\r\n",
		want: []string{"-ERR Protocol error: too big mbulk count string", `["PING"]`}},
	{name: "count line too long", in: "*" + strings.Repeat("1", 40) + "\r\nPING\r\n",
		want: []string{"-ERR Protocol error: too big mbulk count string", `["PING"]`}},
	{name: "bulk line too long", in: "*1\r\n$" + strings.Repeat("1", 40) + "\r\nPING\r\n",
		want: []string{"-ERR Protocol error: too big bulk count string", `["PING"]`}},
	{name: "bulk length digits over limit", in: "*1\r\n$1234567890123456789\r\nPING\r\n",
		want: []string{"-ERR Protocol error: invalid bulk length", `["PING"]`}},

	{name: "too many args skipped", maxArgs: 2, in: "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*1\r\n$4\r\nPING\r\n",
		want: []string{"-ERR too many arguments (limit 2)", `["PING"]`}},
	{name: "too many args, default limit", in: "*17\r\n" + strings.Repeat("$1\r\nx\r\n", 17) + "PING\r\n",
		want: []string{"-ERR too many arguments (limit 16)", `["PING"]`}},
	{name: "too many args, bad header while skipping", maxArgs: 1, in: "*2\r\n$1\r\na\r\n$x\r\nPING\r\n",
		want: []string{"-ERR too many arguments (limit 1)", "-ERR Protocol error: invalid bulk length", `["PING"]`}},
	{name: "too many args, incomplete skip", maxArgs: 1, in: "*3\r\n$1\r\na\r\n$5\r\nab",
		want: []string{"-ERR too many arguments (limit 1)"}},
	{name: "too large skipped with the rest of its array", maxBulk: 4,
		in:   "*3\r\n$3\r\nPUB\r\n$5\r\nhello\r\n$1\r\nx\r\n*1\r\n$4\r\nPING\r\n",
		want: []string{"-ERR payload too large (limit 4 bytes)", `["PING"]`}},
	{name: "too large last arg", maxBulk: 4, in: "*1\r\n$5\r\nhello\r\nPING\r\n",
		want: []string{"-ERR payload too large (limit 4 bytes)", `["PING"]`}},
	{name: "too large skipped without data", maxBulk: 4, in: "*1\r\n$60\r\nhello",
		want: []string{"-ERR payload too large (limit 4 bytes)"}},
	{name: "too large at the skip limit", maxBulk: 4, in: "*1\r\n$64\r\n" + strings.Repeat("x", 64) + "\r\nPING\r\n",
		want: []string{"-ERR payload too large (limit 4 bytes)", `["PING"]`}},
	{name: "too large beyond the skip limit", maxBulk: 4, in: "*1\r\n$65\r\n" + strings.Repeat("x", 65) + "\r\n",
		want: []string{"-ERR Protocol error: invalid bulk length", "-ERR Protocol error: too big inline request"}},
	{name: "huge bulk length", in: "*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$999999999999\r\n",
		want: []string{"-ERR Protocol error: invalid bulk length"}},
	{name: "skipped args add up beyond the skip limit", maxBulk: 4,
		in:   "*3\r\n$40\r\n" + strings.Repeat("x", 40) + "\r\n$30\r\n" + strings.Repeat("y", 30) + "\r\n",
		want: []string{"-ERR payload too large (limit 4 bytes)", "-ERR Protocol error: invalid bulk length", "-ERR Protocol error: too big inline request"}},
}

// event formats one result of Next for comparison.
func event(args [][]byte, err error) string {
	if err != nil {
		return "-" + err.Error()
	}
	return fmt.Sprintf("%q", args)
}

// feed drives p as a connection would: it appends each chunk to a buffer and
// calls Next until Next needs more data. It returns the commands and errors
// found, the bytes left buffered, and the most bytes ever buffered.
func feed(t testing.TB, p *Parser, chunks ...[]byte) (events []string, rest []byte, maxBuf int) {
	t.Helper()
	var buf []byte
	for _, c := range chunks {
		buf = append(buf, c...)
		maxBuf = max(maxBuf, len(buf))
		for {
			args, n, err := p.Next(buf)
			checkNext(t, buf, args, n, err)
			if n == 0 && err == nil {
				break
			}
			if err != nil || args != nil {
				events = append(events, event(args, err))
			}
			buf = buf[n:]
			p.Commit()
		}
	}
	return events, buf, maxBuf
}

// checkNext checks the contract of one Next result.
func checkNext(t testing.TB, b []byte, args [][]byte, n int, err error) {
	t.Helper()
	var e *Error
	switch {
	case n < 0 || n > len(b):
		t.Fatalf("Next(%q) consumed %d bytes", b, n)
	case err != nil && n == 0:
		t.Fatalf("Next(%q) = error %v without consuming", b, err)
	case err != nil && !errors.As(err, &e):
		t.Fatalf("Next(%q) = error %T, want *Error", b, err)
	case err != nil && args != nil:
		t.Fatalf("Next(%q) = args and error %v", b, err)
	case args != nil && (n == 0 || len(args) == 0):
		t.Fatalf("Next(%q) = %d args in %d bytes", b, len(args), n)
	}
}

func (tt nextTest) parser() *Parser {
	return &Parser{MaxBulk: tt.maxBulk, MaxArgs: tt.maxArgs}
}

func allTests() []nextTest {
	return slices.Concat(respTests, inlineTests)
}

func TestNext(t *testing.T) {
	for _, tt := range allTests() {
		t.Run(tt.name, func(t *testing.T) {
			got, rest, _ := feed(t, tt.parser(), []byte(tt.in))
			if !slices.Equal(got, tt.want) || string(rest) != tt.rest {
				t.Errorf("got %q, rest %q\nwant %q, rest %q", got, rest, tt.want, tt.rest)
			}
		})
	}
}

// TestNextSplit feeds every stream in two parts at every split point, and
// one byte at a time: the results must not depend on how bytes arrive.
func TestNextSplit(t *testing.T) {
	for _, tt := range allTests() {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			for k := range len(in) + 1 {
				got, rest, _ := feed(t, tt.parser(), in[:k], in[k:])
				if !slices.Equal(got, tt.want) || string(rest) != tt.rest {
					t.Fatalf("split at %d: got %q, rest %q\nwant %q, rest %q", k, got, rest, tt.want, tt.rest)
				}
			}
			var bytewise [][]byte
			for i := range in {
				bytewise = append(bytewise, in[i:i+1])
			}
			got, rest, _ := feed(t, tt.parser(), bytewise...)
			if !slices.Equal(got, tt.want) || string(rest) != tt.rest {
				t.Fatalf("byte by byte: got %q, rest %q\nwant %q, rest %q", got, rest, tt.want, tt.rest)
			}
		})
	}
}

// TestNextSkipsWithoutBuffering sends commands far over MaxBulk in 64 KiB
// reads: they must be rejected once and skipped as they arrive, and the
// following command parsed.
func TestNextSkipsWithoutBuffering(t *testing.T) {
	const chunk = 64 << 10
	payload := bytes.Repeat([]byte("x"), 3*DefaultMaxBulk)
	tests := []struct {
		name   string
		in     []byte
		maxBuf int // most bytes the caller may have to buffer
	}{
		{"bulk", AppendArray(nil, []byte("PUBLISH"), []byte("t"), payload, []byte("more")), 2 * chunk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Concat(tt.in, AppendArray(nil, []byte("PING")))
			var chunks [][]byte
			for c := range slices.Chunk(in, chunk) {
				chunks = append(chunks, c)
			}
			got, rest, maxBuf := feed(t, &Parser{}, chunks...)
			want := []string{"-ERR payload too large (limit 1048576 bytes)", `["PING"]`}
			if !slices.Equal(got, want) || len(rest) != 0 {
				t.Errorf("got %q, rest %q; want %q", got, rest, want)
			}
			if maxBuf > tt.maxBuf {
				t.Errorf("buffered up to %d bytes, want at most %d", maxBuf, tt.maxBuf)
			}
		})
	}
}

// TestNextLimits checks the default limits at their edges.
func TestNextLimits(t *testing.T) {
	atLimit := bytes.Repeat([]byte("x"), DefaultMaxBulk)
	overLimit := append(atLimit, 'x')
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"bulk at limit", AppendArray(nil, atLimit), fmt.Sprintf("%q", [][]byte{atLimit})},
		{"bulk over limit", AppendArray(nil, overLimit), "-ERR payload too large (limit 1048576 bytes)"},
		{"inline at limit", append(atLimit[:len(atLimit):len(atLimit)], "\r\n"...), fmt.Sprintf("%q", [][]byte{atLimit})},
		{"inline over limit", append(overLimit, "\r\n"...), "-ERR Protocol error: too big inline request"},
		{"inline over limit by CR", append(overLimit[:DefaultMaxBulk], "\r\r\n"...), "-ERR Protocol error: too big inline request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rest, _ := feed(t, &Parser{}, tt.in)
			if len(got) != 1 || got[0] != tt.want || len(rest) != 0 {
				t.Errorf("got %d events %.60q..., rest %d bytes; want %.60q...", len(got), got, len(rest), tt.want)
			}
		})
	}
}

func TestNextErrorKinds(t *testing.T) {
	tests := []struct {
		in   string
		p    Parser
		want error
	}{
		{"*x\r\n", Parser{}, ErrProtocol},
		{"\"a\r\n", Parser{}, ErrProtocol},
		{"*1\r\n$5\r\nhello\r\n", Parser{MaxBulk: 4}, ErrTooLarge},
		{"*2\r\n$1\r\na\r\n$1\r\nb\r\n", Parser{MaxArgs: 1}, ErrTooManyArgs},
		{"a b\r\n", Parser{MaxArgs: 1}, ErrTooManyArgs},
	}
	for _, tt := range tests {
		_, _, err := tt.p.Next([]byte(tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("Next(%q) = %v, want errors.Is %v", tt.in, err, tt.want)
		}
	}
}

// TestNextAliasesInput checks that arguments are capacity-limited
// sub-slices of the input, not copies.
func TestNextAliasesInput(t *testing.T) {
	for _, in := range []string{"*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n", "abc def\r\n", `"abc" 'def'` + "\r\n"} {
		b := []byte(in)
		var p Parser
		args, _, _ := p.Next(b)
		if len(args) != 2 || cap(args[0]) != len(args[0]) {
			t.Fatalf("Next(%q) = %q with cap %d", in, args, cap(args[0]))
		}
		b[bytes.IndexByte(b, 'a')] = 'X'
		if string(args[0]) != "Xbc" {
			t.Errorf("Next(%q): args[0] = %q is not a sub-slice of the input", in, args[0])
		}
	}
}

func TestNextEmpty(t *testing.T) {
	var p Parser
	if args, n, err := p.Next(nil); args != nil || n != 0 || err != nil {
		t.Errorf("Next(nil) = %q, %d, %v", args, n, err)
	}
}

// pipeline returns count PUBLISH commands with a 200-byte JSON event each.
func pipeline(count int) []byte {
	head, tail := `{"id":12345,"topic":"orders","status":"shipped","note":"`, `","ok":true}`
	event := []byte(head + strings.Repeat("x", 200-len(head)-len(tail)) + tail)
	var b []byte
	for range count {
		b = AppendArray(b, []byte("PUBLISH"), []byte("orders.eu"), event)
	}
	return b
}

func TestNextDoesNotAllocate(t *testing.T) {
	inputs := map[string][]byte{
		"resp":   pipeline(100),
		"inline": bytes.Repeat([]byte("PUBLISH t '{\"a\": 1}'\r\nPUBLISH t \"a\\nb\"\r\n"), 50),
	}
	for name, in := range inputs {
		var p Parser
		allocs := testing.AllocsPerRun(10, func() {
			for b := in; len(b) > 0; {
				_, n, _ := p.Next(b)
				b = b[n:]
				p.Commit()
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per pipeline", name, allocs)
		}
	}
}
