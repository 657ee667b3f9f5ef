package app

import (
	"flag"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/server"
)

// uiConfig is the part of config about what tools may read: schema
// introspection and the embedded GraphiQL page.
type uiConfig struct {
	introspection    bool
	showDirectives   bool
	graphiql, atRoot bool
}

func addUIFlags(fs *flag.FlagSet, u *uiConfig) {
	fs.BoolVar(&u.introspection, "introspection", true, "answer __schema and __type queries (GraphiQL, codegen and IDEs read the schema with them); false refuses them with INTROSPECTION_DISABLED")
	fs.BoolVar(&u.showDirectives, "introspect-fraised-directives", false, "list fraised's own directives (@topic, @filter, @auth) in introspection (hidden by default: clients cannot use them)")
	fs.BoolVar(&u.graphiql, "graphiql", true, "serve the embedded GraphiQL page at /graphiql (and / unless --graphiql-root=false)")
	fs.BoolVar(&u.atRoot, "graphiql-root", true, "also serve the GraphiQL page at / (false: / answers 404)")
}

// schemaOptions applies the introspection flags to o.
func (u *uiConfig) schemaOptions(o gql.Options) gql.Options {
	o.DisableIntrospection = !u.introspection
	o.IntrospectFraisedDirectives = u.showDirectives
	return o
}

// apply sets the GraphiQL options of opts.
func (u *uiConfig) apply(opts *server.Options) {
	opts.DisableGraphiQL = !u.graphiql
	opts.DisableGraphiQLRoot = !u.atRoot
}
