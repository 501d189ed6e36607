// Command svcproxy makes the `kubernetes` Service (10.96.0.1:443, what the kubelet tells every
// pod in KUBERNETES_SERVICE_HOST/PORT) reach kube-testenv's API server, which listens on
// 127.0.0.1 only. kube-testenv runs no kube-proxy: its API server runs with
// --endpoint-reconciler-type=none, so the Service has no endpoints for kube-proxy to program,
// and this one TCP forward is all a pod of the node needs. It copies bytes both ways and never
// looks inside them (TLS is end to end: the serving certificate names 10.96.0.1).
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "10.96.0.1:443", "address to accept on")
	to := flag.String("to", "", "address to forward to (the API server's 127.0.0.1:port)")
	parent := flag.Int("parent-pid", 0, "exit when this process is gone")
	flag.Parse()
	if *to == "" {
		fmt.Fprintln(os.Stderr, "svcproxy: --to is required")
		os.Exit(2)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "svcproxy: %v\n", err)
		os.Exit(1)
	}
	if *parent > 0 {
		go func() {
			for {
				time.Sleep(time.Second)
				if syscall.Kill(*parent, 0) == syscall.ESRCH {
					os.Exit(0)
				}
			}
		}()
	}
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "svcproxy: accept: %v\n", err)
			continue
		}
		go forward(c, *to)
	}
}

func forward(c net.Conn, to string) {
	defer c.Close()
	u, err := net.DialTimeout("tcp", to, 10*time.Second)
	if err != nil {
		fmt.Fprintf(os.Stderr, "svcproxy: %v\n", err)
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done
}
