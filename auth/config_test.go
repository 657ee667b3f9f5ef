package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewJWTVerifierErrors(t *testing.T) {
	k := keys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.ec256.priv)
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	tests := []struct {
		name string
		cfg  func() JWTConfig
		want []string // substrings of the error
	}{
		{"no key", func() JWTConfig { return JWTConfig{} }, []string{"without a key"}},
		{"short secret", func() JWTConfig { return JWTConfig{Secret: []byte("short")} }, []string{"5 bytes", "at least 32"}},
		{"negative leeway", func() JWTConfig { return JWTConfig{Secret: testSecret, Leeway: -time.Second} }, []string{"negative"}},
		{"missing PEM", func() JWTConfig { return JWTConfig{PublicKeyFile: "/nonexistent/k.pem"} }, []string{"/nonexistent/k.pem"}},
		{"not PEM", func() JWTConfig { return JWTConfig{PublicKeyFile: writeFile(t, "k.pem", []byte("hello"))} }, []string{"k.pem", "no PEM block"}},
		{"private key", func() JWTConfig { return JWTConfig{PublicKeyFile: writeFile(t, "k.pem", privPEM)} }, []string{"k.pem", "PRIVATE KEY", "-pubout"}},
		{"small RSA", func() JWTConfig {
			return JWTConfig{PublicKeyFile: writeFile(t, "k.pem", pemBytes(t, &small.PublicKey))}
		}, []string{"k.pem", "1024 bits", "2048"}},
		{"JWKS not JSON", func() JWTConfig { return JWTConfig{JWKSFile: writeFile(t, "j.json", []byte("nope"))} }, []string{"j.json", `{"keys":[...]}`}},
		{"JWKS only oct", func() JWTConfig {
			return JWTConfig{JWKSFile: writeFile(t, "j.json", []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))}
		}, []string{"j.json", "no usable signing key"}},
		{"JWKS alg mismatch", func() JWTConfig {
			return JWTConfig{JWKSFile: writeFile(t, "j.json", jwksBytes(t, jwkOf("a", "HS256", k.rsa.pub)))}
		}, []string{"j.json", `kid "a"`, "HS256"}},
		{"JWKS bad EC point", func() JWTConfig {
			j := jwkOf("e", "", k.ec256.pub)
			j["y"] = j["x"]
			return JWTConfig{JWKSFile: writeFile(t, "j.json", jwksBytes(t, j))}
		}, []string{"j.json", "EC point"}},
		{"JWKS bad curve", func() JWTConfig {
			return JWTConfig{JWKSFile: writeFile(t, "j.json", []byte(`{"keys":[{"kty":"EC","crv":"P-192","x":"AA","y":"AA"}]}`))}
		}, []string{"j.json", "P-192"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewJWTVerifier(tt.cfg())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestJWKSSkipsEncryptionKeys(t *testing.T) {
	k := keys(t)
	enc := jwkOf("enc", "", k.rsa2.pub)
	enc["use"] = "enc"
	path := writeFile(t, "j.json", jwksBytes(t, enc, jwkOf("sig", "", k.ed.pub)))
	v, err := NewJWTVerifier(JWTConfig{JWKSFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(v.Algorithms(), ","); got != "EdDSA" {
		t.Fatalf("algorithms = %s, want EdDSA only", got)
	}
}

func TestSecretIsCopied(t *testing.T) {
	secret := append([]byte(nil), testSecret...)
	v, err := NewJWTVerifier(JWTConfig{Secret: secret, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, testSecret, "", claims(nil))
	clear(secret) // the caller wipes its copy
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("verifier shares the caller's secret: %v", err)
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{"", ModeOff, false},
		{"off", ModeOff, false},
		{"Optional", ModeOptional, false},
		{" required ", ModeRequired, false},
		{"yes", ModeOff, true},
	}
	for _, tt := range tests {
		got, err := ParseMode(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseMode(%q) = %v, %v", tt.in, got, err)
		}
	}
	var m Mode
	if err := m.Set("required"); err != nil || m != ModeRequired || m.String() != "required" {
		t.Fatalf("Set: %v %v", m, err)
	}
}

func TestPEMBlockTypes(t *testing.T) {
	k := keys(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.ec384.pub, k.ec384.priv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		block  *pem.Block
		method jwt.SigningMethod
		priv   any
	}{
		{"RSA PUBLIC KEY", &pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(k.rsa.pub.(*rsa.PublicKey))}, jwt.SigningMethodRS384, k.rsa.priv},
		{"CERTIFICATE", &pem.Block{Type: "CERTIFICATE", Bytes: certDER}, jwt.SigningMethodES384, k.ec384.priv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewJWTVerifier(JWTConfig{PublicKeyFile: writeFile(t, "k.pem", pem.EncodeToMemory(tt.block)), Now: fixedNow})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(t.Context(), sign(t, tt.method, tt.priv, "", claims(nil))); err != nil {
				t.Fatal(err)
			}
		})
	}
}
