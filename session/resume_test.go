package session

import (
	"testing"
)

// TestRefusedSubscribeKeepsItsInitResume: a subscribe refused for a
// reason the client may retry (server busy, an identity's cap) does not
// use up its connection_init resume position: the retry resumes from
// it. (It used to be spent on the refusal, and the retry went live
// without a replay: a silent gap.)
func TestRefusedSubscribeKeepsItsInitResume(t *testing.T) {
	e := newTestEnv(t)
	s, c := e.start(e.shared(Config{}))
	msg(s, `{"type":"connection_init","payload":{"fraised":{"resume":{"1":{"epoch":"AbC123xyz789","offset":7}}}}}`)
	c.waitSent(t, 1)
	const sub = `{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"t\") { seq } }"}}`
	e.d.SetMaxQueuedAdds(0) // the dispatcher is busy
	msg(s, sub)
	if sent := c.waitSent(t, 2); len(s.subs) != 0 {
		t.Fatalf("the busy subscribe was kept: %q", sent)
	}
	e.d.SetMaxQueuedAdds(1 << 16)
	msg(s, sub)
	if len(s.subs) != 1 || s.subs[0].Resume == nil || s.subs[0].Resume.Offset != 7 || s.subs[0].Resume.Epoch != "AbC123xyz789" {
		t.Fatalf("the retry's resume position: %+v", s.subs)
	}
	e.d.DiscardQueued()
	msg(s, `{"id":"1","type":"complete"}`)
	msg(s, sub) // used once: a later subscribe with the id starts afresh
	if len(s.subs) != 1 || s.subs[0].Resume != nil {
		t.Fatalf("the init position was used twice: %+v", s.subs[0].Resume)
	}
	e.d.DiscardQueued()
}
