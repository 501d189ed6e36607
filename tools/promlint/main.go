// Command promlint checks a metrics exposition with Prometheus's own code:
//
//	promlint < scrape.txt                 Prometheus text 0.0.4, the way `promtool check
//	                                      metrics` does: parsed by github.com/prometheus/common's
//	                                      expfmt and linted by client_golang's promlint (the
//	                                      linter promtool runs)
//	promlint -openmetrics < scrape.txt    OpenMetrics 1.0, parsed by the parser Prometheus
//	                                      scrapes it with (prometheus/model/textparse), which
//	                                      refuses what the format forbids (no `# EOF`, a sample
//	                                      outside its family, bad names or values)
//
// The agent's tests pipe real scrapes into it. Exit 0: clean (the OpenMetrics mode prints the
// number of series). Exit 1: problems, one per line on stdout. Exit 2: usage.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

func main() {
	switch {
	case len(os.Args) == 1:
		lintText()
	case len(os.Args) == 2 && os.Args[1] == "-openmetrics":
		parseOpenMetrics()
	default:
		fmt.Fprintln(os.Stderr, "usage: promlint [-openmetrics] < exposition")
		os.Exit(2)
	}
}

func lintText() {
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

func parseOpenMetrics() {
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Printf("read error: %v\n", err)
		os.Exit(1)
	}
	p := textparse.NewOpenMetricsParser(b, labels.NewSymbolTable())
	series := 0
	for {
		e, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Printf("parse error: %v\n", err)
			os.Exit(1)
		}
		if e == textparse.EntrySeries {
			series++
		}
	}
	fmt.Println(series)
}
