package bench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
	"github.com/sms-connector/sms-connector/smsplugin"
)

// These tests check that the harness runs end to end on tiny settings and that its parts read
// what they claim. They make no assertion about speed: the numbers belong in BENCHMARKS.md.

// TestRunSuite runs the whole matrix, the real binary included, for a few milliseconds per
// cell, and checks that every path sent the workload's message without error and that the
// report has every section.
func TestRunSuite(t *testing.T) {
	bin := testbin.Build(t, "./cmd/sms-connector")
	var mu sync.Mutex
	bodies := map[string]int{}
	emu := StartEmulator(twiliotest.WithOnMessage(func(m twiliotest.Message) {
		mu.Lock()
		bodies[m.To+" "+m.From+" "+m.Body]++
		mu.Unlock()
	}))
	defer emu.Close()

	var logs bytes.Buffer
	var logMu sync.Mutex
	rep, err := RunSuite(context.Background(), SuiteOptions{
		Binary:      bin,
		Emulator:    emu,
		Paths:       []Path{PathDirect, PathConnector, PathGRPC},
		Configs:     []ConfigMode{ConfigDefault, ConfigPerRequest, ConfigPerRequestJSON},
		Concurrency: []int{1, 3},
		Duration:    60 * time.Millisecond,
		Warmup:      10 * time.Millisecond,
		Tenants:     2,
		IdleWait:    10 * time.Millisecond,
		Rounds:      2,
		StartupRuns: 1,
		PluginEnv: []string{smsplugin.MagicCookieKey + "=" + smsplugin.MagicCookieValue,
			smsplugin.EnvProtocolVersions + "=1"},
		Logf: func(format string, args ...any) {
			logMu.Lock()
			defer logMu.Unlock()
			logs.WriteString(strings.TrimSpace(format) + "\n")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Cells), 2*2*(1+2+3); got != want { // rounds × concurrencies × ((a) + (b) + (c))
		t.Fatalf("%d cells, want %d", got, want)
	}
	for _, c := range rep.Cells {
		if c.Result.Sends == 0 || c.Result.Errors != 0 {
			t.Errorf("(%s) %s %s callers=%d: %d sends, %d errors (first: %v)",
				c.Path.Letter(), c.Path, c.Config, c.Concurrency, c.Result.Sends, c.Result.Errors, c.Result.FirstError)
		}
		if c.Path == PathGRPC && c.ServerMem == nil {
			t.Errorf("(c) callers=%d: the binary's memory was not read", c.Concurrency)
		}
	}
	mu.Lock()
	want := To + " " + From + " " + Body
	if len(bodies) != 1 || bodies[want] == 0 {
		t.Errorf("the emulator received %v; want only %q", bodies, want)
	}
	mu.Unlock()
	if rep.IdleMem == nil || rep.IdleMem.PeakRSS == 0 {
		t.Error("no idle RSS")
	}
	if s := rep.Startup; s == nil || len(s.Serving) != 1 || len(s.FirstRPC) != 1 || s.FirstRPC[0] < s.Serving[0] ||
		len(s.Handshake) != 1 || len(s.PluginFirstRPC) != 1 || s.PluginFirstRPC[0] < s.Handshake[0] {
		t.Errorf("start-up %+v: want one run of each mode, the first RPC after the readiness line", s)
	}

	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"### Throughput and latency", "| (a) direct | – | 3 |", "| (c) grpc | per-request | 1 |",
		"### Cost per send", "### Start-up", "### Budget, this run",
		"| exec → plugin handshake line on stdout | 1 |", "(rounds ", "| (c) grpc | per-request-json | 3 |",
		"(c) per-request-json config: binary CPU per send",
	} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("the report lacks %q:\n%s", s, md.String())
		}
	}
}

// TestEmulatorProcess checks the emulator child process: it answers the direct path, its CPU
// time is readable, and Close ends it.
func TestEmulatorProcess(t *testing.T) {
	emu, err := startEmulatorChild()
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTransport()
	defer tr.CloseIdleConnections()
	send, err := NewDirect(emu.URL, tr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Load(context.Background(), LoadOptions{Concurrency: 2, Duration: 30 * time.Millisecond}, send)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sends == 0 || r.Errors != 0 {
		t.Errorf("%d sends, %d errors (first: %v)", r.Sends, r.Errors, r.FirstError)
	}
	if _, err := ProcessCPU(emu.PID); err != nil {
		t.Error(err)
	}
	if err := emu.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.FindProcess(emu.PID); err == nil {
		if _, err := ProcessCPU(emu.PID); err == nil {
			t.Errorf("the emulator process %d is still there after Close", emu.PID)
		}
	}
}

func TestHandshakeAddress(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"1|1|unix|/tmp/plugin123|grpc", "unix:///tmp/plugin123"},
		{"1|1|tcp|127.0.0.1:1234|grpc", "127.0.0.1:1234"},
		{"1|1|unix|/tmp/p|grpc|", "unix:///tmp/p"},
	} {
		if got, err := HandshakeAddress(tc.line); err != nil || got != tc.want {
			t.Errorf("HandshakeAddress(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	for _, line := range []string{"", "1|1|unix|/tmp/p|netrpc", "1|1|udp|x|grpc", "1|1|unix|/tmp/p|grpc|MIIB"} {
		if got, err := HandshakeAddress(line); err == nil {
			t.Errorf("HandshakeAddress(%q) = %q, want an error", line, got)
		}
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := Summarize(ds)
	want := Latency{P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("Summarize(1..100 ms) = %+v, want %+v", got, want)
	}
	if got := Summarize([]time.Duration{7}); got.P50 != 7 || got.P99 != 7 {
		t.Errorf("Summarize of one = %+v", got)
	}
	if got := Summarize(nil); got != (Latency{}) {
		t.Errorf("Summarize(nil) = %+v", got)
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if _, err := ProcessCPU(pid); err != nil {
		t.Error(err)
	}
	m, err := ProcessMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.PeakRSS < m.RSS {
		t.Errorf("memory %+v", m)
	}
	if SelfCPU() <= 0 {
		t.Error("SelfCPU is zero")
	}
	if mc := ReadMachine(); mc.CPUs < 1 || mc.GoVersion == "" {
		t.Errorf("machine %+v", mc)
	}
}

func TestTail(t *testing.T) {
	tl := newTail(8)
	for _, s := range []string{"abc", "defgh", "ijklmnopq", "rs"} {
		_, _ = tl.Write([]byte(s))
	}
	if got := tl.String(); got != "lmnopqrs" {
		t.Errorf("tail = %q, want the last 8 bytes %q", got, "lmnopqrs")
	}
}

// TestReportRounds checks how a report of several rounds judges: every comparison is between
// cells of one round, and the median of the rounds' comparisons decides.
func TestReportRounds(t *testing.T) {
	// cell is a cell of 1,000 sends whose sending process spent cpu per send.
	cell := func(round int, p Path, mode ConfigMode, cpu time.Duration) Cell {
		c := Cell{Path: p, Config: mode, Concurrency: 64, Round: round,
			Result: &LoadResult{Sends: 1000, Elapsed: time.Second, Latency: Latency{P99: time.Millisecond}}}
		if p == PathGRPC {
			c.ServerCPU = 1000 * cpu
		} else {
			c.GenCPU = 1000 * cpu
		}
		return c
	}
	us := time.Microsecond
	tests := []struct {
		name    string
		a, c    []time.Duration // CPU per send of (a)'s generator and (c)'s binary in each round
		want    string
		wantMet bool
	}{
		// Round 2 is a burst of someone else's load that slowed the binary alone: its ratio is
		// high, but the median is round 1's.
		{"median of per-round ratios", []time.Duration{100 * us, 100 * us, 100 * us}, []time.Duration{170 * us, 150 * us, 400 * us}, "default config 1.70 (rounds 1.70, 1.50, 4.00)", false},
		{"within by the median", []time.Duration{100 * us, 100 * us, 100 * us}, []time.Duration{160 * us, 140 * us, 170 * us}, "default config 1.60 (rounds 1.60, 1.40, 1.70)", true},
		{"one round", []time.Duration{200 * us}, []time.Duration{250 * us}, "default config 1.25", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{Options: SuiteOptions{Configs: []ConfigMode{ConfigDefault}, Rounds: len(tt.a)}}
			for i := range tt.a {
				r.Cells = append(r.Cells, cell(i, PathDirect, "", tt.a[i]), cell(i, PathGRPC, ConfigDefault, tt.c[i]))
			}
			got := r.targets()[0]
			if got.measured != tt.want || (got.met == "yes") != tt.wantMet {
				t.Errorf("budget = %q, %s; want %q, within %v", got.measured, got.met, tt.want, tt.wantMet)
			}
		})
	}
}

// TestReportConfigBudget checks the per-request config rows: the binary's CPU per send with a
// per-request config against the default config's, each mode against its own budget.
func TestReportConfigBudget(t *testing.T) {
	cell := func(mode ConfigMode, cpu time.Duration) Cell {
		return Cell{Path: PathGRPC, Config: mode, Concurrency: 64, ServerCPU: 1000 * cpu,
			Result: &LoadResult{Sends: 1000, Elapsed: time.Second}}
	}
	r := &Report{Options: SuiteOptions{Configs: []ConfigMode{ConfigDefault, ConfigPerRequest, ConfigPerRequestJSON}}}
	r.Cells = []Cell{cell(ConfigDefault, 100*time.Microsecond), cell(ConfigPerRequest, 114*time.Microsecond), cell(ConfigPerRequestJSON, 106*time.Microsecond)}
	want := map[ConfigMode]string{ConfigPerRequestJSON: "64 callers +6.0%: **no**", ConfigPerRequest: "64 callers +14.0%: yes"}
	found := 0
	for _, tg := range r.targets() {
		for mode, w := range want {
			if strings.HasPrefix(tg.name, "(c) "+string(mode)+" config:") {
				found++
				if got := tg.measured + ": " + tg.met; got != w {
					t.Errorf("%s: %q, want %q", mode, got, w)
				}
			}
		}
	}
	if found != 2 {
		t.Errorf("%d per-request config rows, want 2", found)
	}
}
