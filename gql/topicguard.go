package gql

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// One topic, one set of guards. @auth and claim @filters guard a
// subscription field, but events belong to topics: a field whose topic the
// client chooses ("{topic}") reaches every topic, guarded or not. So when
// the schema loads, every two subscription fields whose topic templates
// can produce a common topic must have the same guards (guardsOf), and
// must read each event property under the same nested @auth
// (topicnested.go); otherwise the weaker field is refused, with both
// fields named. Templates are compared as languages over bytes: a topic
// automaton per field (topiclang.go, exact except for Float holes, which
// it over-approximates) and a product search for a common non-empty topic.

// topicField is a subscription field as the topic check sees it.
type topicField struct {
	key      string // "Subscription.events"
	def      *ast.FieldDefinition
	parts    []topicPart
	tmpl     string // the @topic template as written, or the field name
	hasTopic bool   // whether tmpl comes from @topic
	lang     *topicNFA
	guards   []guard // sorted by key, without duplicates
}

// guard is one condition a subscriber must meet before a field delivers
// an event to it.
type guard struct {
	key  string // identity: requirements and claim filters compare by it
	text string // as an error shows it
}

// checkTopicGuards refuses a schema in which a guarded subscription field's
// topics can be reached from a field without all of its guards, at the
// top (guardsOf) or below it (nestedBypass). The errors, one per ordered
// pair, are in the order of the weaker field's position, then the other's.
func (s *Schema) checkTopicGuards() error {
	fields := s.topicFields()
	byPair := map[[2]int]error{}
	var sc productScratch
	for i, a := range fields {
		for j := i + 1; j < len(fields); j++ {
			b := fields[j]
			if a.def.Type.Name() == b.def.Type.Name() && guardKeys(a.guards) == guardKeys(b.guards) {
				continue // alike: neither can be weaker than the other
			}
			if literalsDisjoint(a.parts, b.parts) {
				continue
			}
			topic, ok := sc.intersect(a.lang, b.lang)
			if !ok {
				continue
			}
			for _, p := range [][2]int{{i, j}, {j, i}} {
				if err := s.pairError(fields[p[0]], fields[p[1]], topic); err != nil {
					byPair[p] = err
				}
			}
		}
	}
	pairs := make([][2]int, 0, len(byPair))
	for p := range byPair {
		pairs = append(pairs, p)
	}
	sort.Slice(pairs, func(a, b int) bool {
		return pairs[a][0] < pairs[b][0] || (pairs[a][0] == pairs[b][0] && pairs[a][1] < pairs[b][1])
	})
	errs := make([]error, len(pairs))
	for k, p := range pairs {
		errs[k] = byPair[p]
	}
	return errors.Join(errs...) // one line per pair
}

// pairError says how weak, which can subscribe to topic as strong can,
// reads strong's events without its guards, or returns nil.
func (s *Schema) pairError(weak, strong *topicField, topic string) error {
	if missing := missingGuards(strong.guards, weak.guards); len(missing) > 0 {
		return s.bypassError(weak, strong, missing, topic)
	}
	if e, ok := s.nestedBypass(strong, weak); ok {
		return nestedError(weak, strong, e, topic)
	}
	return nil
}

// topicFields lists the subscription fields in source order.
func (s *Schema) topicFields() []*topicField {
	sub := s.ast.Subscription
	if sub == nil {
		return nil
	}
	var out []*topicField
	for _, f := range sub.Fields {
		info := s.roots[sub.Name+"."+f.Name]
		if info == nil {
			continue // introspection fields
		}
		tf := &topicField{key: info.key, def: f, parts: info.topic, tmpl: f.Name,
			lang: s.topicLang(f, info.topic), guards: s.guardsOf(sub, f, info)}
		if d := f.Directives.ForName("topic"); d != nil {
			tf.tmpl, _ = stringValue(d.Arguments.ForName("name").Value)
			tf.hasTopic = true
		}
		out = append(out, tf)
	}
	sort.SliceStable(out, func(i, j int) bool { return before(out[i].def.Position, out[j].def.Position) })
	return out
}

// before orders positions by source, line and column.
func before(a, b *ast.Position) bool {
	if a == nil || b == nil {
		return a != nil
	}
	if a.Src != b.Src && a.Src != nil && b.Src != nil {
		return a.Src.Name < b.Src.Name
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Column < b.Column
}

// guardsOf collects what a subscriber of root field f of sub needs: the
// requirements of the root type, of f, and of f's return type (every
// possible object type of an abstract one, as the compiler checks them
// all), and f's claim filters.
func (s *Schema) guardsOf(sub *ast.Definition, f *ast.FieldDefinition, info *rootInfo) []guard {
	out := unionGuards(s.typeGuards(sub.Name), guardsFrom(s.fieldAuth[f], ""))
	for _, name := range s.objectTypes(f.Type.Name()) {
		out = unionGuards(out, s.typeGuards(name))
	}
	for _, spec := range info.filters {
		if spec.claim == "" {
			continue // argument filters are chosen by the client
		}
		path := strings.Join(spec.path, ".")
		out = unionGuards(out, []guard{{key: "claim\x00" + path + "\x00" + spec.claim,
			text: fmt.Sprintf("@filter(field: %q, claim: %q)", path, spec.claim)}})
	}
	return out
}

// objectTypes returns the object types a value of the named type may have:
// itself for an object, its possible types for an interface or union, in
// name order.
func (s *Schema) objectTypes(named string) []string {
	def := s.ast.Types[named]
	if def == nil {
		return nil
	}
	if def.Kind == ast.Object {
		return []string{def.Name}
	}
	var out []string
	for _, pt := range s.ast.PossibleTypes[named] {
		if pt.Kind == ast.Object {
			out = append(out, pt.Name)
		}
	}
	sort.Strings(out)
	return out
}

// missingGuards returns the guards of strong that weak lacks; both are
// sorted by key.
func missingGuards(strong, weak []guard) []guard {
	var out []guard
	j := 0
	for _, g := range strong {
		for j < len(weak) && weak[j].key < g.key {
			j++
		}
		if j == len(weak) || weak[j].key != g.key {
			out = append(out, g)
		}
	}
	return out
}

// bypassError describes how weak reaches strong's topics without missing.
func (s *Schema) bypassError(weak, strong *topicField, missing []guard, topic string) *gqlerror.Error {
	return gqlerror.ErrorPosf(weak.def.Position,
		"%s (%s) can subscribe to the topics of %s (%s, %s) without its guards (%s), for example to topic %q: %s",
		weak.key, topicDesc(weak), strong.key, positionText(strong.def.Position), topicDesc(strong),
		guardTexts(missing), topic, s.bypassFix(weak, strong))
}

// topicDesc shows where a field's topic comes from.
func topicDesc(f *topicField) string {
	if f.hasTopic {
		return fmt.Sprintf("@topic %q", f.tmpl)
	}
	return fmt.Sprintf("topic %q: no @topic, so its name", f.tmpl)
}

// positionText renders pos as "file:line:col".
func positionText(pos *ast.Position) string {
	if pos == nil {
		return "unknown position"
	}
	name := "input"
	if pos.Src != nil {
		name = pos.Src.Name
	}
	return fmt.Sprintf("%s:%d:%d", name, pos.Line, pos.Column)
}

// Prefixes an error suggests. They differ in their first byte, so two
// templates that start with different ones never meet.
const (
	publicPrefix  = "public."
	guardedPrefix = "guarded."
)

// bypassFix says how to separate weak from strong: a prefix for weak when
// that suffices, else one for strong, else one for each; or the same
// guards.
func (s *Schema) bypassFix(weak, strong *topicField) string {
	topic := func(f *topicField, prefix string) string { return fmt.Sprintf("@topic(name: %q)", prefix+f.tmpl) }
	if _, meet := intersect(s.prefixed(weak, publicPrefix), strong.lang); !meet {
		return fmt.Sprintf("give %s a topic prefix of its own (for example %s) or the same guards", weak.key, topic(weak, publicPrefix))
	}
	if _, meet := intersect(weak.lang, s.prefixed(strong, guardedPrefix)); !meet {
		return fmt.Sprintf("give %s a topic prefix of its own (for example %s), or %s the same guards",
			strong.key, topic(strong, guardedPrefix), weak.key)
	}
	return fmt.Sprintf("give both fields topic prefixes of their own (for example %s on %s and %s on %s), or %s the same guards",
		topic(weak, publicPrefix), weak.key, topic(strong, guardedPrefix), strong.key, weak.key)
}

// prefixed returns the topic language of f with prefix put in front.
func (s *Schema) prefixed(f *topicField, prefix string) *topicNFA {
	return s.topicLang(f.def, append([]topicPart{{lit: prefix}}, f.parts...))
}
