package resp

import (
	"slices"
	"testing"
)

// FuzzParser feeds each input all at once, in two parts cut at cut, (if
// short) one byte at a time, and with a caller that refuses to consume some
// results (the bits of refuse say which) and retries them after more bytes
// arrived: the commands, errors and bytes left over must be the same, and
// Next must keep its contract (checked by feed).
func FuzzParser(f *testing.F) {
	for _, tt := range allTests() {
		f.Add([]byte(tt.in), uint16(len(tt.in)/2), uint64(0x5555))
	}
	f.Add(pipeline(3), uint16(100), uint64(0xffff))
	f.Add([]byte("*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$40\r\n*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$7\r\n{\"a\":1}\r\n\r\n"), uint16(30), uint64(1))
	f.Fuzz(func(t *testing.T, in []byte, cut uint16, refuse uint64) {
		newParser := func() *Parser { return &Parser{MaxBulk: 16, MaxArgs: 4} }
		k := int(cut) % (len(in) + 1)
		whole, wholeRest, _ := feed(t, newParser(), in)
		parts, partsRest, _ := feed(t, newParser(), in[:k], in[k:])
		if !slices.Equal(whole, parts) || string(wholeRest) != string(partsRest) {
			t.Fatalf("whole: %q, rest %q\ncut at %d: %q, rest %q", whole, wholeRest, k, parts, partsRest)
		}
		refused, refusedRest := feedRefusing(t, newParser(), refuse, in[:k], in[k:])
		if !slices.Equal(whole, refused) || string(wholeRest) != string(refusedRest) {
			t.Fatalf("whole: %q, rest %q\nwith refusals %b: %q, rest %q", whole, wholeRest, refuse, refused, refusedRest)
		}
		if len(in) > 256 {
			return
		}
		var bytewise [][]byte
		for i := range in {
			bytewise = append(bytewise, in[i:i+1])
		}
		bytes, bytesRest, _ := feed(t, newParser(), bytewise...)
		if !slices.Equal(whole, bytes) || string(wholeRest) != string(bytesRest) {
			t.Fatalf("whole: %q, rest %q\nbyte by byte: %q, rest %q", whole, wholeRest, bytes, bytesRest)
		}
		refused, refusedRest = feedRefusing(t, newParser(), refuse, bytewise...)
		if !slices.Equal(whole, refused) || string(wholeRest) != string(refusedRest) {
			t.Fatalf("whole: %q, rest %q\nbyte by byte with refusals %b: %q, rest %q", whole, wholeRest, refuse, refused, refusedRest)
		}
	})
}

// feedRefusing drives p like feed, except that the caller sometimes cannot
// act on a result (a server whose ring is full): it keeps the bytes, does not
// Commit, waits for the next chunk and retries. The retry must give the same
// result (n may grow with the bytes when skipping). The bits of refuse, used
// in turn, say which results are refused the first time they are seen.
func feedRefusing(t testing.TB, p *Parser, refuse uint64, chunks ...[]byte) (events []string, rest []byte) {
	t.Helper()
	var buf []byte
	held := "" // the refused result, to compare with its retry
	bit := 0
	run := func(mayRefuse bool) {
		for {
			args, n, err := p.Next(buf)
			checkNext(t, buf, args, n, err)
			if n == 0 && err == nil {
				if held != "" {
					t.Fatalf("retry of refused %s on %q needs more bytes", held, buf)
				}
				return
			}
			got := event(args, err)
			switch {
			case held != "":
				if got != held {
					t.Fatalf("refused result %s, retried: %s", held, got)
				}
				held = ""
			case mayRefuse && refuse>>(bit%64)&1 == 1:
				bit++
				held = got
				return // wait for more bytes, then retry without Commit
			default:
				bit++
			}
			if err != nil || args != nil {
				events = append(events, got)
			}
			buf = buf[n:]
			p.Commit()
		}
	}
	for _, c := range chunks {
		buf = append(buf, c...)
		run(true)
	}
	run(false)
	return events, buf
}
