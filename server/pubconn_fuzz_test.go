package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraised/fraised/resp"
)

// FuzzPublisherInput feeds arbitrary bytes, in two writes, to a real
// publisher connection (over net.Pipe, with the dispatcher running): the
// server must answer only well-formed RESP replies, never panic or hang,
// and end the connection when the peer closes.
func FuzzPublisherInput(f *testing.F) {
	f.Add([]byte("PING\r\nPUBLISH t {\"a\":1}\r\n"))
	f.Add(resp.AppendArray(nil, []byte("PUBLISH"), []byte("t"), []byte(`{"a":1}`)))
	f.Add([]byte("MULTI\r\nPUBLISH t {}\r\nPING\r\nEXEC\r\nMULTI\r\nGET x\r\nEXEC\r\nDISCARD\r\n"))
	f.Add([]byte("HELLO 3 SETNAME x\r\nCLIENT SETINFO LIB-NAME a\r\nSELECT 0\r\nCOMMAND DOCS\r\nINFO\r\nHELLO 2\r\nQUIT\r\n"))
	f.Add([]byte("*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$999999999999\r\n"))
	f.Add([]byte("*2\r\n$4\r\nECHO\r\n$2000\r\nxx"))
	s := newFuzzServer(f)
	s.opts.PublishReadTimeout = time.Second
	go s.d.Run()
	f.Cleanup(s.d.Stop)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		client, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		srv, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c := newPubConn(s, srv, 1)
		served := make(chan struct{})
		go func() {
			c.serve()
			close(served)
		}()
		replies := make(chan error, 1)
		go func() { replies <- readReplies(client) }()
		half := len(data) / 2
		_ = client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := client.Write(data[:half]); err == nil {
			_, _ = client.Write(data[half:])
		}
		_ = client.(*net.TCPConn).CloseWrite()
		select {
		case <-served:
		case <-time.After(15 * time.Second):
			t.Fatal("publisher connection did not end after its peer closed")
		}
		if err := <-replies; err != nil {
			t.Fatal(err)
		}
	})
}

// readReplies reads RESP replies until the server closes the connection,
// and returns an error for anything that is not a whole reply.
func readReplies(conn net.Conn) error {
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	r := bufio.NewReader(conn)
	for {
		if _, err := r.Peek(1); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				return nil
			}
			return err
		}
		if err := readReply(r, 0); err != nil {
			return err
		}
	}
}

// readReply reads one RESP2/RESP3 reply.
func readReply(r *bufio.Reader, depth int) error {
	if depth > 4 {
		return errors.New("replies nested too deep")
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("truncated reply %q: %w", line, err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return fmt.Errorf("reply line %q without CRLF", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', '-':
		if strings.ContainsAny(body, "\r\n") {
			return fmt.Errorf("reply line %q holds CR or LF", line)
		}
		return nil
	case '_':
		return nil
	case ':':
		_, err := strconv.ParseInt(body, 10, 64)
		return err
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return fmt.Errorf("bad bulk length in %q", line)
		}
		if n == -1 {
			return nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil || string(b[n:]) != "\r\n" {
			return fmt.Errorf("bad bulk string of %d bytes: %v", n, err)
		}
		return nil
	case '*', '%':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return fmt.Errorf("bad aggregate length in %q", line)
		}
		if line[0] == '%' {
			n *= 2
		}
		for range n {
			if err := readReply(r, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown reply type in %q", line)
}
