package resp

import (
	"bytes"
	"testing"
)

var sink int

// BenchmarkNext parses a pipelined buffer of 100 PUBLISH commands, each with
// a 200-byte JSON event.
func BenchmarkNext(b *testing.B) {
	benchmarkNext(b, pipeline(100))
}

// BenchmarkNextInline parses 100 inline PUBLISH commands, with the event
// single-quoted.
func BenchmarkNextInline(b *testing.B) {
	var in []byte
	for range 100 {
		in = append(in, "PUBLISH orders.eu '"...)
		in = append(in, bytes.Repeat([]byte("x"), 200)...)
		in = append(in, "'\r\n"...)
	}
	benchmarkNext(b, in)
}

func benchmarkNext(b *testing.B, in []byte) {
	var p Parser
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		for buf := in; len(buf) > 0; {
			args, n, err := p.Next(buf)
			if err != nil || len(args) != 3 {
				b.Fatalf("Next = %d args, %v", len(args), err)
			}
			sink += len(args[2])
			buf = buf[n:]
			p.Commit()
		}
	}
}

// BenchmarkAppendArray encodes one PUBLISH command with a 200-byte event.
func BenchmarkAppendArray(b *testing.B) {
	cmd, topic, event := []byte("PUBLISH"), []byte("orders.eu"), bytes.Repeat([]byte("x"), 200)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendArray(buf[:0], cmd, topic, event)
	}
	sink += len(buf)
}
