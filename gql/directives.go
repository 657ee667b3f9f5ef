package gql

import (
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// requirement is one entry of @auth(requires:): a role or a scope.
type requirement struct {
	scope bool
	name  string
	text  string // as written, "role:admin"
}

// holds reports whether env satisfies r.
func (r requirement) holds(env *Env) bool {
	list := env.Roles
	if r.scope {
		list = env.Scopes
	}
	for _, v := range list {
		if v == r.name {
			return true
		}
	}
	return false
}

// topicPart is a literal piece of a topic template or, when arg is set, a
// placeholder for that argument.
type topicPart struct {
	lit string
	arg string
}

// filterSpec is one @filter: the event value at path must equal the
// argument arg or the claim named claim.
type filterSpec struct {
	path  []string
	arg   string
	claim string
}

// stringValue returns the text of a string literal.
func stringValue(v *ast.Value) (string, bool) {
	if v == nil || (v.Kind != ast.StringValue && v.Kind != ast.BlockValue) {
		return "", false
	}
	return v.Raw, true
}

// authOf parses the @auth directives in dirs.
func authOf(dirs ast.DirectiveList) ([]requirement, error) {
	var out []requirement
	for _, d := range dirs.ForNames("auth") {
		v := d.Arguments.ForName("requires").Value
		items := []*ast.Value{v}
		if v.Kind == ast.ListValue {
			items = items[:0]
			for _, c := range v.Children {
				items = append(items, c.Value)
			}
		}
		for _, it := range items {
			r, err := parseRequirement(it)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// parseRequirement parses "role:NAME" or "scope:NAME".
func parseRequirement(v *ast.Value) (requirement, error) {
	text, ok := stringValue(v)
	kind, name, _ := strings.Cut(text, ":")
	if !ok || name == "" || (kind != "role" && kind != "scope") {
		return requirement{}, gqlerror.ErrorPosf(v.Position, "@auth: requirement %s must be a string \"role:NAME\" or \"scope:NAME\"", v.String())
	}
	return requirement{scope: kind == "scope", name: name, text: text}, nil
}

// scalarArg returns the definition of argument name of f if its type is a
// scalar or enum (not a list or input object).
func (s *Schema) scalarArg(f *ast.FieldDefinition, name string) (*ast.ArgumentDefinition, string) {
	a := f.Arguments.ForName(name)
	if a == nil {
		return nil, "names no argument of " + f.Name
	}
	def := s.ast.Types[a.Type.Name()]
	if a.Type.Elem != nil || def == nil || (def.Kind != ast.Scalar && def.Kind != ast.Enum) {
		return nil, "names argument " + name + " whose type " + a.Type.String() + " is not a scalar or enum"
	}
	return a, ""
}

// topicOf parses @topic(name:) of subscription field f; without the
// directive the topic is the field name.
func (s *Schema) topicOf(f *ast.FieldDefinition) ([]topicPart, error) {
	d := f.Directives.ForName("topic")
	if d == nil {
		return []topicPart{{lit: f.Name}}, nil
	}
	v := d.Arguments.ForName("name").Value
	tmpl, ok := stringValue(v)
	if !ok || tmpl == "" {
		return nil, gqlerror.ErrorPosf(v.Position, "@topic(name:) must be a non-empty string")
	}
	parts, err := parseTopic(tmpl)
	if err != "" {
		return nil, gqlerror.ErrorPosf(v.Position, "@topic %q: %s", tmpl, err)
	}
	for _, p := range parts {
		if p.arg == "" {
			continue
		}
		if _, why := s.scalarArg(f, p.arg); why != "" {
			return nil, gqlerror.ErrorPosf(v.Position, "@topic %q: placeholder {%s} %s", tmpl, p.arg, why)
		}
	}
	return parts, nil
}

// parseTopic splits a template such as "orders.{customerId}" into parts; it
// returns a reason when braces are unbalanced or a placeholder is empty.
func parseTopic(tmpl string) ([]topicPart, string) {
	var parts []topicPart
	for tmpl != "" {
		open := strings.IndexAny(tmpl, "{}")
		if open < 0 {
			return append(parts, topicPart{lit: tmpl}), ""
		}
		if tmpl[open] == '}' {
			return nil, "unmatched '}'"
		}
		if open > 0 {
			parts = append(parts, topicPart{lit: tmpl[:open]})
		}
		end := strings.IndexAny(tmpl[open+1:], "{}")
		if end < 0 || tmpl[open+1+end] == '{' {
			return nil, "unclosed '{'"
		}
		name := tmpl[open+1 : open+1+end]
		if name == "" {
			return nil, "empty placeholder {}"
		}
		parts = append(parts, topicPart{arg: name})
		tmpl = tmpl[open+2+end:]
	}
	return parts, ""
}

// filtersOf parses the @filter directives of subscription field f.
func (s *Schema) filtersOf(f *ast.FieldDefinition) ([]filterSpec, error) {
	var out []filterSpec
	for _, d := range f.Directives.ForNames("filter") {
		spec, err := s.filterOf(f, d)
		if err != nil {
			return nil, err
		}
		out = append(out, spec)
	}
	return out, nil
}

// filterOf parses one @filter directive d of f.
func (s *Schema) filterOf(f *ast.FieldDefinition, d *ast.Directive) (filterSpec, error) {
	fv := d.Arguments.ForName("field").Value
	path, ok := stringValue(fv)
	segs := strings.Split(path, ".")
	if !ok || path == "" || strings.Contains(path, "..") || segs[0] == "" || segs[len(segs)-1] == "" {
		return filterSpec{}, gqlerror.ErrorPosf(fv.Position, "@filter(field:) must be a dotted path such as \"author.id\"")
	}
	spec := filterSpec{path: segs}
	var hasArg, hasClaim bool
	if a := d.Arguments.ForName("arg"); a != nil && a.Value.Kind != ast.NullValue {
		if spec.arg, hasArg = stringValue(a.Value); !hasArg || spec.arg == "" {
			return filterSpec{}, gqlerror.ErrorPosf(a.Value.Position, "@filter(arg:) must name an argument")
		}
		if _, why := s.scalarArg(f, spec.arg); why != "" {
			return filterSpec{}, gqlerror.ErrorPosf(a.Value.Position, "@filter(arg: %q) %s", spec.arg, why)
		}
	}
	if c := d.Arguments.ForName("claim"); c != nil && c.Value.Kind != ast.NullValue {
		if spec.claim, hasClaim = stringValue(c.Value); !hasClaim || spec.claim == "" {
			return filterSpec{}, gqlerror.ErrorPosf(c.Value.Position, "@filter(claim:) must name a claim")
		}
	}
	if hasArg == hasClaim {
		return filterSpec{}, gqlerror.ErrorPosf(d.Position, "@filter on %s needs exactly one of arg or claim", f.Name)
	}
	return spec, nil
}
