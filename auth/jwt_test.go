package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verifiers builds one verifier per key source, all sharing aud/iss/clock.
func verifiers(t *testing.T) map[string]*JWTVerifier {
	t.Helper()
	k := keys(t)
	base := JWTConfig{Audience: "fraised", Issuer: "https://issuer.example", Now: fixedNow}
	jwks := jwksBytes(t,
		jwkOf("rsa-1", "", k.rsa.pub),
		jwkOf("ec-1", "ES256", k.ec256.pub),
		jwkOf("ed-1", "", k.ed.pub),
		jwkOf("rs-only", "RS256", k.rsa2.pub),
	)
	cfgs := map[string]JWTConfig{
		"secret":     {Secret: testSecret},
		"pem":        {PublicKeyFile: writeFile(t, "pub.pem", pemBytes(t, k.rsa.pub, k.ec256.pub, k.ed.pub))},
		"rsapem":     {PublicKeyFile: writeFile(t, "rsa.pem", pemBytes(t, k.rsa.pub))},
		"secret+rsa": {Secret: testSecret, PublicKeyFile: writeFile(t, "rsa.pem", pemBytes(t, k.rsa.pub))},
		"jwks":       {JWKSFile: writeFile(t, "jwks.json", jwks)},
		"leeway":     {Secret: testSecret, Leeway: 10 * time.Second},
		"needexp":    {Secret: testSecret, RequireExpiration: true},
	}
	out := make(map[string]*JWTVerifier, len(cfgs))
	for name, c := range cfgs {
		c.Audience, c.Issuer, c.Now = base.Audience, base.Issuer, base.Now
		v, err := NewJWTVerifier(c)
		if err != nil {
			t.Fatalf("verifier %s: %v", name, err)
		}
		out[name] = v
	}
	return out
}

func TestVerify(t *testing.T) {
	k := keys(t)
	vs := verifiers(t)
	hs := func(m jwt.SigningMethod, over map[string]any) string { return sign(t, m, testSecret, "", claims(over)) }
	ago := func(d time.Duration) int64 { return testNow.Add(-d).Unix() }
	in := func(d time.Duration) int64 { return testNow.Add(d).Unix() }
	rsaPEM := pemBytes(t, k.rsa.pub)
	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil))
	tests := []struct {
		name     string
		verifier string
		token    string
		want     Reason // ReasonUnknown with wantErr nil means success
		wantErr  error
	}{
		{"HS256", "secret", hs(jwt.SigningMethodHS256, nil), 0, nil},
		{"HS384", "secret", hs(jwt.SigningMethodHS384, nil), 0, nil},
		{"HS512", "secret", hs(jwt.SigningMethodHS512, nil), 0, nil},
		{"RS256 PEM", "pem", sign(t, jwt.SigningMethodRS256, k.rsa.priv, "", claims(nil)), 0, nil},
		{"PS256 PEM", "pem", sign(t, jwt.SigningMethodPS256, k.rsa.priv, "", claims(nil)), 0, nil},
		{"ES256 PEM", "pem", sign(t, jwt.SigningMethodES256, k.ec256.priv, "", claims(nil)), 0, nil},
		{"EdDSA PEM", "pem", sign(t, jwt.SigningMethodEdDSA, k.ed.priv, "", claims(nil)), 0, nil},
		{"RS256 JWKS", "jwks", sign(t, jwt.SigningMethodRS256, k.rsa.priv, "rsa-1", claims(nil)), 0, nil},
		{"RS512 JWKS no kid", "jwks", sign(t, jwt.SigningMethodRS512, k.rsa.priv, "", claims(nil)), 0, nil},
		{"ES256 JWKS", "jwks", sign(t, jwt.SigningMethodES256, k.ec256.priv, "ec-1", claims(nil)), 0, nil},
		{"EdDSA JWKS", "jwks", sign(t, jwt.SigningMethodEdDSA, k.ed.priv, "ed-1", claims(nil)), 0, nil},
		{"no exp allowed", "secret", hs(jwt.SigningMethodHS256, map[string]any{"exp": nil}), 0, nil},

		{"empty", "secret", "", 0, ErrNoToken},
		{"garbage", "secret", "not-a-jwt", ReasonMalformed, nil},
		{"too long", "secret", strings.Repeat("a", MaxTokenSize+1), ReasonMalformed, nil},
		{"expired", "secret", hs(jwt.SigningMethodHS256, map[string]any{"exp": ago(time.Second)}), ReasonExpired, nil},
		{"nbf in future", "secret", hs(jwt.SigningMethodHS256, map[string]any{"nbf": in(time.Minute)}), ReasonNotYetValid, nil},
		{"expired within leeway", "leeway", hs(jwt.SigningMethodHS256, map[string]any{"exp": ago(5 * time.Second)}), 0, nil},
		{"expired beyond leeway", "leeway", hs(jwt.SigningMethodHS256, map[string]any{"exp": ago(20 * time.Second)}), ReasonExpired, nil},
		{"nbf within leeway", "leeway", hs(jwt.SigningMethodHS256, map[string]any{"nbf": in(5 * time.Second)}), 0, nil},
		{"nbf beyond leeway", "leeway", hs(jwt.SigningMethodHS256, map[string]any{"nbf": in(20 * time.Second)}), ReasonNotYetValid, nil},
		{"exp required", "needexp", hs(jwt.SigningMethodHS256, map[string]any{"exp": nil}), ReasonMissingClaim, nil},
		{"exp wrong type", "secret", hs(jwt.SigningMethodHS256, map[string]any{"exp": "tomorrow"}), ReasonBadClaims, nil},
		{"wrong audience", "secret", hs(jwt.SigningMethodHS256, map[string]any{"aud": "other"}), ReasonWrongAudience, nil},
		{"audience in list", "secret", hs(jwt.SigningMethodHS256, map[string]any{"aud": []string{"x", "fraised"}}), 0, nil},
		{"missing audience", "secret", hs(jwt.SigningMethodHS256, map[string]any{"aud": nil}), ReasonMissingClaim, nil},
		{"wrong issuer", "secret", hs(jwt.SigningMethodHS256, map[string]any{"iss": "https://evil.example"}), ReasonWrongIssuer, nil},
		{"wrong secret", "secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-long!"), "", claims(nil)), ReasonBadSignature, nil},
		{"wrong RSA key", "pem", sign(t, jwt.SigningMethodRS256, k.rsa2.priv, "", claims(nil)), ReasonBadSignature, nil},
		{"tampered payload", "secret", tamper(hs(jwt.SigningMethodHS256, nil)), ReasonBadSignature, nil},
		{"bad signature beats expiry", "secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-long!"), "", claims(map[string]any{"exp": ago(time.Hour)})), ReasonBadSignature, nil},
		{"alg none", "secret", noneTok, ReasonBadAlg, nil},
		{"alg none with keys", "pem", noneTok, ReasonBadAlg, nil},
		{"unknown alg", "secret", "eyJhbGciOiJYWVoifQ.e30.c2ln", ReasonBadAlg, nil},
		{"HS256 with RSA public key bytes", "rsapem", sign(t, jwt.SigningMethodHS256, rsaPEM, "", claims(nil)), ReasonBadAlg, nil},
		{"HS256 with RSA public key bytes, secret set", "secret+rsa", sign(t, jwt.SigningMethodHS256, rsaPEM, "", claims(nil)), ReasonBadSignature, nil},
		{"RS256 to secret-only", "secret", sign(t, jwt.SigningMethodRS256, k.rsa.priv, "", claims(nil)), ReasonBadAlg, nil},
		{"ES384 without P-384 key", "pem", sign(t, jwt.SigningMethodES384, k.ec384.priv, "", claims(nil)), ReasonBadAlg, nil},
		{"unknown kid", "jwks", sign(t, jwt.SigningMethodRS256, k.rsa.priv, "nope", claims(nil)), ReasonUnknownKID, nil},
		{"kid of another key", "jwks", sign(t, jwt.SigningMethodRS256, k.rsa.priv, "rs-only", claims(nil)), ReasonBadSignature, nil},
		{"alg outside JWK alg", "jwks", sign(t, jwt.SigningMethodPS256, k.rsa2.priv, "rs-only", claims(nil)), ReasonBadAlg, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := vs[tt.verifier].Verify(context.Background(), tt.token)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.want != ReasonUnknown:
				if !errors.Is(err, ErrInvalidToken) || ReasonOf(err) != tt.want {
					t.Fatalf("err = %v (reason %q), want reason %q", err, ReasonOf(err), tt.want)
				}
				if id != nil {
					t.Fatal("identity returned with an error")
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			case id.Subject != "user-1":
				t.Fatalf("subject = %q", id.Subject)
			}
			if err != nil && len(tt.token) > 0 && strings.Contains(err.Error(), tt.token[:min(len(tt.token), 12)]) {
				t.Fatalf("error %q contains token text", err)
			}
		})
	}
}

// tamper rewrites the subject of a compact JWS without re-signing it.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = bytes.Replace(payload, []byte("user-1"), []byte("admin1"), 1)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func TestIdentityClaims(t *testing.T) {
	v, err := NewJWTVerifier(JWTConfig{Secret: testSecret, Now: fixedNow, RolesClaim: "realm_access.roles", ScopeClaim: "scp"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		over       map[string]any
		roles      []string
		scopes     []string
		tenant     string
		tenantOK   bool
		wantExpiry bool
	}{
		{"nested roles, string scope", map[string]any{"realm_access": map[string]any{"roles": []any{"admin", 7, "ops"}}, "scp": "orders:read  orders:write", "tenant_id": "t1"},
			[]string{"admin", "ops"}, []string{"orders:read", "orders:write"}, "t1", true, true},
		{"single role string, array scope", map[string]any{"realm_access.roles": "admin", "scp": []any{"a", "b"}, "tenant_id": 42},
			[]string{"admin"}, []string{"a", "b"}, "42", true, true},
		{"no roles, no tenant, no exp", map[string]any{"exp": nil}, nil, nil, "", false, false},
		{"object tenant refused", map[string]any{"tenant_id": map[string]any{"x": 1}}, nil, nil, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, testSecret, "", claims(tt.over)))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(id.Roles, ",") != strings.Join(tt.roles, ",") || strings.Join(id.Scopes, ",") != strings.Join(tt.scopes, ",") {
				t.Fatalf("roles %q scopes %q, want %q %q", id.Roles, id.Scopes, tt.roles, tt.scopes)
			}
			if got, ok := id.ClaimString("tenant_id"); got != tt.tenant || ok != tt.tenantOK {
				t.Fatalf("tenant = %q %v, want %q %v", got, ok, tt.tenant, tt.tenantOK)
			}
			if id.Expiry.IsZero() == tt.wantExpiry {
				t.Fatalf("expiry = %v, want set %v", id.Expiry, tt.wantExpiry)
			}
			for _, r := range tt.roles {
				if !id.HasRole(r) {
					t.Fatalf("HasRole(%q) false", r)
				}
			}
			if id.HasRole("root") || id.HasScope("root") {
				t.Fatal("unexpected role or scope root")
			}
		})
	}
	var anon *Identity
	if anon.HasRole("admin") || anon.HasScope("x") {
		t.Fatal("nil identity has a role")
	}
	if _, ok := anon.ClaimString("tenant_id"); ok {
		t.Fatal("nil identity has a claim")
	}
}

func TestReloadRotatesJWKS(t *testing.T) {
	k := keys(t)
	path := writeFile(t, "jwks.json", jwksBytes(t, jwkOf("old", "", k.rsa.pub)))
	v, err := NewJWTVerifier(JWTConfig{JWKSFile: path, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	oldTok := sign(t, jwt.SigningMethodRS256, k.rsa.priv, "old", claims(nil))
	newTok := sign(t, jwt.SigningMethodES256, k.ec256.priv, "new", claims(nil))
	check := func(step, tok string, want Reason) {
		t.Helper()
		_, err := v.Verify(context.Background(), tok)
		if got := ReasonOf(err); (err == nil) != (want == ReasonUnknown) || got != want {
			t.Fatalf("%s: err = %v, want reason %q", step, err, want)
		}
	}
	check("before", oldTok, ReasonUnknown)
	check("before", newTok, ReasonBadAlg)

	if err := os.WriteFile(path, jwksBytes(t, jwkOf("new", "", k.ec256.pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	check("rotated", oldTok, ReasonBadAlg) // RS256 no longer has any key
	check("rotated", newTok, ReasonUnknown)
	if got := strings.Join(v.Algorithms(), ","); got != "ES256" {
		t.Fatalf("algorithms = %s", got)
	}

	if err := os.WriteFile(path, []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := v.Reload(); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("reload of a broken file: err = %v, want one naming %s", err, path)
	}
	check("after failed reload", newTok, ReasonUnknown)
}

func TestReloadUnknownKIDAfterRotation(t *testing.T) {
	k := keys(t)
	path := writeFile(t, "jwks.json", jwksBytes(t, jwkOf("k1", "", k.rsa.pub)))
	v, err := NewJWTVerifier(JWTConfig{JWKSFile: path, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, jwksBytes(t, jwkOf("k2", "", k.rsa2.pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k.rsa.priv, "k1", claims(nil)))
	if ReasonOf(err) != ReasonUnknownKID {
		t.Fatalf("err = %v, want unknown kid", err)
	}
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k.rsa2.priv, "k2", claims(nil))); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDuringReload(t *testing.T) {
	k := keys(t)
	path := writeFile(t, "jwks.json", jwksBytes(t, jwkOf("k", "", k.ed.pub)))
	v, err := NewJWTVerifier(JWTConfig{JWKSFile: path, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodEdDSA, k.ed.priv, "k", claims(nil))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 20 {
		if err := v.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
