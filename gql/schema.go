package gql

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/fraised/fraised/internal/shard"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/fraised/fraised/history"
)

// directivesSDL declares fraised's directives. It is loaded as its own
// source ahead of the user's file, so positions in the user's file stay
// right and users need not declare them.
const directivesSDL = `directive @topic(name: String!) on FIELD_DEFINITION
directive @filter(field: String!, arg: String, claim: String) repeatable on FIELD_DEFINITION
directive @auth(requires: [String!]!) on FIELD_DEFINITION | OBJECT
directive @history(size: Int!, ttl: String!) on FIELD_DEFINITION
`

var directivesSource = &ast.Source{Name: "fraised-directives.graphql", Input: directivesSDL, BuiltIn: true}

// ErrSchema is wrapped by every schema load error other than a failure to
// read the file.
var ErrSchema = errors.New("gql: invalid schema")

// ResolveParams is what a ResolverFunc gets. A resolver must not modify Args,
// Claims or the byte slices, and must not keep Event after it returns.
type ResolveParams struct {
	Event       []byte         // event JSON (subscriptions), nil for queries; valid only during the call
	Args        map[string]any // the field's coerced arguments
	InitPayload []byte         // raw connection_init payload JSON, or nil
	Claims      map[string]any // verified identity claims, nil when anonymous
}

// ResolverFunc is a compiled-in resolver; it returns the value to project
// through the selection set: []byte / json.RawMessage are taken as raw JSON
// (read only during the projection), anything else is encoded with sonic
// (map keys sorted). It is called from many goroutines at
// once and must be safe for that.
//
// Coerced argument values are int64 (Int), float64 (Float), string (String,
// ID, enums), bool, []any, map[string]any (input objects), and for custom
// scalars the decoded JSON (json.Number for numbers).
type ResolverFunc func(ctx context.Context, p ResolveParams) (any, error)

// Resolver declares a root field's resolver and what of the subscriber it
// reads. Subscribers whose operations have equal identities share one group
// and one resolver call per event (identity.go); a resolver that reads the
// connection's identity makes it part of the group identity, so it runs
// once per distinct identity instead of once per group.
type Resolver struct {
	Func ResolverFunc
	// Identity says the resolver reads ResolveParams.InitPayload and
	// Claims. When false they are nil in its params, and subscribers with
	// different init payloads or tokens share a group (and one call).
	Identity bool
}

// Options configures LoadSchema. The zero value is valid.
type Options struct {
	Resolvers map[string]ResolverFunc // keys "Subscription.orderUpdated", "Query.serverTime"; unknown key = load error; each reads the identity (Resolver.Identity)
	// FieldResolvers are resolvers that declare what they read (Resolver);
	// a key may not be in both maps.
	FieldResolvers map[string]Resolver
	Limits         Limits
	Logger         *slog.Logger // resolver panics are logged here (nil = slog.Default())

	// DisableIntrospection refuses queries that select __schema or
	// __type: each gets an error with extensions.code
	// INTROSPECTION_DISABLED (IntrospectionDisabledCode). __typename is
	// still answered. The zero value answers introspection, as GraphiQL,
	// codegen tools and IDE plugins expect.
	DisableIntrospection bool
	// IntrospectFraisedDirectives lists fraised's own directive
	// definitions (@topic, @filter, @auth, @history) in __schema.directives. They
	// configure the server and cannot be used in client documents, so by
	// default introspection hides them and a client printing the schema
	// gets the user's SDL without them.
	IntrospectFraisedDirectives bool

	// HashForTests is for tests only; leave it nil. When set, it rewrites
	// every hash the schema computes (its cache keys and
	// Operation.GroupKey), so a test can make all of them collide (return
	// a constant) and prove that a hash only ever finds candidates: with
	// a constant, Compile and the registry must still keep distinct
	// operations apart, only more slowly.
	HashForTests func(uint64) uint64
}

// Schema is a loaded schema with fraised's directives resolved. It is
// immutable after loading and safe for concurrent use.
type Schema struct {
	ast       *ast.Schema
	limits    Limits
	logger    *slog.Logger
	roots     map[string]*rootInfo // "Subscription.x", "Query.x"
	fieldAuth map[*ast.FieldDefinition][]requirement
	typeAuth  map[string][]requirement
	enums     map[string]map[string]struct{}
	rules     *rules.Rules
	cache     *docCache
	requests  *shard.Cache[*request]
	envOps    *shard.Cache[*opEntry]
	ops       *interner
	id        uint64              // unique in the process; separates the identities of different schemas' operations
	rehash    func(uint64) uint64 // Options.HashForTests, or nil

	noIntrospection bool // Options.DisableIntrospection
	showDirectives  bool // Options.IntrospectFraisedDirectives
	// introTypeList and introDirectiveList are what __schema lists
	// (introTypes, introDirectives), ordered once at load.
	introTypeList      []*ast.Definition
	introDirectiveList []*ast.DirectiveDefinition

	requestIDs atomic.Uint64

	histFields []*historyField // subscription fields with @history (history.go)
}

// schemaIDs numbers the schemas loaded by the process.
var schemaIDs atomic.Uint64

// hashSeed seeds every hash of documents, requests and operations (cache
// keys and GroupKey). Clients choose what is hashed (documents, variables,
// and through their tokens claims), and XXH64 is not collision resistant:
// with a seed they can learn (it was once derived from the schema file)
// they can forge a document with another's key in a few thousand tries. A
// hash therefore never decides anything (every cache hit and every group
// join compares the full key or identity); the seed, drawn from
// crypto/rand once per process, keeps collisions rare so that lookups stay
// fast.
var hashSeed = randomSeed()

// randomSeed returns 64 bits from crypto/rand (which does not fail: the
// process crashes when the system cannot supply randomness).
func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// hash returns h, rewritten by Options.HashForTests when set.
func (s *Schema) hash(h uint64) uint64 {
	if s.rehash != nil {
		return s.rehash(h)
	}
	return h
}

// rootInfo is what the directives and options say about one root field.
type rootInfo struct {
	key      string // "Subscription.orderUpdated"
	topic    []topicPart
	filters  []filterSpec
	history  *history.Spec // @history, or nil
	resolver ResolverFunc
	identity bool // the resolver reads InitPayload and Claims
}

// LoadSchemaFile reads and loads the SDL file at path; errors name the path
// with line and column. It may be called from several goroutines.
func LoadSchemaFile(path string, opts Options) (*Schema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read schema: %w", err)
	}
	return LoadSchema(path, string(b), opts)
}

// LoadSchema loads the SDL src; name is used in error positions
// ("name:line:col: ..."). A schema without a query type gets a minimal one
// so that { __typename } works. Load errors wrap ErrSchema. It may be
// called from several goroutines.
func LoadSchema(name, src string, opts Options) (*Schema, error) {
	sch, err := validator.LoadSchema(validator.Prelude, directivesSource, &ast.Source{Name: name, Input: src})
	if err != nil {
		return nil, schemaError(err)
	}
	s := &Schema{
		ast:       sch,
		limits:    opts.Limits.withDefaults(),
		logger:    opts.Logger,
		roots:     map[string]*rootInfo{},
		fieldAuth: map[*ast.FieldDefinition][]requirement{},
		typeAuth:  map[string][]requirement{},
		enums:     map[string]map[string]struct{}{},
		rules:     rules.NewDefaultRules(),
		cache:     newDocCache(),
		requests:  shard.NewCache[*request](compileCacheShards, requestCacheEntries, requestCacheBytes),
		envOps:    shard.NewCache[*opEntry](compileCacheShards, opCacheEntries, opCacheBytes),
		ops:       newInterner(),
		id:        schemaIDs.Add(1),
		rehash:    opts.HashForTests,

		noIntrospection: opts.DisableIntrospection,
		showDirectives:  opts.IntrospectFraisedDirectives,
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	resolvers, err := mergeResolvers(opts)
	if err != nil {
		return nil, schemaError(err)
	}
	if err := s.init(resolvers); err != nil {
		return nil, schemaError(err)
	}
	return s, nil
}

// schemaError wraps a load error so its text keeps file:line:col.
func schemaError(err error) error {
	return fmt.Errorf("%w: %w", ErrSchema, err)
}

// init checks the schema against fraised's rules and indexes directives.
func (s *Schema) init(resolvers map[string]Resolver) error {
	if err := s.ensureQuery(); err != nil {
		return err
	}
	for _, name := range sortedTypeNames(s.ast) {
		if err := s.indexType(s.ast.Types[name]); err != nil {
			return err
		}
	}
	s.indexBuiltInEnums()
	s.introTypeList, s.introDirectiveList = s.introTypes(), s.introDirectives()
	if err := s.checkTopicGuards(); err != nil {
		return err
	}
	if err := s.indexHistory(); err != nil {
		return err
	}
	return s.bindResolvers(resolvers)
}

// sortedTypeNames returns the user-defined type names in order, so errors
// are reported deterministically.
func sortedTypeNames(sch *ast.Schema) []string {
	names := make([]string, 0, len(sch.Types))
	for name, def := range sch.Types {
		if !def.BuiltIn {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// ensureQuery adds an empty Query root when the schema has none.
func (s *Schema) ensureQuery() error {
	if s.ast.Query != nil {
		return nil
	}
	if def := s.ast.Types["Query"]; def != nil {
		return gqlerror.ErrorPosf(def.Position, "the schema definition names no query root type; add \"query: Query\"")
	}
	def := &ast.Definition{Kind: ast.Object, Name: "Query", Fields: validator.QueryIntrospectionFields()}
	s.ast.Types["Query"] = def
	s.ast.Query = def
	s.ast.AddPossibleType("Query", def)
	return nil
}

// indexType records the directives of def and of its fields.
func (s *Schema) indexType(def *ast.Definition) error {
	if def.Kind == ast.Enum {
		set := make(map[string]struct{}, len(def.EnumValues))
		for _, v := range def.EnumValues {
			set[v.Name] = struct{}{}
		}
		s.enums[def.Name] = set
	}
	reqs, err := authOf(def.Directives)
	if err != nil {
		return err
	}
	if len(reqs) > 0 {
		s.typeAuth[def.Name] = reqs
	}
	for _, f := range def.Fields {
		if err := s.indexField(def, f); err != nil {
			return err
		}
	}
	return nil
}

// indexField records @auth, @topic and @filter of field f of def.
func (s *Schema) indexField(def *ast.Definition, f *ast.FieldDefinition) error {
	reqs, err := authOf(f.Directives)
	if err != nil {
		return err
	}
	if len(reqs) > 0 {
		s.fieldAuth[f] = reqs
	}
	isSub := def == s.ast.Subscription
	if !isSub {
		for _, d := range f.Directives {
			if d.Name == "topic" || d.Name == "filter" || d.Name == "history" {
				return gqlerror.ErrorPosf(d.Position, "@%s is only allowed on fields of the subscription type, not on %s.%s", d.Name, def.Name, f.Name)
			}
		}
	}
	if strings.HasPrefix(f.Name, "__") || (def != s.ast.Query && !isSub) {
		return nil
	}
	info := &rootInfo{key: def.Name + "." + f.Name}
	if isSub {
		if info.topic, err = s.topicOf(f); err != nil {
			return err
		}
		if info.filters, err = s.filtersOf(f); err != nil {
			return err
		}
		if info.history, err = historyOf(f); err != nil {
			return err
		}
	}
	s.roots[info.key] = info
	return nil
}

// rootKey maps "Query.x" and "Subscription.x" to the actual root type names
// when a schema definition renames them.
func (s *Schema) rootKey(k string) string {
	typ, field, _ := strings.Cut(k, ".")
	switch {
	case typ == "Query" && s.ast.Query != nil:
		return s.ast.Query.Name + "." + field
	case typ == "Subscription" && s.ast.Subscription != nil:
		return s.ast.Subscription.Name + "." + field
	}
	return k
}

// bindResolvers attaches resolvers to root fields.
func (s *Schema) bindResolvers(resolvers map[string]Resolver) error {
	keys := make([]string, 0, len(resolvers))
	for k := range resolvers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		info := s.roots[s.rootKey(k)]
		if info == nil {
			return fmt.Errorf("cannot bind resolver %q: no such root field (want \"Query.field\" or \"Subscription.field\")", k)
		}
		if resolvers[k].Func == nil {
			return fmt.Errorf("cannot bind resolver %q: the function is nil", k)
		}
		info.resolver, info.identity = resolvers[k].Func, resolvers[k].Identity
	}
	return nil
}

// mergeResolvers joins Options.Resolvers (which read the identity) and
// Options.FieldResolvers.
func mergeResolvers(opts Options) (map[string]Resolver, error) {
	all := make(map[string]Resolver, len(opts.Resolvers)+len(opts.FieldResolvers))
	for k, f := range opts.Resolvers {
		all[k] = Resolver{Func: f, Identity: true}
	}
	for k, r := range opts.FieldResolvers {
		if _, dup := all[k]; dup {
			return nil, fmt.Errorf("cannot bind resolver %q: it is in both Options.Resolvers and Options.FieldResolvers", k)
		}
		all[k] = r
	}
	return all, nil
}
