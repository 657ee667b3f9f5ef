package auth

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

var sinkID *Identity

func BenchmarkVerify(b *testing.B) {
	k := keys(b)
	path := writeFile(b, "pub.pem", pemBytes(b, k.rsa.pub, k.ec256.pub, k.ed.pub))
	v, err := NewJWTVerifier(JWTConfig{Secret: testSecret, PublicKeyFile: path, Audience: "fraised", Now: fixedNow})
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name   string
		method jwt.SigningMethod
		key    any
	}{
		{"HS256", jwt.SigningMethodHS256, testSecret},
		{"RS256", jwt.SigningMethodRS256, k.rsa.priv},
		{"ES256", jwt.SigningMethodES256, k.ec256.priv},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed.priv},
	}
	for _, c := range cases {
		tok := sign(b, c.method, c.key, "", claims(map[string]any{"roles": []string{"admin"}, "scope": "a b"}))
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				id, err := v.Verify(b.Context(), tok)
				if err != nil {
					b.Fatal(err)
				}
				sinkID = id
			}
		})
	}
}

var sinkTok string

func BenchmarkTokenFromInitPayload(b *testing.B) {
	payload := []byte(`{"authorization":"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl","client":"web"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		sinkTok, _ = TokenFromInitPayload(payload, "")
	}
}

func BenchmarkTokenFromHeader(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkTok, _ = TokenFromHeader("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl")
	}
}
