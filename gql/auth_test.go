package gql

import "testing"

func TestAuth(t *testing.T) {
	admin := Env{Roles: []string{"admin"}}
	tests := []struct {
		name, query string
		env         Env
		want        string // "" = allowed
	}{
		{"root field refused", `subscription {
  secret { seq } }`, Env{}, `[{"message":"forbidden: field \"Subscription.secret\" requires role:admin","locations":[{"line":2,"column":3}]}]`},
		{"root field allowed", `subscription { secret { seq } }`, admin, ""},
		{"every requirement must hold", `subscription { scoped { seq } }`, admin, `forbidden: field \"Subscription.scoped\" requires scope:orders:read`},
		{"roles and scopes", `subscription { scoped { seq } }`, Env{Roles: []string{"admin"}, Scopes: []string{"orders:read"}}, ""},
		{"a role is not a scope", `subscription { scoped { seq } }`, Env{Roles: []string{"admin", "orders:read"}}, `requires scope:orders:read`},
		{"nested field refused", `subscription { messages(room: "r") { author { ... on User { email } } } }`, Env{},
			`forbidden: field \"User.email\" requires scope:pii","locations":[{"line":1,"column":61}]`},
		{"nested field not selected", `subscription { messages(room: "r") { author { ... on User { name } } } }`, Env{}, ""},
		{"object type reached through an interface", `subscription { messages(room: "r") { node { id } } }`, Env{},
			`forbidden: type \"Secret\" requires role:admin","locations":[{"line":1,"column":38}]`},
		{"object type allowed", `subscription { messages(room: "r") { node { id ... on Secret { code } } } }`, admin, ""},
		{"refusals in fragments are found", `subscription { ...F } fragment F on Subscription { secret { seq } }`, Env{}, `forbidden: field \"Subscription.secret\"`},
		{"skipped selections are not checked", `subscription { messages(room: "r") { seq node @skip(if: true) { id } } }`, Env{}, ""},
	}
	s := rich(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := s.Compile(Request{Query: tt.query}, tt.env)
			if tt.want == "" {
				if errs != nil {
					t.Fatal(errs)
				}
				return
			}
			contains(t, errorsText(errs), tt.want)
		})
	}
}

func TestAuthOnRootType(t *testing.T) {
	src := "type Query @auth(requires: [\"role:user\"]) { a: Int }"
	s, err := LoadSchema("a.graphql", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, errs := s.Compile(Request{Query: `{ __typename }`}, Env{})
	contains(t, errorsText(errs), `forbidden: type \"Query\" requires role:user`)
	if _, errs := s.Compile(Request{Query: `{ __typename }`}, Env{Roles: []string{"user"}}); errs != nil {
		t.Fatal(errs)
	}
}
