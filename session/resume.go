package session

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/internal/jsonx"
	"github.com/fraised/fraised/proto"
)

// Resume inputs (see the README's "History and resume"): a subscribe's
// payload.extensions.fraised.resume = {"epoch":"E","offset":N}, or the
// connection_init payload's {"fraised":{"resume":{"<operation id>":
// {"epoch":"E","offset":N}}}}, applied when a subscribe with that id
// arrives on the connection (graphql-ws re-sends each active
// subscription with its id after a reconnect, and asks connectionParams
// for the init payload each time). The subscribe's own position wins.
// The dispatcher checks the position, replays and goes live
// (dispatch/history.go).

// ResumeInvalidCode is the extensions.code of a subscribe whose resume
// input is malformed.
const ResumeInvalidCode = "FRAISED_RESUME_INVALID"

// errResume is wrapped by every malformed resume input.
var errResume = errors.New("invalid resume position")

// initResume reads fraised.resume of the connection_init payload; on a
// malformed one it closes the session with 4400 and reports false.
func (s *Session) initResume(payload []byte) bool {
	m, err := parseInitResume(payload, s.h.Limits.MaxOperations)
	if err != nil {
		s.conn.Close(proto.CloseBadRequest, cutReason("Invalid connection_init: "+err.Error()))
		return false
	}
	s.resumes = m
	return true
}

// setResume gives sub the resume position of its subscribe, if any (its
// own, or its id's connection_init entry, which spendResume uses up once
// the subscription is queued), and the callback that ends it with the resume
// error. On a malformed position it refuses the subscribe with an error
// message and reports false.
func (s *Session) setResume(sub *subscription, m proto.Message) bool {
	pos, err := parseSubscribeResume(m.Extensions)
	if err != nil {
		errs := jsonx.AppendString([]byte(`[{"message":`), err.Error())
		errs = append(errs, `,"extensions":{"code":"`+ResumeInvalidCode+`"}}]`...)
		s.refuse(m, audit.EventSubscribeRefused, err.Error(), errs)
		return false
	}
	if p, ok := s.resumes[m.IDString]; ok && pos == nil {
		pos = &p
	}
	sub.Resume = pos
	// Every subscription can be ended by the dispatcher: a resume
	// position it cannot serve, or (in a cluster) events of its history
	// topic lost on their way to this node.
	sub.Fail = func(errs []byte) {
		// On the dispatcher goroutine: mark it failed before the client
		// can read the error, so the id is free when it comes back.
		sub.failed.Store(true)
		s.conn.Send(proto.AppendError(nil, sub.ID, errs))
	}
	return true
}

// spendResume uses up the connection_init position of id, once a
// subscribe with that id is queued: a later subscribe with the id starts
// afresh. (A subscribe refused before, busy or over a cap, keeps it for
// its retry: spending it there would turn the retry into a silent gap.)
func (s *Session) spendResume(id string) {
	delete(s.resumes, id)
}

// pruneFailed forgets the subscriptions the dispatcher ended with an
// error: their ids are free again and their slots released. Called on
// the input goroutine.
func (s *Session) pruneFailed() {
	for i := 0; i < len(s.subs); {
		if sub := s.subs[i]; sub.failed.Load() {
			s.subs = drop(s.subs, sub)
			s.unsubscribe(sub)
			continue
		}
		i++
	}
}

// parseInitResume returns the positions of a connection_init payload's
// fraised.resume (nil when there is none); at most maxEntries (zero:
// unlimited, as --max-subscriptions 0).
func parseInitResume(payload []byte, maxEntries int) (map[string]history.Position, error) {
	if len(payload) == 0 {
		return nil, nil
	}
	r := gjson.GetBytes(payload, "fraised.resume")
	if !r.Exists() || r.Type == gjson.Null {
		return nil, nil
	}
	if !r.IsObject() {
		return nil, fmt.Errorf("%w: fraised.resume must be an object of operation ids", errResume)
	}
	var out map[string]history.Position
	var err error
	r.ForEach(func(k, v gjson.Result) bool {
		if maxEntries > 0 && len(out) == maxEntries {
			err = fmt.Errorf("%w: fraised.resume has more than %d operations (--max-subscriptions)", errResume, maxEntries)
			return false
		}
		var p history.Position
		if p, err = parsePosition(v); err != nil {
			return false
		}
		if out == nil {
			out = map[string]history.Position{}
		}
		out[k.String()] = p
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// parseSubscribeResume returns the position of a subscribe's
// extensions.fraised.resume, or nil when there is none.
func parseSubscribeResume(ext []byte) (*history.Position, error) {
	if len(ext) == 0 {
		return nil, nil
	}
	r := gjson.GetBytes(ext, "fraised.resume")
	if !r.Exists() || r.Type == gjson.Null {
		return nil, nil
	}
	p, err := parsePosition(r)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// parsePosition reads {"epoch":"E","offset":N}: E as the server sent it
// (history.ValidEpoch), N a non-negative integer.
func parsePosition(v gjson.Result) (history.Position, error) {
	if !v.IsObject() {
		return history.Position{}, fmt.Errorf(`%w: want {"epoch":"E","offset":N}`, errResume)
	}
	e, o := v.Get("epoch"), v.Get("offset")
	if e.Type != gjson.String || !history.ValidEpoch(e.Str) {
		return history.Position{}, fmt.Errorf("%w: epoch must be the string a next message's extensions.fraised.epoch carried", errResume)
	}
	n, err := strconv.ParseUint(o.Raw, 10, 64)
	if o.Type != gjson.Number || err != nil {
		return history.Position{}, fmt.Errorf("%w: offset must be a non-negative integer (the last offset received, 0 for the oldest retained)", errResume)
	}
	return history.Position{Offset: n, Epoch: e.Str}, nil
}

// cutReason cuts a close reason to codec.MaxCloseReason bytes on a rune
// boundary.
func cutReason(r string) string {
	n := codec.MaxCloseReason
	if len(r) <= n {
		return r
	}
	for n > 0 && !utf8.RuneStart(r[n]) {
		n--
	}
	return r[:n]
}
