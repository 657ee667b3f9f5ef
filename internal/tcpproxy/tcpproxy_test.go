package tcpproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer answers each line with name and the line.
func echoServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					if _, err := c.Write([]byte(name + ":" + s.Text() + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string, timeout time.Duration) (string, error) {
	t.Helper()
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	return r.ReadString('\n')
}

func TestRoundRobinFreezeThaw(t *testing.T) {
	a, b := echoServer(t, "a"), echoServer(t, "b")
	dead := "127.0.0.1:1" // refuses: skipped
	p, err := Listen("127.0.0.1:0", a, dead, b)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	seen := map[string]int{}
	var conns []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		got, err := roundTrip(t, c, bufio.NewReader(c), "hi", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		seen[got[:1]]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Fatalf("backends used %v, want a and b twice each", seen)
	}
	c := conns[0]
	r := bufio.NewReader(c)
	p.Freeze()
	if got, err := roundTrip(t, c, r, "frozen", 300*time.Millisecond); err == nil {
		t.Fatalf("a frozen link forwarded %q", got)
	}
	fresh, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := roundTrip(t, fresh, bufio.NewReader(fresh), "new", 5*time.Second); err != nil {
		t.Fatalf("a connection opened after Freeze does not forward: %v", err)
	}
	p.FreezeNew(true)
	late, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	lr := bufio.NewReader(late)
	if got, err := roundTrip(t, late, lr, "late", 300*time.Millisecond); err == nil {
		t.Fatalf("a connection opened under FreezeNew forwarded %q", got)
	}
	p.Thaw()
	_ = late.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := lr.ReadString('\n'); err != nil || got[2:] != "late\n" {
		t.Fatalf("after Thaw the late line arrives as %q, %v", got, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got[2:] != "frozen\n" {
		t.Fatalf("after Thaw the held line arrives as %q, %v", got, err)
	}
	for _, c := range conns {
		c.Close()
	}
}
