// Command promlint checks a Prometheus text exposition (version 0.0.4) the way `promtool check
// metrics` does: it parses it with Prometheus's own parser (github.com/prometheus/common/expfmt)
// and lints it with client_golang's promlint (the linter promtool runs). The agent's tests pipe
// a real scrape into it.
//
//	promlint < scrape.txt
//
// Exit 0: clean. Exit 1: parse errors or lint problems, one per line on stdout. Exit 2: usage.
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func main() {
	if len(os.Args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: promlint < exposition.txt")
		os.Exit(2)
	}
	problems, err := promlint.New(os.Stdin).Lint()
	if err != nil {
		fmt.Printf("parse error: %v\n", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Printf("%s: %s\n", p.Metric, p.Text)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}
