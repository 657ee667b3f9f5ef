package soak

import (
	"fmt"
	"strings"
	"time"
)

// Markdown renders the results as the README's Reliability table.
func Markdown(rs []Result, header string, canaryP99 time.Duration) string {
	var b strings.Builder
	if header != "" {
		b.WriteString(header + "\n\n")
	}
	b.WriteString("| scenario | verdict | peak RSS | peak fds | acknowledged / delivered | close codes seen | canary p99 | figures |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		verdict := "PASS"
		if !r.Pass {
			verdict = "**FAIL**"
		}
		canary := "-"
		if r.Canary != nil {
			canary = ms(r.Canary.P99)
			if !r.Canary.OK(canaryP99) {
				canary += " (" + cell(r.Canary.String()) + ")"
			}
		}
		ad := "-"
		if r.Acked > 0 || r.Delivered > 0 {
			ad = fmt.Sprintf("%d / %d", r.Acked, r.Delivered)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s | %s |\n", r.Name, verdict, mib(r.PeakKB), r.PeakFD, ad,
			cell(r.CodesString()), canary, cell(strings.Join(r.Figures, " ")))
	}
	var missed []string
	for _, r := range rs {
		for _, f := range r.Failures {
			missed = append(missed, fmt.Sprintf("- %s: %s", r.Name, f))
		}
	}
	if len(missed) > 0 {
		b.WriteString("\nMissed targets:\n\n" + strings.Join(missed, "\n") + "\n")
	}
	return b.String()
}

// cell escapes a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
