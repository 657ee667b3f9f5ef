package audit

import (
	"io"
	"testing"
	"time"
)

var sinkBuf []byte

func benchRecord() Record {
	return Record{Time: time.Now(), Event: EventSubscribeAccepted, Remote: "203.0.113.9:51234", Subject: "user-42",
		Operation: "OrderUpdates", Field: "orderUpdated", DocHash: "9f2c1e7a", Topic: "orders.eu", ConnID: 123456}
}

func BenchmarkAppendJSON(b *testing.B) {
	r := benchRecord()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
	sinkBuf = buf
}

func BenchmarkWrite(b *testing.B) {
	l := New(io.Discard, 1<<16)
	defer l.Close()
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		l.Write(r)
	}
	b.ReportMetric(float64(l.Dropped())/float64(b.N), "dropped/op")
}
