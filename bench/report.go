package bench

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// The budget of BENCHMARKS.md, which WriteMarkdown judges a report against. Each is a ceiling
// to stay under, not a score: once a figure is within it, the simpler code wins.
const (
	// BudgetCPURatio: the binary's CPU per send at 64 callers over the CPU per send of
	// twilio-go called directly (a), at most.
	BudgetCPURatio = 1.6
	// BudgetAddedP99: (c)'s p99 latency minus (a)'s at one caller, below.
	BudgetAddedP99 = time.Millisecond
	// BudgetJSONConfigCPU: the binary's CPU per send with config_json in every request over
	// that with the default config, minus one, at most.
	BudgetJSONConfigCPU = 0.05
	// BudgetStructConfigCPU: the same with a config Struct in every request, at most.
	BudgetStructConfigCPU = 0.15
	// BudgetBridgeCPU: the binary's CPU per send through the Logto bridge (h) over that of
	// SendMessage over gRPC (c), both with the default config, minus one, at most.
	BudgetBridgeCPU = 0.20
	// BudgetIdleRSS: the binary's RSS when idle, below (bytes).
	BudgetIdleRSS = 30 << 20
	// BudgetLoadRSS: the binary's peak RSS at 64 callers, below (bytes).
	BudgetLoadRSS = 60 << 20
)

// find returns the cell of round, p, mode and callers, or nil.
func (r *Report) find(round int, p Path, mode ConfigMode, callers int) *Cell {
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Round == round && c.Path == p && c.Config == mode && c.Callers == callers {
			return c
		}
	}
	return nil
}

// rounds returns the cells of p, mode and callers, one per round that has it.
func (r *Report) rounds(p Path, mode ConfigMode, callers int) []*Cell {
	var cs []*Cell
	for round := range r.Options.Rounds {
		if c := r.find(round, p, mode, callers); c != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

// compare returns f(x, y) for every round that has both x, the cell of (xp, xm), and y, the
// cell of (yp, ym), at callers, and for which f gives a value: every comparison is between
// cells of one round, measured under the same conditions.
func (r *Report) compare(callers int, xp Path, xm ConfigMode, yp Path, ym ConfigMode, f func(x, y *Cell) (float64, bool)) []float64 {
	var out []float64
	for round := range r.Options.Rounds {
		x, y := r.find(round, xp, xm, callers), r.find(round, yp, ym, callers)
		if x == nil || y == nil {
			continue
		}
		if v, ok := f(x, y); ok {
			out = append(out, v)
		}
	}
	return out
}

// cpuOverDirect is y's binary CPU per send over x's generator CPU per send: what the binary
// spends on a send through gRPC against what twilio-go spends on one.
func cpuOverDirect(x, y *Cell) (float64, bool) {
	b := x.perSend(x.GenCPU)
	return float64(y.perSend(y.BinCPU)) / float64(b), b > 0
}

// cpuOverDefault is y's binary CPU per send over x's, minus one: what a per-request config, or
// the bridge, adds to a send with the default config over gRPC.
func cpuOverDefault(x, y *Cell) (float64, bool) {
	b := x.perSend(x.BinCPU)
	return float64(y.perSend(y.BinCPU))/float64(b) - 1, b > 0
}

// addedP99 is y's p99 latency minus x's, in nanoseconds.
func addedP99(x, y *Cell) (float64, bool) { return float64(y.P99 - x.P99), true }

// addedP50 is y's median latency minus x's, in nanoseconds.
func addedP50(x, y *Cell) (float64, bool) { return float64(y.P50 - x.P50), true }

// median returns the median of xs (the mean of the two middle values for an even count), or 0.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianOf returns the median over cs of f.
func medianOf(cs []*Cell, f func(c *Cell) float64) float64 {
	var xs []float64
	for _, c := range cs {
		xs = append(xs, f(c))
	}
	return median(xs)
}

// WriteMarkdown writes the report as a markdown section: the run's facts, one row per cell
// (medians over rounds), and the budget with a verdict per line.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	o := r.Options
	p("## Run of %s\n\n", r.Date.Format("2006-01-02 15:04 MST"))
	if r.Command != "" {
		p("- Command: `%s`\n", r.Command)
	}
	p("- Machine: %s. Load average (1, 5, 15 min) at start %s, at end %s.\n", r.Machine, r.LoadStart, r.LoadEnd)
	binary := "`--log-level info --no-guard`"
	if o.Store != "" {
		binary = fmt.Sprintf("`--log-level info --store %s` with the guard on (a policy no send reaches)", o.Store)
	}
	if o.Keys {
		binary += ", a fresh idempotency key in every (c) send"
	}
	p("- Each cell: %v warm-up, then %v measured, callers in a closed loop; %d round(s) of every cell. "+
		"Twilio emulator in a process of its own, no added latency. Binary: %s, "+
		"exec to serving line %s.\n", o.Warmup, o.Duration, o.Rounds, binary, fmtDur(r.Startup))
	for _, n := range r.Notes {
		p("- %s\n", n)
	}

	p("\n### Cells\n\n")
	p("(a) twilio-go direct, the limit; (c) SendMessage over gRPC through the binary; (h) POST /logto/sms to the binary's " +
		"Logto bridge. Each figure is its median over rounds; " +
		"errors are summed. CPU per send is over successful sends: the generator's from getrusage (twilio-go for (a), " +
		"the gRPC client for (c), the HTTP client for (h)), the binary's from /proc/<pid>/stat (10 ms ticks). Peak RSS is the binary's VmHWM during the cell.\n\n")
	p("| path | config | callers | sends/s | p50 | p99 | generator CPU/send | binary CPU/send | binary peak RSS | errors |\n")
	p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, callers := range o.Concurrency {
		for _, k := range kinds() {
			path, mode := k.path, k.mode
			cs := r.rounds(path, mode, callers)
			if len(cs) == 0 {
				continue
			}
			errs := 0
			for _, c := range cs {
				errs += c.Errors
			}
			dur := func(f func(c *Cell) time.Duration) string {
				return fmtDur(time.Duration(medianOf(cs, func(c *Cell) float64 { return float64(f(c)) })))
			}
			binCPU, rss := "–", "–"
			if path != PathDirect {
				binCPU = dur(func(c *Cell) time.Duration { return c.perSend(c.BinCPU) })
				rss = fmtMiB(int64(medianOf(cs, func(c *Cell) float64 { return float64(c.PeakRSS) })))
			}
			p("| %s | %s | %d | %.0f | %s | %s | %s | %s | %s | %d |\n", path, orDash(string(mode)), callers,
				medianOf(cs, (*Cell).throughput),
				dur(func(c *Cell) time.Duration { return c.P50 }), dur(func(c *Cell) time.Duration { return c.P99 }),
				dur(func(c *Cell) time.Duration { return c.perSend(c.GenCPU) }), binCPU, rss, errs)
		}
	}
	if r.IdlePeakRSS > 0 {
		p("\nBinary idle (after start-up and %v without requests): RSS %s, peak %s.\n", o.IdleWait, fmtMiB(r.IdleRSS), fmtMiB(r.IdlePeakRSS))
	}

	p("\n### Budget, this run\n\nEach figure is the median of comparisons made within each round (every round's listed when there are several).\n\n")
	p("| budget | measured | within |\n|---|---|---|\n")
	for _, t := range r.budget() {
		p("| %s | %s | %s |\n", t.name, orDash(t.measured), t.verdict)
	}
	p("\n")
	return bw.Flush()
}

// budgetLine is one line of the budget table.
type budgetLine struct{ name, measured, verdict string }

// verdict returns the budget table's word for a figure within the budget (ok) or not, or not
// measured at all (!known).
func verdict(ok, known bool) string {
	switch {
	case !known:
		return "not measured"
	case ok:
		return "yes"
	}
	return "**no**"
}

// budget judges the report against the budget.
func (r *Report) budget() []budgetLine {
	var lines []budgetLine
	// Binary CPU per send at 64 callers over (a)'s, in each config mode.
	{
		var parts []string
		ok, known := true, false
		for _, mode := range configModes() {
			rs := r.compare(64, PathDirect, "", PathGRPC, mode, cpuOverDirect)
			if len(rs) == 0 {
				continue
			}
			v := median(rs)
			parts = append(parts, fmt.Sprintf("%s %.2f%s", mode, v, roundsNote(rs, fmtRatio)))
			ok, known = ok && v <= BudgetCPURatio, true
		}
		lines = append(lines, budgetLine{fmt.Sprintf("binary CPU per send at 64 callers ≤ %.1f × (a)'s", BudgetCPURatio), strings.Join(parts, "; "), verdict(ok, known)})
	}
	// p99 added at one caller, in each config mode.
	{
		var parts []string
		ok, known := true, false
		for _, mode := range configModes() {
			ds := r.compare(1, PathDirect, "", PathGRPC, mode, addedP99)
			if len(ds) == 0 {
				continue
			}
			d := median(ds)
			parts = append(parts, fmt.Sprintf("%s %s (p50 %s)%s", mode, fmtNanos(d),
				fmtNanos(median(r.compare(1, PathDirect, "", PathGRPC, mode, addedP50))), roundsNote(ds, fmtNanos)))
			ok, known = ok && time.Duration(d) < BudgetAddedP99, true
		}
		lines = append(lines, budgetLine{"p99 added by (c) over (a) at 1 caller < 1 ms (p50 added in brackets)", strings.Join(parts, "; "), verdict(ok, known)})
	}
	// A per-request config against the default config, at every number of callers.
	// The bridge (h) against gRPC, both with the default config, at every number of callers.
	for _, b := range []struct {
		name   string
		path   Path
		mode   ConfigMode
		budget float64
	}{
		{"(c) " + string(ConfigJSON) + ": binary CPU per send ≤ %+.0f%% over default config", PathGRPC, ConfigJSON, BudgetJSONConfigCPU},
		{"(c) " + string(ConfigStruct) + ": binary CPU per send ≤ %+.0f%% over default config", PathGRPC, ConfigStruct, BudgetStructConfigCPU},
		{"(h) bridge: binary CPU per send ≤ %+.0f%% over (c) default", PathHTTP, ConfigDefault, BudgetBridgeCPU},
	} {
		var parts []string
		ok, known := true, false
		for _, callers := range r.Options.Concurrency {
			cs := r.compare(callers, PathGRPC, ConfigDefault, b.path, b.mode, cpuOverDefault)
			if len(cs) == 0 {
				continue
			}
			v := median(cs)
			parts = append(parts, fmt.Sprintf("%d callers %s%s", callers, fmtPercent(v), roundsNote(cs, fmtPercent)))
			ok, known = ok && v <= b.budget, true
		}
		lines = append(lines, budgetLine{fmt.Sprintf(b.name, 100*b.budget), strings.Join(parts, "; "), verdict(ok, known)})
	}
	// RSS, idle and at 64 callers.
	idle := ""
	if r.IdlePeakRSS > 0 {
		idle = "peak " + fmtMiB(r.IdlePeakRSS)
	}
	lines = append(lines, budgetLine{"binary RSS idle < 30 MiB", idle, verdict(r.IdlePeakRSS < BudgetIdleRSS, r.IdlePeakRSS > 0)})
	var peak int64
	for _, c := range r.Cells {
		if c.Path != PathDirect && c.Callers == 64 {
			peak = max(peak, c.PeakRSS)
		}
	}
	loaded := ""
	if peak > 0 {
		loaded = "peak " + fmtMiB(peak)
	}
	lines = append(lines, budgetLine{"binary RSS at 64 callers < 60 MiB", loaded, verdict(peak < BudgetLoadRSS, peak > 0)})
	return lines
}

// roundsNote returns " (rounds a, b, c)", every round's value formatted by format, or "" for a
// single round.
func roundsNote(vs []float64, format func(float64) string) string {
	if len(vs) < 2 {
		return ""
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = format(v)
	}
	return " (rounds " + strings.Join(parts, ", ") + ")"
}

func fmtRatio(v float64) string   { return fmt.Sprintf("%.2f", v) }
func fmtPercent(v float64) string { return fmt.Sprintf("%+.1f%%", 100*v) }

// fmtNanos formats a signed duration in nanoseconds.
func fmtNanos(v float64) string {
	if v < 0 {
		return "−" + fmtDur(time.Duration(-v))
	}
	return "+" + fmtDur(time.Duration(v))
}

// fmtDur formats d with three significant digits in a unit that suits it.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3g µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3g ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3g s", d.Seconds())
}

// fmtMiB formats bytes in MiB.
func fmtMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// orDash returns s, or "–" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
