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
//	promlint rules < rules.yaml           a Prometheus rule file (`groups:`, what a
//	                                      PrometheusRule's spec holds), parsed and validated by
//	                                      Prometheus's own rule loader (model/rulefmt: strict
//	                                      YAML, every expression through promql/parser, every
//	                                      label and annotation template parsed); prints each
//	                                      rule with the metric names its expression selects,
//	                                      as JSON
//
// One tool, not one per job: the rules mode needs the same Prometheus module the OpenMetrics
// mode already pulls, so a second tool would build that dependency tree twice.
//
// The agent's tests pipe real scrapes and rendered rules into it. Exit 0: clean (the
// OpenMetrics mode prints the number of series, the rules mode its JSON). Exit 1: problems,
// one per line on stdout. Exit 2: usage.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	switch {
	case len(os.Args) == 1:
		lintText()
	case len(os.Args) == 2 && os.Args[1] == "-openmetrics":
		parseOpenMetrics()
	case len(os.Args) == 2 && os.Args[1] == "rules":
		checkRules()
	default:
		fmt.Fprintln(os.Stderr, "usage: promlint [-openmetrics] < exposition | promlint rules < rules.yaml")
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

// ruleOut is one rule of the rules mode's JSON.
type ruleOut struct {
	Group       string            `json:"group"`
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// The metric names the expression selects (each vector selector's name, or its
	// `__name__="..."` matcher), sorted, without repeats.
	Metrics []string `json:"metrics"`
}

func checkRules() {
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Printf("read error: %v\n", err)
		os.Exit(1)
	}
	// The parser and name scheme Prometheus's rule manager loads files with by default.
	p := parser.NewParser(parser.Options{})
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	groups, errs := rulefmt.Parse(b, false, model.UTF8Validation, p, logger)
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Printf("rule error: %v\n", e)
		}
		os.Exit(1)
	}
	out := []ruleOut{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			// rulefmt has parsed it already; parsed again here for the AST.
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				fmt.Printf("rule error: %s/%s%s: %v\n", g.Name, r.Alert, r.Record, err)
				os.Exit(1)
			}
			seen := map[string]bool{}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				name := vs.Name
				if name == "" {
					for _, m := range vs.LabelMatchers {
						if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
							name = m.Value
						}
					}
				}
				if name == "" {
					// A selector by regex or by labels only: no single metric to check, and
					// the caller must know.
					name = "{" + vs.String() + "}"
				}
				seen[name] = true
				return nil
			})
			metrics := make([]string, 0, len(seen))
			for n := range seen {
				metrics = append(metrics, n)
			}
			sort.Strings(metrics)
			o := ruleOut{
				Group: g.Name, Alert: r.Alert, Record: r.Record, Expr: r.Expr,
				Labels: r.Labels, Annotations: r.Annotations, Metrics: metrics,
			}
			if r.For != 0 {
				o.For = r.For.String()
			}
			out = append(out, o)
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fmt.Printf("write error: %v\n", err)
		os.Exit(1)
	}
}
