package auth

import (
	"encoding/json"
	"testing"
)

func TestSameGrants(t *testing.T) {
	base := func() *Identity {
		return &Identity{Subject: "alice", Roles: []string{"a", "b"}, Scopes: []string{"s"},
			Claims: map[string]any{"sub": "alice", "tenant_id": "acme", "exp": json.Number("1"), "iat": json.Number("1")}}
	}
	same := base()
	same.Roles = []string{"b", "a"}
	same.Claims["exp"], same.Claims["iat"], same.Claims["jti"] = json.Number("2"), json.Number("2"), "x"
	if !SameGrants(base(), same) {
		t.Fatal("a renewed token that changes only exp, iat, jti and the order of roles must keep its grants")
	}
	for name, change := range map[string]func(*Identity){
		"subject":      func(id *Identity) { id.Subject = "mallory" },
		"tenant claim": func(id *Identity) { id.Claims["tenant_id"] = "globex" },
		"new claim":    func(id *Identity) { id.Claims["admin"] = true },
		"lost claim":   func(id *Identity) { delete(id.Claims, "tenant_id") },
		"more roles":   func(id *Identity) { id.Roles = append(id.Roles, "admin") },
		"fewer roles":  func(id *Identity) { id.Roles = id.Roles[:1] },
		"other roles":  func(id *Identity) { id.Roles = []string{"a", "c"} },
		"scopes":       func(id *Identity) { id.Scopes = nil },
	} {
		id := base()
		change(id)
		if SameGrants(base(), id) {
			t.Errorf("%s changed but SameGrants holds", name)
		}
	}
	if SameGrants(base(), nil) || !SameGrants(nil, nil) {
		t.Error("nil identities: only nil equals nil")
	}
}
