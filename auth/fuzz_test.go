package auth

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzSeed derives the Ed25519 key used by the fuzz verifier, so that seed
// tokens in testdata/fuzz stay valid.
var fuzzSeed = []byte("fraised-fuzz-ed25519-seed-32byte")

// newFuzzVerifier accepts HS256/384/512 with testSecret and EdDSA with the key
// derived from fuzzSeed, at testNow.
func newFuzzVerifier(f testing.TB) *JWTVerifier {
	f.Helper()
	pub := ed25519.NewKeyFromSeed(fuzzSeed).Public()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(f.TempDir(), "ed.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		f.Fatal(err)
	}
	v, err := NewJWTVerifier(JWTConfig{Secret: testSecret, PublicKeyFile: path, Audience: "fraised", Now: fixedNow})
	if err != nil {
		f.Fatal(err)
	}
	return v
}

// FuzzTokenExtraction feeds arbitrary init payloads, Authorization headers
// and Cookie headers through the extractors (whole and in two halves), then
// verifies whatever token came out. Nothing may panic, an extracted token
// never holds whitespace, and errors are only the fixed, token-free ones.
func FuzzTokenExtraction(f *testing.F) {
	v := newFuzzVerifier(f)
	f.Add([]byte(`{"authorization":"Bearer a.b.c"}`), "Bearer a.b.c", "token=a.b.c")
	f.Add([]byte(`{"Authorization":"eyJhbGciOiJub25lIn0.e30."}`), "bearer x", `a=1; token="x"`)
	f.Add([]byte(`{"authorization":"Bearer \u0000"}`), "Basic x", ";;=;token=")
	f.Fuzz(func(t *testing.T, payload []byte, header, cookie string) {
		half := len(payload) / 2
		TokenFromInitPayload(payload[:half], "")
		TokenFromInitPayload(payload[half:], "")
		TokenFromHeader(header[:len(header)/2])
		TokenFromCookie(cookie[:len(cookie)/2], "token")

		tok1, ok1 := TokenFromInitPayload(payload, "")
		tok2, ok2 := TokenFromHeader(header)
		tok3, ok3 := TokenFromCookie(cookie, "token")
		for i, tok := range []string{tok1, tok2, tok3} {
			if ok := []bool{ok1, ok2, ok3}[i]; ok != (tok != "") || (ok && !validToken(tok)) {
				t.Fatalf("source %d returned %q, %v", i, tok, ok)
			}
			checkVerify(t, v, tok)
		}
	})
}

// checkVerify runs Verify and checks the shape of its result.
func checkVerify(t *testing.T, v *JWTVerifier, tok string) {
	id, err := v.Verify(t.Context(), tok)
	switch {
	case err == nil:
		if id == nil {
			t.Fatal("nil identity without error")
		}
	case errors.Is(err, ErrNoToken):
		if tok != "" {
			t.Fatal("ErrNoToken for a non-empty token")
		}
	case errors.Is(err, ErrInvalidToken):
		if err.Error() != "auth: invalid token: "+ReasonOf(err).String() {
			t.Fatalf("unexpected error text %q", err)
		}
	default:
		t.Fatalf("unexpected error %v", err)
	}
}

// TestFuzzCorpusValidSeeds keeps the checked-in "valid-*" seeds valid, so
// the fuzzer always starts from tokens that reach the success path.
func TestFuzzCorpusValidSeeds(t *testing.T) {
	v := newFuzzVerifier(t)
	files, err := filepath.Glob("testdata/fuzz/FuzzTokenExtraction/valid-*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid seeds: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		payload, err1 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		header, err2 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[2], "string("), ")"))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: cannot parse seed: %v %v", name, err1, err2)
		}
		for _, tok := range []string{must(TokenFromInitPayload([]byte(payload), "")), must(TokenFromHeader(header))} {
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Fatalf("%s: seed token no longer verifies: %v", name, err)
			}
		}
	}
}

func must(tok string, ok bool) string {
	if !ok {
		return ""
	}
	return tok
}
