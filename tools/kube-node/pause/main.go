// Command pause is the sandbox ("pause") container of scripts/kube-testenv's node: it holds a
// pod's namespaces open and does nothing else until the kubelet stops it. Built here because no
// registry is reachable to pull registry.k8s.io/pause. As PID 1 of its PID namespace it gets no
// default signal actions, so it must catch SIGTERM and SIGINT itself to stop on request.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
