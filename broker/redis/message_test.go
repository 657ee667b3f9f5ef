package redis

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseMessage(t *testing.T) {
	ok := func(msg string, off uint64, epoch, payload string) {
		t.Helper()
		o, e, p, good := parseMessage(msg)
		if !good || o != off || e != epoch || p != payload {
			t.Errorf("parseMessage(%q) = %d %q %q %v; want %d %q %q", msg, o, e, p, good, off, epoch, payload)
		}
	}
	bad := func(msg string) {
		t.Helper()
		if o, e, p, good := parseMessage(msg); good {
			t.Errorf("parseMessage(%q) = %d %q %q, want refused", msg, o, e, p)
		}
	}
	ok("F1 1 abc\n{}", 1, "abc", "{}")
	ok("F1 42 1xYX3k2Xb2\n{\"a\":\n1}", 42, "1xYX3k2Xb2", "{\"a\":\n1}")
	ok("F1 9007199254740992 E\n", 9007199254740992, "E", "")
	ok("F1 7 "+strings.Repeat("z", maxEpochLen)+"\nx", 7, strings.Repeat("z", maxEpochLen), "x")
	bad("")
	bad("F1")
	bad("F1 ")
	bad("F2 1 e\n{}")
	bad("F1 0 e\n{}")
	bad("F1 01 e\n{}")
	bad("F1 1e\n{}")
	bad("F1 1 \n{}")
	bad("F1 1 e")
	bad("F1 1 e-x\n{}")
	bad("F1 -1 e\n{}")
	bad("F1 12345678901234567 e\n{}")
	bad("F1 1 " + strings.Repeat("z", maxEpochLen+1) + "\n{}")
	bad("{\"a\":1}")
}

func TestAppendMessageRoundTrips(t *testing.T) {
	msg := string(appendMessage(nil, 123, "Ep0ch", []byte(`{"x":"y"}`)))
	if o, e, p, ok := parseMessage(msg); !ok || o != 123 || e != "Ep0ch" || p != `{"x":"y"}` {
		t.Fatalf("round trip of %q = %d %q %q %v", msg, o, e, p, ok)
	}
}

// FuzzParseMessage: any input is refused or split into a position whose
// header re-encodes to the input's prefix, never a panic.
func FuzzParseMessage(f *testing.F) {
	f.Add("F1 1 abc\n{}")
	f.Add("F1 9007199254740992 1xYX3k2Xb2\n{\"a\":1}\n")
	f.Add("F1 01 e\n")
	f.Add("F1 1 e")
	f.Fuzz(func(t *testing.T, msg string) {
		off, epoch, payload, ok := parseMessage(msg)
		if !ok {
			return
		}
		if off == 0 || epoch == "" || len(epoch) > maxEpochLen {
			t.Fatalf("accepted %q with offset %d epoch %q", msg, off, epoch)
		}
		if again := string(appendMessage(nil, off, epoch, []byte(payload))); again != msg {
			t.Fatalf("%q re-encodes as %q", msg, again)
		}
	})
}

// appendMessage appends a message as fraised.lua builds it.
func appendMessage(dst []byte, offset uint64, epoch string, payload []byte) []byte {
	dst = append(dst, "F1 "...)
	dst = strconv.AppendUint(dst, offset, 10)
	dst = append(dst, ' ')
	dst = append(dst, epoch...)
	dst = append(dst, '\n')
	return append(dst, payload...)
}
