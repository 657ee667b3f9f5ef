// Command rrproxy is the small TCP round-robin proxy of `make cluster`:
// it spreads connections over fraised nodes the way a load balancer
// would, so a client that reconnects may land on another node.
//
//	rrproxy -listen 127.0.0.1:4000 127.0.0.1:4100 127.0.0.1:4110 127.0.0.1:4120
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/fraised/fraised/internal/tcpproxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:4000", "`address` to accept connections on")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: rrproxy [-listen ADDR] BACKEND...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	p, err := tcpproxy.Listen(*listen, flag.Args()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rrproxy:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "rrproxy: %s -> %v (round-robin)\n", p.Addr(), flag.Args())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
	_ = p.Close()
}
