package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/golang-jwt/jwt/v5"
)

// wsClient is a minimal graphql-transport-ws client for the binary tests.
type wsClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialWSHeader(t *testing.T, addr string, h http.Header) *wsClient {
	t.Helper()
	d := ws.Dialer{Protocols: []string{"graphql-transport-ws"}, Timeout: 5 * time.Second, Header: ws.HandshakeHeaderHTTP(h)}
	conn, br, _, err := d.Dial(context.Background(), "ws://"+addr+"/graphql")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if br == nil {
		br = bufio.NewReader(conn)
	}
	return &wsClient{t: t, conn: conn, r: br}
}

func (c *wsClient) send(m string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.conn, []byte(m)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next text message, or the close code as "close NNNN".
func (c *wsClient) next() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		msgs, err := wsutil.ReadServerMessage(c.r, nil)
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		for _, m := range msgs {
			switch m.OpCode {
			case ws.OpText:
				return string(m.Payload)
			case ws.OpClose:
				code, _ := ws.ParseCloseFrameData(m.Payload)
				return "close " + strconv.Itoa(int(code))
			case ws.OpPing:
				_ = wsutil.WriteClientMessage(c.conn, ws.OpPong, m.Payload)
			}
		}
	}
}

// initWith connects, sends connection_init with token, and returns the answer.
func initWith(t *testing.T, addr, token string) (*wsClient, string) {
	t.Helper()
	c := dialWSHeader(t, addr, nil)
	c.send(`{"type":"connection_init","payload":{"authorization":"Bearer ` + token + `"}}`)
	return c, c.next()
}

const ack = `{"type":"connection_ack"}`

// subscribeWS connects to addr, waits for connection_ack and subscribes
// (id "1") to query; extensions, when not "", is the subscribe payload's
// extensions object (raw JSON).
func subscribeWS(t *testing.T, addr, query, extensions string) *wsClient {
	t.Helper()
	c := dialWSHeader(t, addr, nil)
	c.send(`{"type":"connection_init"}`)
	if got := c.next(); got != ack {
		t.Fatalf("connection_init answered %s", got)
	}
	q, err := json.Marshal(query)
	if err != nil {
		t.Fatal(err)
	}
	if extensions != "" {
		extensions = `,"extensions":` + extensions
	}
	c.send(`{"id":"1","type":"subscribe","payload":{"query":` + string(q) + extensions + `}}`)
	return c
}

// eventsQuery is the example schema's subscription to topic's seqs.
func eventsQuery(topic string) string {
	return fmt.Sprintf("subscription { events(topic: %q) { seq } }", topic)
}

func edKey(t *testing.T) (ed25519.PrivateKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func signJWT(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": "alice", "aud": "fraised", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitLog waits until the binary has logged a line containing want.
func (p *proc) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.log(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("fraised never logged %q:\n%s", want, p.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSecuritySIGHUPAndAudit runs the binary with EdDSA keys from a PEM
// file, the example secure schema, an Origin allowlist and an audit log:
// SIGHUP swaps the keys (a broken file keeps the old ones), the tenant
// filter holds, and after SIGTERM the audit file holds every record.
func TestSecuritySIGHUPAndAudit(t *testing.T) {
	dir := t.TempDir()
	keyA, pemA := edKey(t)
	keyB, pemB := edKey(t)
	pemPath, auditPath := filepath.Join(dir, "jwt.pem"), filepath.Join(dir, "audit.jsonl")
	writeFile(t, pemPath, pemA)
	p := startBinary(t, "--schema", "../examples/secure.graphql", "--auth", "required", "--jwt-public-key", pemPath,
		"--jwt-audience", "fraised", "--audit-log", auditPath, "--allowed-origins", "https://app.example")
	tokA := signJWT(t, jwt.SigningMethodEdDSA, keyA, jwt.MapClaims{"tenant_id": "acme"})
	tokB := signJWT(t, jwt.SigningMethodEdDSA, keyB, jwt.MapClaims{"sub": "bob", "tenant_id": "acme"})

	c, got := initWith(t, p.listen, tokA)
	if got != ack {
		t.Fatalf("key A before reload: %s", got)
	}
	if _, got := initWith(t, p.listen, tokB); got != "close 4403" {
		t.Fatalf("key B before reload: %s, want close 4403", got)
	}

	// The tenant filter of examples/secure.graphql holds in the binary.
	c.send(`{"id":"1","type":"subscribe","payload":{"query":"subscription { orders { id status } }"}}`)
	publishUntil(t, p, "orders", `{"id":"o1","tenant":"acme","status":"PAID"}`, "(integer) 1")
	if got := publish(t, p, "orders", `{"id":"o2","tenant":"globex","status":"PAID"}`); got != "(integer) 0" {
		t.Fatalf("another tenant's order reached %s", got)
	}

	writeFile(t, pemPath, pemB)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "JWT keys reloaded")
	if _, got := initWith(t, p.listen, tokB); got != ack {
		t.Fatalf("key B after reload: %s", got)
	}
	if _, got := initWith(t, p.listen, tokA); got != "close 4403" {
		t.Fatalf("key A after reload: %s, want close 4403", got)
	}

	writeFile(t, pemPath, []byte("not a key"))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "cannot reload JWT keys")
	if _, got := initWith(t, p.listen, tokB); got != ack {
		t.Fatalf("key B after a failed reload: %s", got)
	}

	if code := rawUpgrade(t, p.listen, "Origin: https://evil.example"); code != http.StatusForbidden {
		t.Fatalf("foreign Origin: status %d, want 403", code)
	}

	p.terminate(t, 15*time.Second)
	checkAudit(t, auditPath, tokA, tokB)
}

// checkAudit parses the audit file and checks a record of every kind the
// test caused, and that no token text is in it.
func checkAudit(t *testing.T, path string, tokens ...string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var r struct{ Event, Reason, Subject, Field string }
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		seen[r.Event] = true
		seen[r.Event+"/"+r.Reason] = true
		seen[r.Event+"/"+r.Subject+"/"+r.Field] = true
	}
	for _, want := range []string{"conn.accepted", "auth.ok", "auth.failed/bad signature", "conn.refused/origin not allowed: https://evil.example",
		"subscribe.accepted/alice/orders"} {
		if !seen[want] {
			t.Errorf("no %s record in the audit log:\n%s", want, data)
		}
	}
	for _, tok := range tokens {
		if bytes.Contains(data, []byte(tok[strings.LastIndex(tok, ".")+1:])) {
			t.Error("the audit log contains token text")
		}
	}
}

// rawUpgrade sends a WebSocket upgrade with extra header lines and returns
// the response status.
func rawUpgrade(t *testing.T, addr string, extra ...string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /graphql HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n" +
		strings.Join(append(extra, ""), "\r\n") + "\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestSecurityFromEnvironment configures authentication, a cookie, a
// publish rate limit and a validation limit through FRAISED_* variables.
func TestSecurityFromEnvironment(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	secretPath := filepath.Join(t.TempDir(), "jwt.secret")
	writeFile(t, secretPath, append(append([]byte(nil), secret...), '\n'))
	t.Setenv("FRAISED_AUTH", "required")
	t.Setenv("FRAISED_JWT_SECRET_FILE", secretPath)
	t.Setenv("FRAISED_JWT_AUDIENCE", "fraised")
	t.Setenv("FRAISED_AUTH_COOKIE", "session")
	t.Setenv("FRAISED_LIMIT_PUBLISHES", "1,2")
	t.Setenv("FRAISED_MAX_DEPTH", "2")
	p := startBinary(t)

	if _, got := initWith(t, p.listen, ""); got != "close 4403" {
		t.Fatalf("no token: %s, want close 4403", got)
	}
	tok := signJWT(t, jwt.SigningMethodHS256, secret, nil)
	c := dialWSHeader(t, p.listen, http.Header{"Cookie": {"session=" + tok}})
	c.send(`{"type":"connection_init"}`)
	if got := c.next(); got != ack {
		t.Fatalf("token in cookie: %s", got)
	}
	c.send(`{"id":"deep","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { author { id } } }"}}`)
	if got := c.next(); !strings.Contains(got, `"type":"error"`) || !strings.Contains(got, "depth is 3, more than the limit of 2") {
		t.Fatalf("depth limit from the environment: %s", got)
	}

	conn, err := net.Dial("tcp", p.publish)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	var replies []string
	for i := 0; i < 3; i++ {
		if _, err := conn.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, strings.TrimSpace(line))
	}
	if replies[0] != "+PONG" || replies[1] != "+PONG" || !strings.HasPrefix(replies[2], "-ERR rate limit exceeded") {
		t.Fatalf("publisher replies %q: want two PONGs then a rate-limit error", replies)
	}
}

// TestSecurityFlagErrors: bad security settings stop the binary with a
// message saying what to change.
func TestSecurityFlagErrors(t *testing.T) {
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "secret")
	writeFile(t, secretPath, []byte("0123456789abcdef0123456789abcdef"))
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown auth mode", []string{"--auth", "sometimes"}, 2, "use off, optional or required"},
		{"bad rate", []string{"--limit-messages", "fast"}, 2, "cannot parse rate"},
		{"bad burst", []string{"--limit-subscribes", "5,0"}, 2, "cannot parse burst"},
		{"bad rate in the environment", []string{"env:FRAISED_LIMIT_IP_CONNECTIONS=-1"}, 2, "FRAISED_LIMIT_IP_CONNECTIONS"},
		{"auth without a key", []string{"--auth", "required"}, 1, "needs a key"},
		{"short secret", []string{"--auth", "optional", "--jwt-secret", "short"}, 1, "use at least 32"},
		{"two secrets", []string{"--jwt-secret", "x", "--jwt-secret-file", secretPath}, 1, "keep one"},
		{"missing key file", []string{"--auth", "required", "--jwks", filepath.Join(dir, "nope.json")}, 1, "nope.json"},
		{"unwritable audit log", []string{"--audit-log", filepath.Join(dir, "missing", "audit.jsonl")}, 1, "cannot open audit log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--schema", "../examples/schema.graphql", "--listen", freePort(t), "--publish-listen", freePort(t)}
			cmd := exec.Command(bin)
			for _, a := range tt.args {
				if env, ok := strings.CutPrefix(a, "env:"); ok {
					cmd.Env = append(os.Environ(), env)
					continue
				}
				args = append(args, a)
			}
			cmd.Args = append([]string{bin}, args...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tt.code {
				t.Fatalf("exit %v, want code %d; output:\n%s", err, tt.code, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

func TestHelpListsSecurityFlags(t *testing.T) {
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, name := range []string{"auth", "jwt-secret", "jwt-secret-file", "jwt-public-key", "jwks", "jwt-audience", "jwt-issuer",
		"jwt-leeway", "jwt-roles-claim", "jwt-scope-claim", "auth-init-key", "auth-cookie", "allowed-origins", "audit-log", "audit-queue",
		"limit-ip-connections", "limit-messages", "limit-subscribes", "limit-identity-subscribes", "limit-publishes",
		"max-identity-subscriptions", "max-identity-connections", "max-document-bytes", "max-depth", "max-aliases",
		"max-root-fields", "max-fragment-spreads", "max-complexity"} {
		env := "FRAISED_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if !strings.Contains(string(out), "--"+name+" ") || !strings.Contains(string(out), env) {
			t.Errorf("--help lacks --%s or %s", name, env)
		}
	}
}
