package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"strings"
)

// Key size floors: RSA below 2048 bits is factorable in practice (NIST SP
// 800-131A); an HMAC secret shorter than the HS256 output is guessable
// offline from any one token (RFC 7518 §3.2).
const (
	minRSABits   = 2048
	minSecretLen = 32
)

// maxKeyFile bounds a PEM or JWKS file so a wrong path (a log, /dev/zero)
// fails fast instead of filling memory.
const maxKeyFile = 1 << 20

// pubKey is one verification key with the algorithms it may verify.
type pubKey struct {
	kid  string
	algs []string
	key  crypto.PublicKey
}

// algsFor lists the JWS algorithms a public key type can verify.
func algsFor(k crypto.PublicKey) []string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}
		case elliptic.P384():
			return []string{"ES384"}
		case elliptic.P521():
			return []string{"ES512"}
		}
	case ed25519.PublicKey:
		return []string{"EdDSA"}
	}
	return nil
}

// checkKey returns a usable pubKey for k or says what is wrong with it.
func checkKey(k crypto.PublicKey) (pubKey, error) {
	if rk, ok := k.(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
		return pubKey{}, fmt.Errorf("RSA key has %d bits; use at least %d", rk.N.BitLen(), minRSABits)
	}
	algs := algsFor(k)
	if algs == nil {
		return pubKey{}, fmt.Errorf("unsupported key type %T; use RSA, EC P-256/P-384/P-521 or Ed25519", k)
	}
	return pubKey{algs: algs, key: k}, nil
}

// readKeyFile reads a key file, bounded by maxKeyFile.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("file is larger than %d bytes; is this the right file?", maxKeyFile)
	}
	return data, nil
}

// loadPEM reads every public key in a PEM file ("PUBLIC KEY",
// "RSA PUBLIC KEY" or "CERTIFICATE" blocks).
func loadPEM(path string) ([]pubKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read JWT public key file %q: %w", path, err)
	}
	var keys []pubKey
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		k, err := parsePEMBlock(block)
		if err != nil {
			return nil, fmt.Errorf("cannot use JWT public key file %q (block %d): %w", path, len(keys)+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("cannot use JWT public key file %q: no PEM block found; expected -----BEGIN PUBLIC KEY-----", path)
	}
	return keys, nil
}

// parsePEMBlock turns one PEM block into a checked public key.
func parsePEMBlock(b *pem.Block) (pubKey, error) {
	var k crypto.PublicKey
	var err error
	switch b.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(b.Bytes); err == nil {
			k = c.PublicKey
		}
	default:
		if strings.Contains(b.Type, "PRIVATE KEY") {
			return pubKey{}, fmt.Errorf("it holds a %s; give fraised only the public key (openssl pkey -pubout)", b.Type)
		}
		return pubKey{}, fmt.Errorf("unsupported PEM block %q; use PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", b.Type)
	}
	if err != nil {
		return pubKey{}, err
	}
	return checkKey(k)
}

// jwk is the subset of RFC 7517 fields fraised reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// loadJWKS reads a JWKS file: {"keys":[...]}. Keys for encryption
// ("use":"enc") and unsupported key types ("oct" included: shared secrets
// never come from a key set) are skipped; a supported key that does not
// parse is an error, and so is a set with no usable key.
func loadJWKS(path string) ([]pubKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read JWKS file %q: %w", path, err)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("cannot parse JWKS file %q: %w; expected {\"keys\":[...]}", path, err)
	}
	var keys []pubKey
	for i, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, ok, err := parseJWK(j)
		if err != nil {
			return nil, fmt.Errorf("cannot use key %d (kid %q) of JWKS file %q: %w", i, j.Kid, path, err)
		}
		if ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWKS file %q has no usable signing key; supported: kty RSA, EC (P-256, P-384, P-521), OKP (Ed25519)", path)
	}
	return keys, nil
}

// parseJWK converts one JWK; ok is false for key types fraised skips.
func parseJWK(j jwk) (k pubKey, ok bool, err error) {
	var pub crypto.PublicKey
	switch j.Kty {
	case "RSA":
		pub, err = jwkRSA(j)
	case "EC":
		pub, err = jwkEC(j)
	case "OKP":
		pub, err = jwkOKP(j)
	default:
		return pubKey{}, false, nil
	}
	if err != nil {
		return pubKey{}, false, err
	}
	if k, err = checkKey(pub); err != nil {
		return pubKey{}, false, err
	}
	k.kid = j.Kid
	if j.Alg != "" {
		if !slices.Contains(k.algs, j.Alg) {
			return pubKey{}, false, fmt.Errorf("alg %q does not fit a %s key", j.Alg, j.Kty)
		}
		k.algs = []string{j.Alg}
	}
	return k, true, nil
}

func jwkRSA(j jwk) (crypto.PublicKey, error) {
	n, err := b64(j.N)
	if err != nil || len(n) == 0 {
		return nil, fmt.Errorf("bad modulus n: want base64url")
	}
	e, err := b64(j.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("bad exponent e: want base64url of at most 4 bytes")
	}
	exp := int(new(big.Int).SetBytes(e).Int64())
	if exp < 3 || exp%2 == 0 {
		return nil, fmt.Errorf("bad exponent e=%d", exp)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
}

func jwkEC(j jwk) (crypto.PublicKey, error) {
	var c elliptic.Curve
	switch j.Crv {
	case "P-256":
		c = elliptic.P256()
	case "P-384":
		c = elliptic.P384()
	case "P-521":
		c = elliptic.P521()
	default:
		return nil, fmt.Errorf("unsupported curve %q; use P-256, P-384 or P-521", j.Crv)
	}
	size := (c.Params().BitSize + 7) / 8
	x, errX := b64(j.X)
	y, errY := b64(j.Y)
	if errX != nil || errY != nil || len(x) != size || len(y) != size {
		return nil, fmt.Errorf("bad x or y: want base64url of %d bytes each", size)
	}
	point := append(append([]byte{4}, x...), y...)
	k, err := ecdsa.ParseUncompressedPublicKey(c, point)
	if err != nil {
		return nil, fmt.Errorf("bad EC point: %w", err)
	}
	return k, nil
}

func jwkOKP(j jwk) (crypto.PublicKey, error) {
	if j.Crv != "Ed25519" {
		return nil, fmt.Errorf("unsupported OKP curve %q; use Ed25519", j.Crv)
	}
	x, err := b64(j.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("bad x: want base64url of %d bytes", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(x), nil
}

// b64 decodes base64url with or without padding.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
