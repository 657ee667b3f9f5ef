package postgres

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestListenModeEndToEnd(t *testing.T) {
	url := newDB(t)
	sink := &fakeSink{}
	src, _ := runSource(t, url+"&mode=listen&channels=orders:orders.all,Audit_Log", sink)
	waitHealthy(t, src)
	app := connect(t, url)
	exec1(t, app, `SELECT pg_notify('orders', '{"id": 1}')`)
	exec1(t, app, `NOTIFY "Audit_Log", '{"who": "ann"}'`)
	exec1(t, app, `SELECT pg_notify('other', '{"ignored": true}')`)
	exec1(t, app, `SELECT pg_notify('orders', 'not json')`) // refused by the sink, skipped
	exec1(t, app, `SELECT pg_notify('orders', '{"id": 2}')`)
	ev := sink.waitN(t, 3, within)
	time.Sleep(200 * time.Millisecond)
	ev = sink.snapshot()
	want := []struct{ topic, payload string }{
		{"orders.all", `{"id": 1}`}, {"Audit_Log", `{"who": "ann"}`}, {"orders.all", `{"id": 2}`},
	}
	if len(ev) != len(want) {
		t.Fatalf("%d events, want %d: %v", len(ev), len(want), ev)
	}
	for i, w := range want {
		if ev[i].topic != w.topic || string(ev[i].payload) != w.payload {
			t.Errorf("event %d: %s %s, want %s %s", i, ev[i].topic, ev[i].payload, w.topic, w.payload)
		}
	}
	if n := sink.refusedCount(); n != 1 {
		t.Errorf("sink refused %d, want 1 (the non-JSON notification)", n)
	}
}

// TestListenModeLimits shows what the README says about listen mode: a
// payload of 8000 bytes or more fails the sender's statement (and so its
// transaction), and a notification sent while fraised is disconnected is
// never delivered.
func TestListenModeLimits(t *testing.T) {
	url := newDB(t)
	app := connect(t, url)
	_, err := app.Exec(context.Background(), "SELECT pg_notify('orders', $1)", `{"b": "`+strings.Repeat("x", 8000)+`"}`)
	if err == nil || !strings.Contains(err.Error(), "payload string too long") {
		t.Fatalf("NOTIFY with 8 KB: err %v, want 'payload string too long'", err)
	}
	exec1(t, app, `SELECT pg_notify('orders', '{"sent": "before"}')`) // nobody listening
	sink := &fakeSink{}
	src, _ := runSource(t, url+"&mode=listen&channels=orders", sink)
	waitHealthy(t, src)
	exec1(t, app, `SELECT pg_notify('orders', '{"sent": "after"}')`)
	ev := sink.waitN(t, 1, within)
	time.Sleep(200 * time.Millisecond)
	if ev = sink.snapshot(); len(ev) != 1 || !strings.Contains(string(ev[0].payload), "after") {
		t.Fatalf("events %v, want only the one sent while listening", ev)
	}
}

func TestListenModeReconnects(t *testing.T) {
	url := newDB(t)
	sink := &fakeSink{}
	src, _ := runSource(t, url+"&mode=listen&channels=orders&application_name=fraised_listen", sink)
	waitHealthy(t, src)
	app := connect(t, url)
	exec1(t, app, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fraised_listen'`)
	deadline := time.Now().Add(within)
	for len(sink.snapshot()) == 0 { // notify until the new session hears one
		if time.Now().After(deadline) {
			t.Fatal("no notification delivered after the backend was terminated")
		}
		exec1(t, app, `SELECT pg_notify('orders', '{"after": "reconnect"}')`)
		time.Sleep(50 * time.Millisecond)
	}
	waitHealthy(t, src)
}
