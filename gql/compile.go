package gql

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// Request is one operation sent by a client. Compile does not keep
// Variables.
type Request struct {
	Query, OperationName string
	Variables            []byte // raw JSON object or nil
}

// Env is what the server knows about the connection that sent a request.
// Compile keeps InitPayload and Claims for the resolvers of the operation
// that read them (Resolver.Identity), so they must not be modified
// afterwards. A claim used by @filter must be
// a string, number or boolean; any other value (or none) matches nothing.
type Env struct {
	InitPayload   []byte         // raw connection_init payload JSON, or nil
	Claims        map[string]any // verified identity claims, nil when anonymous
	Roles, Scopes []string       // checked by @auth
}

// Kind is the kind of a compiled operation.
type Kind uint8

// Operation kinds.
const (
	KindQuery Kind = iota + 1
	KindSubscription
)

// String returns "query" or "subscription".
func (k Kind) String() string {
	switch k {
	case KindQuery:
		return "query"
	case KindSubscription:
		return "subscription"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Operation is a compiled operation: one client document, operation name,
// variables and connection identity. It is immutable and safe for
// concurrent use.
type Operation struct {
	Kind          Kind
	Field         string // root field name (subscriptions)
	Topic         string // resolved topic (subscriptions)
	GroupKey      uint64 // a seeded hash of the identity: finds candidate groups; equal keys prove nothing (SameGroup decides)
	DocHash       uint64 // xxhash of the document text (for audit logs)
	OperationName string

	plan     *plan
	identity []byte // every input that decides the matches and bytes (identity.go); GroupKey hashes it
}

// Compile parses, validates and plans req for a connection with env.
// Repeats are cheap: parsed documents, plans (per document and outcome of
// the @skip/@include variables) and compiled requests (per document,
// operation name and raw variables bytes) are cached, bounded, and so are
// operations per request and the parts of env they depend on, held weakly
// (request.go); @auth is checked against env at every call. Compilations
// with the same identity (SameGroup) return the same *Operation while any
// holder keeps it alive, so subscribers of one group share one plan. Errors are
// GraphQL errors with locations where the document has them; the returned
// list must not be modified. Compile is safe for concurrent use; it keeps
// neither req.Variables nor env past the call except, when the root field
// has a resolver that reads the identity, env.InitPayload and env.Claims.
func (s *Schema) Compile(req Request, env Env) (*Operation, gqlerror.List) {
	if lim := s.limits.MaxDocumentBytes; lim >= 0 && len(req.Query) > lim {
		return nil, gqlerror.List{gqlerror.Errorf("document is %d bytes, more than the limit of %d", len(req.Query), lim)}
	}
	r := s.request(req)
	if len(r.errs) > 0 {
		return nil, r.errs
	}
	return s.operation(r, &env)
}

// document returns the cached parse and validation of text.
func (s *Schema) document(text string) *docEntry {
	if e, ok := s.cache.get(text); ok {
		return e
	}
	e := &docEntry{text: text, hash: xxhash.Sum64String(text)}
	e.doc, e.errs = s.parse(text)
	s.cache.put(e)
	return e
}

// parse parses and validates text against the schema with the standard
// rules. A panic inside the parser or validator is reported as an error.
func (s *Schema) parse(text string) (doc *ast.QueryDocument, errs gqlerror.List) {
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("gql: document validation panicked", "panic", r)
			doc, errs = nil, gqlerror.List{gqlerror.Errorf("cannot validate document: internal error")}
		}
	}()
	doc, err := parser.ParseQuery(&ast.Source{Input: text})
	if err != nil {
		return nil, gqlerror.List{gqlerror.WrapIfUnwrapped(err)}
	}
	if len(doc.Operations) == 0 && len(doc.Fragments) == 0 {
		return nil, gqlerror.List{gqlerror.ErrorLocf("", 1, 1, "Unexpected <EOF>")}
	}
	if errs := validator.ValidateWithRules(s.ast, doc, s.rules); len(errs) > 0 {
		return nil, errs
	}
	return doc, nil
}

// selectOperation picks the operation to run, as graphql-js does.
func selectOperation(doc *ast.QueryDocument, name string) (*ast.OperationDefinition, *gqlerror.Error) {
	if name != "" {
		if op := doc.Operations.ForName(name); op != nil {
			return op, nil
		}
		return nil, gqlerror.Errorf("Unknown operation named %q.", name)
	}
	switch len(doc.Operations) {
	case 0:
		return nil, gqlerror.Errorf("Must provide an operation.")
	case 1:
		return doc.Operations[0], nil
	}
	return nil, gqlerror.Errorf("Must provide operation name if query contains multiple operations.")
}

// variables decodes, validates (gqlparser's VariableValues) and coerces the
// variable values of op, applying defaults.
func (s *Schema) variables(op *ast.OperationDefinition, raw []byte) (map[string]any, gqlerror.List) {
	input, err := decodeVariables(raw)
	if err != nil {
		return nil, gqlerror.List{gqlerror.Errorf("variables must be a JSON object: %v", err)}
	}
	if err := variableValues(s.ast, op, input); err != nil {
		return nil, gqlerror.List{gqlerror.WrapIfUnwrapped(err)}
	}
	out := make(map[string]any, len(op.VariableDefinitions))
	for _, vd := range op.VariableDefinitions {
		v, has := input[vd.Variable]
		if !has && vd.DefaultValue != nil {
			v, err = vd.DefaultValue.Value(nil)
			has = err == nil
		}
		if !has {
			continue
		}
		c, err := coerceInput(s.ast, vd.Type, v)
		if err != nil {
			return nil, gqlerror.List{gqlerror.ErrorPosf(vd.Position, "Variable \"$%s\" got invalid value %s; %v", vd.Variable, inspectGo(v), err)}
		}
		out[vd.Variable] = c
	}
	return out, nil
}

// decodeVariables decodes a raw JSON object (numbers as json.Number); empty
// input and null mean no variables.
func decodeVariables(raw []byte) (map[string]any, error) {
	input := map[string]any{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return input, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&input); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the object")
	}
	if input == nil {
		input = map[string]any{}
	}
	return input, nil
}

// variableValues runs gqlparser's VariableValues, turning a panic into an
// error.
func variableValues(sch *ast.Schema, op *ast.OperationDefinition, input map[string]any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid variables: %v", r)
		}
	}()
	_, err = validator.VariableValues(sch, op, input)
	return err
}
