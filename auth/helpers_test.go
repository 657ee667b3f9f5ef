package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the fixed clock every verifier in these tests uses.
var testNow = time.Unix(1_700_000_000, 0)

func fixedNow() time.Time { return testNow }

// testSecret is a 32-byte HMAC secret.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// keyPair is a generated signing key with its public half.
type keyPair struct {
	priv crypto.Signer
	pub  crypto.PublicKey
}

type fixtureKeys struct {
	rsa, rsa2, ec256, ec384, ed keyPair
}

var (
	fixturesOnce sync.Once
	fixtures     fixtureKeys
)

// keys returns keys generated once per test binary (RSA generation is slow).
func keys(t testing.TB) *fixtureKeys {
	t.Helper()
	fixturesOnce.Do(func() {
		r1, _ := rsa.GenerateKey(rand.Reader, 2048)
		r2, _ := rsa.GenerateKey(rand.Reader, 2048)
		e1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		e2, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
		fixtures = fixtureKeys{
			rsa:   keyPair{r1, &r1.PublicKey},
			rsa2:  keyPair{r2, &r2.PublicKey},
			ec256: keyPair{e1, &e1.PublicKey},
			ec384: keyPair{e2, &e2.PublicKey},
			ed:    keyPair{edPriv, edPub},
		}
	})
	return &fixtures
}

// pemBytes encodes public keys as PUBLIC KEY blocks.
func pemBytes(t testing.TB, pubs ...crypto.PublicKey) []byte {
	t.Helper()
	var out []byte
	for _, p := range pubs {
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	return out
}

// writeFile writes data to name in a fresh temporary directory.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// jwkOf renders a public key as a JWK map.
func jwkOf(kid, alg string, pub crypto.PublicKey) map[string]string {
	enc := base64.RawURLEncoding.EncodeToString
	m := map[string]string{"kid": kid, "use": "sig"}
	if alg != "" {
		m["alg"] = alg
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", enc(p.N.Bytes()), enc(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (p.Curve.Params().BitSize + 7) / 8
		pt, _ := p.Bytes()
		m["kty"], m["crv"] = "EC", p.Curve.Params().Name
		m["x"], m["y"] = enc(pt[1:1+size]), enc(pt[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", enc(p)
	}
	return m
}

// jwksBytes renders a JWKS document.
func jwksBytes(t testing.TB, keys ...map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign signs claims with method and key, adding a kid header when set.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims returns standard valid claims at testNow, with overrides applied
// (a nil value deletes the claim).
func claims(over map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "user-1",
		"exp": testNow.Add(time.Hour).Unix(),
		"iat": testNow.Unix(),
		"aud": "fraised",
		"iss": "https://issuer.example",
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}
