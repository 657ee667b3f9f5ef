package app

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/fraised/fraised/resp"
	"github.com/fraised/fraised/server"
)

// publishMain implements `fraised publish [--addr A | --unix P] TOPIC JSON`:
// it sends one PUBLISH over the Redis protocol and prints the reply
// (the number of subscriptions reached), like redis-cli.
func publishMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fraised publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", server.DefaultPublishListen, "publish listener TCP `address`")
	unixPath := fs.String("unix", "", "publish listener Unix socket `path` (instead of --addr)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this `duration`")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: fraised publish [--addr HOST:PORT | --unix PATH] TOPIC JSON")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 2 {
		if fs.NArg() > 2 {
			fmt.Fprintf(stderr, "fraised publish: unexpected argument %q after TOPIC JSON (flags go before TOPIC; quote a JSON payload that has spaces)\n", fs.Arg(2))
		} else {
			fmt.Fprintf(stderr, "fraised publish: want TOPIC and JSON, got %d argument(s)\n", fs.NArg())
		}
		fs.Usage()
		return 2
	}
	network, address := "tcp", *addr
	if *unixPath != "" {
		network, address = "unix", *unixPath
	}
	reply, err := publishOnce(network, address, fs.Arg(0), fs.Arg(1), *timeout)
	if err != nil {
		fmt.Fprintln(stderr, "fraised publish:", err)
		return 1
	}
	fmt.Fprintln(stdout, reply)
	return 0
}

func publishOnce(network, address, topic, payload string, timeout time.Duration) (string, error) {
	conn, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return "", fmt.Errorf("cannot connect to %s %s (is fraised running? see --addr/--unix): %w", network, address, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	cmd := resp.AppendArray(nil, []byte("PUBLISH"), []byte(topic), []byte(payload))
	if _, err := conn.Write(cmd); err != nil {
		return "", fmt.Errorf("cannot send to %s: %w", address, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("no reply from %s: %w", address, err)
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, ":"):
		return "(integer) " + line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", errors.New(line[1:])
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}
