package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// TestEmbedExampleOverTLS builds examples/embed (the README's embedding
// program) as a user's module would: in a module of its own outside this
// repository, depending on fraised through a replace directive, offline
// (GOPROXY=off: the modules come from the local cache). It runs it with a
// fresh self-signed certificate, and a graphql-transport-ws client over
// wss:// receives the events the program publishes from Go.
func TestEmbedExampleOverTLS(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyFile(t, filepath.Join(root, "examples/embed/main.go"), filepath.Join(dir, "main.go"))
	copyFile(t, filepath.Join(root, "go.sum"), filepath.Join(dir, "go.sum"))
	gomod := "module example.com/app\n\ngo 1.26\n\nrequire github.com/fraised/fraised v0.0.0\n\n" +
		"replace github.com/fraised/fraised => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o600); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(dir, "app")
	build := exec.CommandContext(runCtx(t, 3*time.Minute), "go", "build", "-o", app, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example in its own module: %v\n%s", err, out)
	}

	certFile, keyFile, pool := selfSigned(t, dir)
	addr := freePort(t)
	p := newProc(t)
	p.run(t, exec.Command(app, "-listen", addr, "-cert", certFile, "-key", keyFile, "-schema", filepath.Join(root, "examples/schema.graphql")))
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get("https://" + addr + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "your application") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example did not serve HTTPS: %v\n%s", err, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}

	d := ws.Dialer{Protocols: []string{"graphql-transport-ws"}, TLSConfig: tlsConf, Timeout: 5 * time.Second}
	conn, br, _, err := d.Dial(context.Background(), "wss://"+addr+"/graphql")
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer conn.Close()
	if br == nil {
		br = bufio.NewReader(conn)
	}
	rw := struct {
		io.Reader
		io.Writer
	}{br, conn}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	_ = wsutil.WriteClientText(conn, []byte(`{"type":"connection_init"}`))
	if msg, err := wsutil.ReadServerText(rw); err != nil || string(msg) != `{"type":"connection_ack"}` {
		t.Fatalf("connection_init: %q %v", msg, err)
	}
	_ = wsutil.WriteClientText(conn, []byte(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"ticks\") { seq } }"}}`))
	msg, err := wsutil.ReadServerText(rw)
	if err != nil || !strings.HasPrefix(string(msg), `{"id":"1","type":"next","payload":{"data":{"events":{"seq":`) {
		t.Fatalf("no tick over wss: %q %v\n%s", msg, err, p.log())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// selfSigned writes a certificate for localhost and 127.0.0.1 and its key
// into dir, and returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
