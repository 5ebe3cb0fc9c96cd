package bench

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// The budget of issue 9, checked against a report by WriteMarkdown. Each is a ceiling to stay
// under, not a score: once a figure is within it, the simpler code wins.
const (
	// BudgetCPURatio: the binary's CPU per send at 64 callers over the CPU per send of
	// twilio-go called directly (a), at most.
	BudgetCPURatio = 1.6
	// BudgetAddedP99: (c) p99 latency minus (a)'s at one caller, below.
	BudgetAddedP99 = time.Millisecond
	// BudgetJSONConfigCPU: CPU per send added by a per-request config_json over the server's
	// default config, at most.
	BudgetJSONConfigCPU = 0.05
	// BudgetStructConfigCPU: the same for a per-request Struct config, at most.
	BudgetStructConfigCPU = 0.15
	// BudgetIdleRSS: the binary's RSS when idle, below (bytes).
	BudgetIdleRSS = 30 << 20
	// BudgetLoadRSS: the binary's peak RSS at 64 callers, below (bytes).
	BudgetLoadRSS = 60 << 20
)

// cellsFor returns the report's cells for p, mode and conc, one per round, in round order.
func (r *Report) cellsFor(p Path, mode ConfigMode, conc int) []*Cell {
	var cs []*Cell
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Path == p && c.Config == mode && c.Concurrency == conc {
			cs = append(cs, c)
		}
	}
	return cs
}

// cell returns the report's cell for p, mode and conc, or nil; with several rounds, the
// round of median throughput (the lower of the two middle ones for an even count), whose
// figures the tables show.
func (r *Report) cell(p Path, mode ConfigMode, conc int) *Cell {
	cs := r.cellsFor(p, mode, conc)
	if len(cs) == 0 {
		return nil
	}
	slices.SortStableFunc(cs, func(a, b *Cell) int {
		return cmp.Compare(a.Result.Throughput(), b.Result.Throughput())
	})
	return cs[(len(cs)-1)/2]
}

// perRound returns f of the cells (p, pm) and (q, qm) at conc of each round that has both and
// for which f reports a value: a comparison between cells of the same round, taken under the
// same conditions.
func (r *Report) perRound(conc int, p Path, pm ConfigMode, q Path, qm ConfigMode, f func(x, y *Cell) (float64, bool)) []float64 {
	var out []float64
	for _, x := range r.cellsFor(p, pm, conc) {
		for _, y := range r.cellsFor(q, qm, conc) {
			if y.Round != x.Round {
				continue
			}
			if v, ok := f(x, y); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// throughputRatio is y's throughput over x's.
func throughputRatio(x, y *Cell) (float64, bool) {
	if x.Result.Throughput() == 0 {
		return 0, false
	}
	return y.Result.Throughput() / x.Result.Throughput(), true
}

// addedP99 is y's p99 latency minus x's, in nanoseconds.
func addedP99(x, y *Cell) (float64, bool) {
	return float64(y.Result.Latency.P99 - x.Result.Latency.P99), true
}

// addedP50 is y's median latency minus x's, in nanoseconds.
func addedP50(x, y *Cell) (float64, bool) {
	return float64(y.Result.Latency.P50 - x.Result.Latency.P50), true
}

// median returns the median of xs (the mean of the two middle values for an even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// roundsNote returns " (rounds a, b, c)" listing per-round values formatted by format, or ""
// for a single round.
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
func fmtNanos(v float64) string   { return fmtSignedDur(time.Duration(v)) }
func fmtPercent(v float64) string { return fmt.Sprintf("%+.1f%%", 100*v) }

// WriteMarkdown writes the report as a markdown section: the run's facts, the throughput and
// latency table with ratios to (a), the cost-per-send table, memory, start-up and the targets.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	m := r.Machine
	p("## Run of %s\n\n", r.Date.Format("2006-01-02 15:04 MST"))
	if r.Command != "" {
		p("- Command: `%s`\n", r.Command)
	}
	p("- Machine: %d CPUs (%s), %.1f GiB RAM, %s/%s, GOMAXPROCS %d; load command %s", m.CPUs, orDash(m.CPUModel),
		float64(m.MemTotal)/(1<<30), m.OS, m.Arch, m.GOMAXPROCS, m.GoVersion)
	if r.BinaryGo != "" {
		p(", binary built with %s", r.BinaryGo)
	}
	p("\n- Load average (1, 5, 15 min) at start: %s; at end: %s\n", orDash(r.LoadStart), orDash(r.LoadEnd))
	o := r.Options
	where := "in a separate process"
	if o.Emulator != nil && o.Emulator.PID == 0 {
		where = "inside the load generator"
	}
	p("- Each cell: %v warm-up, then %v measured; closed loop (each caller sends again as soon as its send returns). "+
		"Twilio emulator %s, no added latency. Per-request configs rotate over %d tenant(s). Binary log level %s. Rounds of the whole matrix: %d.\n",
		o.Warmup, o.Duration, where, max(o.Tenants, 1), o.ServerLogLevel, max(o.Rounds, 1))
	for _, n := range r.Notes {
		p("- %s\n", n)
	}

	concs := r.concurrencies()
	p("\n### Throughput and latency\n\n")
	p("(a) twilio-go direct, the limit; (b) the Go connector in process; (c) SendMessage over gRPC through the binary. " +
		"\"× (a)\" is throughput over (a)'s at the same concurrency; \"p99 − (a)\" the p99 latency added to (a)'s.")
	if o.Rounds > 1 {
		p(" The matrix ran %d times (rounds). Each row shows the round of median throughput; \"× (a)\" and \"p99 − (a)\" "+
			"are the medians of the per-round comparisons (each between cells of one round); the targets below list every round's.", o.Rounds)
	}
	p("\n\n")
	p("| path | config | callers | sends/s | × (a) | p50 | p90 | p99 | p99 − (a) | errors |\n")
	p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, conc := range concs {
		for _, c := range r.cellsAt(conc) {
			res := c.Result
			ratio, added := "", ""
			if c.Path != PathDirect {
				if rs := r.perRound(conc, PathDirect, "", c.Path, c.Config, throughputRatio); len(rs) > 0 {
					ratio = fmtRatio(median(rs))
				}
				if ds := r.perRound(conc, PathDirect, "", c.Path, c.Config, addedP99); len(ds) > 0 {
					added = fmtNanos(median(ds))
				}
			}
			p("| (%s) %s | %s | %d | %.0f | %s | %s | %s | %s | %s | %d |\n",
				c.Path.Letter(), c.Path, orDash(string(c.Config)), conc, res.Throughput(), orDash(ratio),
				fmtDur(res.Latency.P50), fmtDur(res.Latency.P90), fmtDur(res.Latency.P99), orDash(added), res.Errors)
		}
	}

	p("\n### Cost per send\n\n")
	p("CPU time per successful send over the measured window, from getrusage (generator) and /proc/<pid>/stat " +
		"(binary, emulator; 10 ms ticks). The generator runs (a) and (b) itself and is the gRPC client of (c). " +
		"Allocations are the generator's heap allocations (runtime.MemStats.Mallocs); the binary's own allocations " +
		"cannot be read from outside the process (see BenchmarkGRPCSend for client + server). " +
		"Peak RSS is the binary's VmHWM during the cell.\n\n")
	p("\"CPU × (a)\" is the CPU per send of the process that does the sending, over (a)'s generator: the generator's for (b), the binary's for (c).\n\n")
	p("| path | config | callers | generator CPU/send | binary CPU/send | CPU × (a) | emulator CPU/send | generator allocs/send | binary peak RSS |\n")
	p("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, conc := range concs {
		base := r.cell(PathDirect, "", conc)
		for _, c := range r.cellsAt(conc) {
			cpuRatio := ""
			if base != nil && c.Path != PathDirect {
				own := c.PerSend(c.GenCPU)
				if c.Path == PathGRPC {
					own = c.PerSend(c.ServerCPU)
				}
				if b := base.PerSend(base.GenCPU); b > 0 {
					cpuRatio = fmt.Sprintf("%.2f", float64(own)/float64(b))
				}
			}
			srvCPU, rss := "", ""
			if c.Path == PathGRPC {
				srvCPU = fmtDur(c.PerSend(c.ServerCPU))
				if c.ServerMem != nil {
					rss = fmtMiB(c.ServerMem.PeakRSS)
				}
			}
			emu := ""
			if o.Emulator != nil && o.Emulator.PID != 0 {
				emu = fmtDur(c.PerSend(c.EmulatorCPU))
			}
			allocs := 0.0
			if c.Result.Sends > 0 {
				allocs = float64(c.GenAllocs) / float64(c.Result.Sends)
			}
			p("| (%s) %s | %s | %d | %s | %s | %s | %s | %.0f | %s |\n",
				c.Path.Letter(), c.Path, orDash(string(c.Config)), c.Concurrency,
				fmtDur(c.PerSend(c.GenCPU)), orDash(srvCPU), orDash(cpuRatio), orDash(emu), allocs, orDash(rss))
		}
	}

	if r.IdleMem != nil {
		p("\nBinary idle (after start-up and %v without requests): RSS %s, peak RSS %s.\n",
			o.IdleWait, fmtMiB(r.IdleMem.RSS), fmtMiB(r.IdleMem.PeakRSS))
	}

	if s := r.Startup; s != nil {
		p("\n### Start-up\n\n")
		p("From just before exec, one process at a time. The first SendMessage is sent as soon as the readiness line is read.\n\n")
		p("| measure | runs | median | p90 | min | max |\n|---|--:|--:|--:|--:|--:|\n")
		row := func(name string, ds []time.Duration) {
			if len(ds) == 0 {
				p("| %s | 0 | – | – | – | – |\n", name)
				return
			}
			q := quantiles(ds)
			p("| %s | %d | %s | %s | %s | %s |\n", name, len(ds), fmtDur(q.P50), fmtDur(q.P90), fmtDur(q.Min), fmtDur(q.Max))
		}
		row("exec → \"sms-connector serving\" log line", s.Serving)
		row("exec → first SendMessage answered (standalone, default config)", s.FirstRPC)
		row("exec → plugin handshake line on stdout", s.Handshake)
		row("exec → first SendMessage answered (plugin, per-request config)", s.PluginFirstRPC)
	}

	p("\n### Budget, this run\n\n| budget | measured | within |\n|---|---|---|\n")
	for _, t := range r.targets() {
		p("| %s | %s | %s |\n", t.name, t.measured, t.met)
	}
	p("\n")
	return bw.Flush()
}

// target is one line of the budget table.
type target struct{ name, measured, met string }

// serverCPURatio is y's binary CPU per send over x's generator CPU per send: what the binary
// spends on a send through gRPC against what twilio-go direct spends on one.
func serverCPURatio(x, y *Cell) (float64, bool) {
	b := x.PerSend(x.GenCPU)
	return float64(y.PerSend(y.ServerCPU)) / float64(b), b > 0
}

// addedServerCPU is y's binary CPU per send over x's, minus one.
func addedServerCPU(x, y *Cell) (float64, bool) {
	b := x.PerSend(x.ServerCPU)
	return float64(y.PerSend(y.ServerCPU))/float64(b) - 1, b > 0
}

// targets checks the report against issue 9's budget.
func (r *Report) targets() []target {
	var ts []target
	verdict := func(ok, known bool) string {
		switch {
		case !known:
			return "not measured"
		case ok:
			return "yes"
		}
		return "**no**"
	}
	// Binary CPU per send at 64 callers over (a)'s, for each config mode.
	{
		var parts []string
		ok, known := true, false
		for _, mode := range r.Options.Configs {
			rs := r.perRound(64, PathDirect, "", PathGRPC, mode, serverCPURatio)
			if len(rs) == 0 {
				continue
			}
			ratio := median(rs)
			parts = append(parts, fmt.Sprintf("%s config %.2f%s", mode, ratio, roundsNote(rs, fmtRatio)))
			ok, known = ok && ratio <= BudgetCPURatio, true
		}
		ts = append(ts, target{fmt.Sprintf("binary CPU per send at 64 callers ≤ %.1f × (a)'s (median of rounds)", BudgetCPURatio), orDash(strings.Join(parts, "; ")), verdict(ok, known)})
	}
	// Added p99 at one caller.
	{
		var parts []string
		ok, known := true, false
		for _, mode := range r.Options.Configs {
			ds := r.perRound(1, PathDirect, "", PathGRPC, mode, addedP99)
			if len(ds) == 0 {
				continue
			}
			d := median(ds)
			parts = append(parts, fmt.Sprintf("%s config %s (p50 %s)%s", mode, fmtNanos(d),
				fmtNanos(median(r.perRound(1, PathDirect, "", PathGRPC, mode, addedP50))), roundsNote(ds, fmtNanos)))
			ok, known = ok && time.Duration(d) < BudgetAddedP99, true
		}
		ts = append(ts, target{"p99 added by (c) over (a) at 1 caller < 1 ms (p50 added in brackets; median of rounds)", orDash(strings.Join(parts, "; ")), verdict(ok, known)})
	}
	// Per-request config: the binary's CPU per send over the default config's.
	for _, b := range []struct {
		mode   ConfigMode
		budget float64
	}{{ConfigPerRequestJSON, BudgetJSONConfigCPU}, {ConfigPerRequest, BudgetStructConfigCPU}} {
		if !slices.Contains(r.Options.Configs, b.mode) {
			continue // not asked for
		}
		var parts []string
		ok, known := true, false
		for _, conc := range r.concurrencies() {
			cs := r.perRound(conc, PathGRPC, ConfigDefault, PathGRPC, b.mode, addedServerCPU)
			if len(cs) == 0 {
				continue
			}
			c := median(cs)
			parts = append(parts, fmt.Sprintf("%d callers %+.1f%%%s", conc, 100*c, roundsNote(cs, fmtPercent)))
			ok, known = ok && c <= b.budget, true
		}
		ts = append(ts, target{fmt.Sprintf("(c) %s config: binary CPU per send ≤ %+.0f%% over default config (median of rounds)", b.mode, 100*b.budget), orDash(strings.Join(parts, "; ")), verdict(ok, known)})
	}
	// RSS.
	if r.IdleMem != nil {
		ts = append(ts, target{"binary RSS idle < 30 MiB", "peak " + fmtMiB(r.IdleMem.PeakRSS), verdict(r.IdleMem.PeakRSS < BudgetIdleRSS, true)})
	} else {
		ts = append(ts, target{"binary RSS idle < 30 MiB", "–", verdict(false, false)})
	}
	var peak int64
	for _, c := range r.Cells {
		if c.Path == PathGRPC && c.Concurrency == 64 && c.ServerMem != nil {
			peak = max(peak, c.ServerMem.PeakRSS)
		}
	}
	if peak > 0 {
		ts = append(ts, target{"binary RSS at 64 callers < 60 MiB", "peak " + fmtMiB(peak), verdict(peak < BudgetLoadRSS, true)})
	} else {
		ts = append(ts, target{"binary RSS at 64 callers < 60 MiB", "–", verdict(false, false)})
	}
	return ts
}

// concurrencies returns the concurrencies of the report's cells, in run order.
func (r *Report) concurrencies() []int {
	var cs []int
	for _, c := range r.Cells {
		if !slices.Contains(cs, c.Concurrency) {
			cs = append(cs, c.Concurrency)
		}
	}
	return cs
}

// cellsAt returns the cells at conc, (a) first, then (b) and (c), default config first; with
// several rounds, each path and config's round of median throughput (see cell).
func (r *Report) cellsAt(conc int) []*Cell {
	var cs []*Cell
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Concurrency == conc && c.Round == 0 {
			cs = append(cs, r.cell(c.Path, c.Config, conc))
		}
	}
	slices.SortStableFunc(cs, func(a, b *Cell) int {
		if c := strings.Compare(a.Path.Letter(), b.Path.Letter()); c != 0 {
			return c
		}
		return strings.Compare(string(a.Config), string(b.Config)) // "default" < "per-request"
	})
	return cs
}

// quantileSet is a sample's order statistics.
type quantileSet struct{ Min, P50, P90, Max time.Duration }

// quantiles returns the nearest-rank median and p90 and the extremes of ds (not modified).
func quantiles(ds []time.Duration) quantileSet {
	s := slices.Clone(ds)
	l := Summarize(s)
	return quantileSet{Min: s[0], P50: l.P50, P90: l.P90, Max: l.Max}
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

// fmtSignedDur is fmtDur with a sign.
func fmtSignedDur(d time.Duration) string {
	if d < 0 {
		return "−" + fmtDur(-d)
	}
	return "+" + fmtDur(d)
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
