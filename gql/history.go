package gql

import (
	"bytes"
	"errors"
	"math/bits"
	"strconv"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/fraised/fraised/history"
)

// @history(size: Int!, ttl: String!) on a subscription field keeps, per
// topic the field subscribes to, the last size events for at most ttl,
// so a client can resume. History belongs to the topic, not to the
// field: every field whose template can produce a topic of a history
// field delivers that topic's positions too, and two history fields
// whose templates can produce a common topic must keep the same history
// (checked at load, like the topic guards).

// historyField is a subscription field with @history.
type historyField struct {
	key            string
	def            *ast.FieldDefinition
	spec           history.Spec
	parts          []topicPart
	lang           *topicNFA
	prefix, suffix string // the template's literal ends: a quick reject before the automaton
}

// historyOf parses @history of subscription field f; nil without it.
func historyOf(f *ast.FieldDefinition) (*history.Spec, error) {
	d := f.Directives.ForName("history")
	if d == nil {
		return nil, nil
	}
	if len(f.Directives.ForNames("history")) > 1 {
		return nil, gqlerror.ErrorPosf(d.Position, "@history may appear once on %s", f.Name)
	}
	sv := d.Arguments.ForName("size").Value
	size, err := strconv.Atoi(sv.Raw)
	if sv.Kind != ast.IntValue || err != nil {
		return nil, gqlerror.ErrorPosf(sv.Position, "@history(size:) must be an integer number of events, 1 to %d", history.MaxSize)
	}
	tv := d.Arguments.ForName("ttl").Value
	text, ok := stringValue(tv)
	ttl, err := time.ParseDuration(text)
	if !ok || err != nil {
		return nil, gqlerror.ErrorPosf(tv.Position, "@history(ttl:) must be a Go duration string such as \"30s\" or \"5m\", %s to %s", history.MinTTL, history.MaxTTL)
	}
	spec := history.Spec{Size: size, TTL: ttl}
	if err := spec.Check(); err != nil {
		pos := sv.Position
		if size > 0 && size <= history.MaxSize {
			pos = tv.Position
		}
		return nil, gqlerror.ErrorPosf(pos, "@history on %s: %v", f.Name, err)
	}
	return &spec, nil
}

// indexHistory lists the history fields and refuses two of them that
// can share a topic with different histories.
func (s *Schema) indexHistory() error {
	sub := s.ast.Subscription
	if sub == nil {
		return nil
	}
	for _, f := range sub.Fields {
		info := s.roots[sub.Name+"."+f.Name]
		if info == nil || info.history == nil {
			continue
		}
		hf := &historyField{key: info.key, def: f, spec: *info.history, parts: info.topic, lang: s.topicLang(f, info.topic)}
		if p := info.topic[0]; p.arg == "" {
			hf.prefix = p.lit
		}
		if p := info.topic[len(info.topic)-1]; p.arg == "" && len(info.topic) > 1 {
			hf.suffix = p.lit
		}
		s.histFields = append(s.histFields, hf)
	}
	var errs []error
	var sc productScratch
	for i, a := range s.histFields {
		for _, b := range s.histFields[i+1:] {
			if a.spec == b.spec || literalsDisjoint(a.parts, b.parts) {
				continue
			}
			if topic, ok := sc.intersect(a.lang, b.lang); ok {
				errs = append(errs, gqlerror.ErrorPosf(b.def.Position,
					"%s keeps @history(size: %d, ttl: %q) but %s (%s) keeps @history(size: %d, ttl: %q), and both can subscribe to topic %q: give them the same @history (history belongs to the topic) or topics that cannot meet",
					b.key, b.spec.Size, b.spec.TTL.String(), a.key, positionText(a.def.Position), a.spec.Size, a.spec.TTL.String(), topic))
			}
		}
	}
	return errors.Join(errs...)
}

// HasHistory reports whether any subscription field carries @history.
func (s *Schema) HasHistory() bool { return len(s.histFields) > 0 }

// HistoryOf returns the history topic keeps: the @history of a
// subscription field that can subscribe to topic. It does not allocate
// for templates of up to 256 automaton states. Safe for concurrent use.
func (s *Schema) HistoryOf(topic []byte) (history.Spec, bool) {
	for _, hf := range s.histFields {
		if !bytes.HasPrefix(topic, []byte(hf.prefix)) || !bytes.HasSuffix(topic, []byte(hf.suffix)) {
			continue
		}
		if hf.lang.accepts(topic) {
			return hf.spec, true
		}
	}
	return history.Spec{}, false
}

// stateSet is a set of automaton states.
type stateSet []uint64

// accepts reports whether the automaton accepts topic, simulating it
// with state sets (on the stack for up to 256 states).
func (n *topicNFA) accepts(topic []byte) bool {
	words := (len(n.edges) + 63) / 64
	var a, b [4]uint64
	cur, next := stateSet(a[:]), stateSet(b[:])
	if words > len(a) {
		cur, next = make(stateSet, words), make(stateSet, words)
	}
	cur, next = cur[:words], next[:words]
	n.closure(cur, 0)
	for _, c := range topic {
		clear(next)
		moved := false
		for w, word := range cur {
			for word != 0 {
				st := w*64 + bits.TrailingZeros64(word)
				word &= word - 1
				for _, e := range n.edges[st] {
					if e.on.has(c) {
						n.closure(next, e.to)
						moved = true
					}
				}
			}
		}
		if !moved {
			return false
		}
		cur, next = next, cur
	}
	return cur[n.final/64]&(1<<(n.final%64)) != 0
}

// closure adds st and the states its epsilon moves reach to set.
func (n *topicNFA) closure(set stateSet, st int) {
	if set[st/64]&(1<<(st%64)) != 0 {
		return
	}
	set[st/64] |= 1 << (st % 64)
	for _, to := range n.eps[st] {
		n.closure(set, to)
	}
}
