package resolve

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

func TestCallFrameRoundTrip(t *testing.T) {
	op := testOp(t, nil)
	var dst []byte
	dst = beginFrame(dst)
	for i, ev := range []string{`{"id":"a"}`, `{"id":"b","n":2}`} {
		c := NewCall(op, []byte(ev), time.Now(), nil)
		c.id = uint64(i + 1)
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendCall(dst, c); err != nil {
			t.Fatal(err)
		}
	}
	dst = endFrame(dst, 0)
	body, err := readFrame(bytes.NewReader(dst), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"calls":[{"id":1,"field":"Subscription.item","event":{"id":"a"},"args":{"id":"1"},"identity":null},` +
		`{"id":2,"field":"Subscription.item","event":{"id":"b","n":2},"args":{"id":"1"},"identity":null}]}`
	if string(body) != want {
		t.Fatalf("got  %s\nwant %s", body, want)
	}
	if !json.Valid(body) {
		t.Fatal("invalid JSON")
	}
}

func TestIdentityIsSentOnlyWhenDeclared(t *testing.T) {
	c := NewRawCall("Query.me", gqlParams(`{"tok":1}`, map[string]any{"sub": "u"}), true, time.Now(), nil)
	b, err := appendCall(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":0,"field":"Query.me","event":null,"args":null,"identity":{"init_payload":{"tok":1},"claims":{"sub":"u"}}}`; string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestReadFrameLimits(t *testing.T) {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], MaxFrame+1)
	if _, err := readFrame(bytes.NewReader(h[:]), nil); !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	binary.BigEndian.PutUint32(h[:], 10)
	if _, err := readFrame(bytes.NewReader(append(h[:], "short"...)), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
	if _, err := readFrame(bytes.NewReader(nil), nil); !errors.Is(err, io.EOF) {
		t.Fatalf("clean end: %v", err)
	}
}

func TestParseResults(t *testing.T) {
	rs, err := parseResults([]byte(`{"results":[{"id":2,"data":{"id":"x"}},{"id":1,"error":{"message":"no","extensions":{"code":"E"}}},{"id":3}]}`))
	if err != nil || len(rs) != 3 {
		t.Fatalf("%v %v", rs, err)
	}
	if rs[0].ID != 2 || string(rs[0].Data) != `{"id":"x"}` || rs[1].Error.Message != "no" || rs[1].Error.Extensions["code"] != "E" || rs[2].Data != nil {
		t.Fatalf("parsed %+v", rs)
	}
	for _, bad := range []string{``, `[]`, `{"results":{}}`, `{"results":[{"id":-1}]}`, `{"results":[{"id":"1"}]}`} {
		if _, err := parseResults([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzReadResults: any byte stream from a resolver process, read in
// pieces of any size, gives frames or an error, never a panic or an
// allocation past MaxFrame.
func FuzzReadResults(f *testing.F) {
	frame := func(s string) []byte {
		var h [4]byte
		binary.BigEndian.PutUint32(h[:], uint32(len(s)))
		return append(h[:], s...)
	}
	f.Add(frame(`{"results":[{"id":1,"data":{"a":1}}]}`))
	f.Add(append(frame(`{"results":[]}`), frame(`{"results":[{"id":2,"error":{"message":"x"}}]}`)...))
	f.Add(frame(`{"results":[{"id":1,"data":`))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, r := range []io.Reader{bytes.NewReader(data), iotest.HalfReader(bytes.NewReader(data)), iotest.OneByteReader(bytes.NewReader(data))} {
			var buf []byte
			for {
				body, err := readFrame(r, buf)
				if err != nil {
					break
				}
				if len(body) > MaxFrame {
					t.Fatalf("frame of %d bytes", len(body))
				}
				buf = body[:0]
				rs, err := parseResults(body)
				for i := range rs {
					if rs[i].Error == nil {
						continue
					}
					if ge, ok := rs[i].Error.err().(*gqlerror.Error); !ok || len(ge.Message) > maxErrorMessage {
						t.Fatal("error message not capped")
					}
				}
				_ = err
			}
		}
	})
}
