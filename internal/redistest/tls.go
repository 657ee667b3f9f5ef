package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fraised/fraised/internal/freeport"
)

// TLS is what StartTLS made: the server and the CA file that signs its
// certificate.
type TLS struct {
	*Server
	CAFile string
}

// URL returns rediss://127.0.0.1:port.
func (s *TLS) URL() string { return "rediss://" + s.Addr }

// StartTLS starts redis-server serving TLS only (no plain port), with a
// certificate for 127.0.0.1 signed by a fresh CA.
func StartTLS(tb testing.TB) *TLS {
	tb.Helper()
	dir := tb.TempDir()
	ca, caKey := newCert(tb, nil, nil, true)
	srv, srvKey := newCert(tb, ca, caKey, false)
	caFile := writePEM(tb, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	certFile := writePEM(tb, dir, "server.pem", "CERTIFICATE", srv.Raw)
	der, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyFile := writePEM(tb, dir, "server.key", "EC PRIVATE KEY", der)
	s := &Server{tb: tb}
	addr, err := freeport.Addr()
	if err != nil {
		tb.Fatal(err)
	}
	s.Addr = addr
	_, port, _ := net.SplitHostPort(s.Addr)
	s.args = []string{"--port", "0", "--tls-port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", tb.TempDir(), "--protected-mode", "no", "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile, "--tls-auth-clients", "no"}
	s.tls = true
	s.start()
	tb.Cleanup(s.Kill)
	return &TLS{Server: s, CAFile: caFile}
}

func newCert(tb testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "fraised test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, key
}

func writePEM(tb testing.TB, dir, name, kind string, der []byte) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
