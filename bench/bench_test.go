package bench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	"github.com/sms-connector/sms-connector/internal/testutil/redistest"
	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
)

// These tests check that the harness runs end to end on tiny settings and that the report
// judges the budget as it says. They make no assertion about speed: the figures belong in
// BENCHMARKS.md.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(testbin.RemoveAndExit))
}

// TestRun runs every cell, the real binary included, twice for a few milliseconds, and checks
// that every path sent the workload's message without error (the bridge's sends reaching the
// emulator), that the binary's memory was read, and that the report has every part.
func TestRun(t *testing.T) {
	bin := testbin.Build(t, "./cmd/sms-connector")
	var mu sync.Mutex
	received := map[string]int{}
	total, atCellEnd := 0, 0 // messages the emulator received: in all, and when the last cell ended
	var bridgeReceived []int // messages received during each (h) cell, warm-up included
	emu := twiliotest.NewServer(twiliotest.WithOnMessage(func(m twiliotest.Message) {
		mu.Lock()
		received[m.To+" "+m.From+" "+m.Body]++
		total++
		mu.Unlock()
	}))
	defer emu.Close()

	// Run logs a line once each cell has ended, every send of the cell answered.
	logf := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		if !strings.HasPrefix(line, "round ") {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(line, string(PathHTTP)) {
			bridgeReceived = append(bridgeReceived, total-atCellEnd)
		}
		atCellEnd = total
	}
	rep, err := Run(context.Background(), Options{
		Binary: bin, EmulatorURL: emu.URL, Concurrency: []int{1, 2},
		Warmup: 5 * time.Millisecond, Duration: 30 * time.Millisecond, Rounds: 2, Logf: logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Cells), 2*2*(2+len(configModes())); got != want { // rounds × callers × ((a) + (c) per mode + (h))
		t.Fatalf("%d cells, want %d", got, want)
	}
	bridgeCells := 0
	for _, c := range rep.Cells {
		if c.Sends == 0 || c.Errors != 0 {
			t.Errorf("%s %s, %d callers: %d sends, %d errors (first: %v)", c.Path, c.Config, c.Callers, c.Sends, c.Errors, c.FirstError)
		}
		if c.Path != PathDirect && c.PeakRSS == 0 {
			t.Errorf("%s %s, %d callers: the binary's peak RSS was not read", c.Path, c.Config, c.Callers)
		}
		if c.Path != PathHTTP {
			continue
		}
		mu.Lock()
		if bridgeCells >= len(bridgeReceived) || bridgeReceived[bridgeCells] < c.Sends {
			t.Errorf("(h) cell %d (round %d, %d callers): %d sends, the emulator received %v during the (h) cells",
				bridgeCells, c.Round, c.Callers, c.Sends, bridgeReceived)
		}
		mu.Unlock()
		bridgeCells++
	}
	if bridgeCells != 4 {
		t.Errorf("%d (h) cells, want 4", bridgeCells)
	}
	mu.Lock()
	want := To + " " + From + " " + Body
	if len(received) != 1 || received[want] == 0 {
		t.Errorf("the emulator received %v; want only %q", received, want)
	}
	mu.Unlock()
	if rep.IdlePeakRSS == 0 || rep.Startup == 0 {
		t.Errorf("idle peak RSS %d, start-up %v: want both read", rep.IdlePeakRSS, rep.Startup)
	}

	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"### Cells", "| (a) direct | – | 2 |", "| (c) grpc | struct | 1 |", "| (c) grpc | config_json | 2 |", "| (h) http | default | 2 |",
		"| (h) bridge: binary CPU per send ≤ +20% over (c) default | 1 callers ",
		"### Budget, this run", "| p99 added by (c) over (a) at 1 caller", "(rounds ", "| binary RSS idle < 30 MiB | peak ",
		"| binary CPU per send at 64 callers ≤ 1.6 × (a)'s | – | not measured |",
	} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("the report lacks %q:\n%s", s, md.String())
		}
	}
}

func TestPercentile(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i))
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{hundred, 0.50, 50},
		{hundred, 0.99, 99},
		{hundred, 1, 100},
		{[]time.Duration{7}, 0.99, 7},
		{[]time.Duration{1, 2, 3}, 0.50, 2},
		{nil, 0.5, 0},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(tt.sorted), tt.p, got, tt.want)
		}
	}
}

// cpuCell is a cell of 1,000 sends at callers in which the sending process spent cpu per send:
// the generator for (a), the binary for (c) and (h).
func cpuCell(round int, p Path, mode ConfigMode, callers int, cpu time.Duration) Cell {
	c := Cell{Path: p, Config: mode, Callers: callers, Round: round, Sends: 1000, Elapsed: time.Second, P99: time.Millisecond}
	if p != PathDirect {
		c.BinCPU = 1000 * cpu
	} else {
		c.GenCPU = 1000 * cpu
	}
	return c
}

// TestReportRounds checks how a report of several rounds judges: every comparison is between
// cells of one round, and the median of the rounds' comparisons decides.
func TestReportRounds(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name    string
		a, c    []time.Duration // CPU per send of (a)'s generator and (c)'s binary in each round
		want    string
		wantMet bool
	}{
		// Round 3 is a burst of someone else's load that slowed the binary alone: its ratio is
		// high, but the median is round 1's.
		{"median of per-round ratios", []time.Duration{100 * us, 100 * us, 100 * us}, []time.Duration{170 * us, 150 * us, 400 * us}, "default 1.70 (rounds 1.70, 1.50, 4.00)", false},
		{"within by the median", []time.Duration{100 * us, 100 * us, 100 * us}, []time.Duration{160 * us, 140 * us, 170 * us}, "default 1.60 (rounds 1.60, 1.40, 1.70)", true},
		// Each round against its own (a): round 2's machine was slower for both.
		{"within each round", []time.Duration{100 * us, 200 * us}, []time.Duration{150 * us, 300 * us}, "default 1.50 (rounds 1.50, 1.50)", true},
		{"one round", []time.Duration{200 * us}, []time.Duration{250 * us}, "default 1.25", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{Options: Options{Concurrency: []int{64}, Rounds: len(tt.a)}}
			for i := range tt.a {
				r.Cells = append(r.Cells, cpuCell(i, PathDirect, "", 64, tt.a[i]), cpuCell(i, PathGRPC, ConfigDefault, 64, tt.c[i]))
			}
			got := r.budget()[0]
			if got.measured != tt.want || (got.verdict == "yes") != tt.wantMet {
				t.Errorf("budget = %q, %s; want %q, within %v", got.measured, got.verdict, tt.want, tt.wantMet)
			}
		})
	}
}

// TestReportConfigBudget checks the per-request config lines: the binary's CPU per send with a
// per-request config against the default config's, each mode against its own budget, at every
// number of callers.
func TestReportConfigBudget(t *testing.T) {
	us := time.Microsecond
	r := &Report{Options: Options{Concurrency: []int{1, 64}, Rounds: 1}}
	r.Cells = []Cell{
		cpuCell(0, PathGRPC, ConfigDefault, 1, 200*us), cpuCell(0, PathGRPC, ConfigStruct, 1, 220*us), cpuCell(0, PathGRPC, ConfigJSON, 1, 204*us),
		cpuCell(0, PathGRPC, ConfigDefault, 64, 100*us), cpuCell(0, PathGRPC, ConfigStruct, 64, 114*us), cpuCell(0, PathGRPC, ConfigJSON, 64, 106*us),
	}
	want := map[ConfigMode]string{
		ConfigJSON:   "1 callers +2.0%; 64 callers +6.0%: **no**",
		ConfigStruct: "1 callers +10.0%; 64 callers +14.0%: yes",
	}
	found := 0
	for _, line := range r.budget() {
		for mode, w := range want {
			if strings.HasPrefix(line.name, "(c) "+string(mode)+":") {
				found++
				if got := line.measured + ": " + line.verdict; got != w {
					t.Errorf("%s: %q, want %q", mode, got, w)
				}
			}
		}
	}
	if found != len(want) {
		t.Errorf("%d per-request config lines, want %d", found, len(want))
	}
}

// TestReportMemoryBudget checks the RSS lines: idle from the idle peak, under load from the
// highest peak of the binary's cells at 64 callers, and "not measured" when unread.
func TestReportMemoryBudget(t *testing.T) {
	tests := []struct {
		name       string
		idle, at64 int64
		want       [2]string
	}{
		{"within", 20 << 20, 50 << 20, [2]string{"peak 20.0 MiB: yes", "peak 50.0 MiB: yes"}},
		{"over", 30 << 20, 61 << 20, [2]string{"peak 30.0 MiB: **no**", "peak 61.0 MiB: **no**"}},
		{"unread", 0, 0, [2]string{": not measured", ": not measured"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{Options: Options{Concurrency: []int{64}, Rounds: 1}, IdlePeakRSS: tt.idle}
			for _, mode := range configModes() {
				c := cpuCell(0, PathGRPC, mode, 64, time.Microsecond)
				c.PeakRSS = tt.at64 / 2
				if mode == ConfigStruct {
					c.PeakRSS = tt.at64
				}
				r.Cells = append(r.Cells, c)
			}
			lines := r.budget()
			for i, line := range lines[len(lines)-2:] {
				if got := line.measured + ": " + line.verdict; got != tt.want[i] {
					t.Errorf("%s: %q, want %q", line.name, got, tt.want[i])
				}
			}
		})
	}
}

// TestRunWithRedisStore runs the (c) cells with the guard on, the Redis store and a fresh
// idempotency key per send: every send succeeds, and each one left its claim in Redis.
func TestRunWithRedisStore(t *testing.T) {
	bin := testbin.Build(t, "./cmd/sms-connector")
	rs := redistest.Start(t)
	emu := twiliotest.NewServer()
	defer emu.Close()
	rep, err := Run(context.Background(), Options{
		Binary: bin, EmulatorURL: emu.URL, Concurrency: []int{2},
		Warmup: 5 * time.Millisecond, Duration: 30 * time.Millisecond, Rounds: 1,
		Store: rs.URL(), Keys: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	grpcSends := 0
	for _, c := range rep.Cells {
		if c.Sends == 0 || c.Errors != 0 {
			t.Errorf("%s %s: %d sends, %d errors (first: %v)", c.Path, c.Config, c.Sends, c.Errors, c.FirstError)
		}
		if c.Path == PathGRPC {
			grpcSends += c.Sends
		}
	}
	ctx := context.Background()
	idem, err := rs.Client().Keys(ctx, "sms:idem:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	guard, err := rs.Client().Keys(ctx, "{sms-connector:guard}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(idem) < grpcSends || len(guard) == 0 { // warm-up sends add keys too
		t.Errorf("Redis holds %d idempotency keys for %d measured sends and %d guard keys", len(idem), grpcSends, len(guard))
	}
}

// TestReportBridgeBudget checks the bridge's line: the binary's CPU per send through the Logto
// bridge (h) against (c)'s with the default config, per round, the median deciding, at every
// number of callers.
func TestReportBridgeBudget(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name string
		c, h [][2]time.Duration // binary CPU per send at 1 and 64 callers, per round
		want string
	}{
		{"within, at the budget", [][2]time.Duration{{200 * us, 100 * us}}, [][2]time.Duration{{240 * us, 110 * us}},
			"1 callers +20.0%; 64 callers +10.0%: yes"},
		{"over at 64 callers", [][2]time.Duration{{200 * us, 100 * us}}, [][2]time.Duration{{220 * us, 125 * us}},
			"1 callers +10.0%; 64 callers +25.0%: **no**"},
		// Round 2's burst slowed (h) alone; each round against its own (c), the median decides.
		{"median of per-round comparisons", [][2]time.Duration{{200 * us, 100 * us}, {200 * us, 100 * us}, {400 * us, 200 * us}},
			[][2]time.Duration{{220 * us, 110 * us}, {400 * us, 200 * us}, {440 * us, 230 * us}},
			"1 callers +10.0% (rounds +10.0%, +100.0%, +10.0%); 64 callers +15.0% (rounds +10.0%, +100.0%, +15.0%): yes"},
		{"not measured", [][2]time.Duration{{200 * us, 100 * us}}, nil, ": not measured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{Options: Options{Concurrency: []int{1, 64}, Rounds: len(tt.c)}}
			for round, cpu := range tt.c {
				r.Cells = append(r.Cells, cpuCell(round, PathGRPC, ConfigDefault, 1, cpu[0]), cpuCell(round, PathGRPC, ConfigDefault, 64, cpu[1]))
			}
			for round, cpu := range tt.h {
				r.Cells = append(r.Cells, cpuCell(round, PathHTTP, ConfigDefault, 1, cpu[0]), cpuCell(round, PathHTTP, ConfigDefault, 64, cpu[1]))
			}
			var got []string
			for _, line := range r.budget() {
				if line.name == "(h) bridge: binary CPU per send ≤ +20% over (c) default" {
					got = append(got, line.measured+": "+line.verdict)
				}
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("bridge lines %q, want one: %q", got, tt.want)
			}
		})
	}
}
