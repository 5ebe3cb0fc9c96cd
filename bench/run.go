package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/logtobridge"
	"github.com/sms-connector/sms-connector/sdk"
)

// Options configure Run.
type Options struct {
	// Binary is the sms-connector binary of paths (c) and (h).
	Binary string
	// EmulatorURL is the Twilio emulator every path sends to. It should run in a process of its
	// own: in this one, its CPU time would count as (a)'s.
	EmulatorURL string
	// Concurrency lists the numbers of callers; each sends in a closed loop (again as soon as
	// its send returns).
	Concurrency []int
	// Warmup is how long each cell sends before its measured Duration (connections opened,
	// heaps grown); its sends are not counted.
	Warmup, Duration time.Duration
	// Rounds is how many times every cell runs (at least 1). On a shared machine a burst of
	// someone else's load can sink one cell; the budget is judged on the median of comparisons
	// made within each round.
	Rounds int
	// IdleWait is how long the binary idles after start-up before its idle RSS is read.
	IdleWait time.Duration
	// Logf, when set, receives a progress line per cell.
	Logf func(format string, args ...any)
	// Store, when set, runs the binary with the abuse guard on (a policy no send reaches) and
	// --store Store ("memory" or a Redis URL), to compare what the shared store costs per
	// send; empty runs it with --no-guard and no store flag.
	Store string
	// Keys gives every (c) send a fresh idempotency key, so that each one claims a key and
	// stores its answer.
	Keys bool
}

// benchPolicy is the guard's policy with Options.Store: every window counts the workload's
// sends (one recipient, range and client IP), and none fills.
const benchPolicy = `{"recipient":[{"max":1000000,"window":"10s"}],"clientIP":[{"max":1000000,"window":"10s"}],
"prefix":[{"max":1000000,"window":"10s"}],"global":{"max":1000000,"window":"10s"}}`

// binaryArgs returns the binary's flags for opts, writing the files they name into dir.
func binaryArgs(opts Options, dir, configFile string) ([]string, error) {
	args := []string{"--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--config", configFile,
		"--twilio-api-url", opts.EmulatorURL, "--log-level", "info"}
	if opts.Store == "" {
		// --no-guard: the workload sends one recipient thousands of codes a second, which is
		// exactly what the abuse guard refuses.
		return append(args, "--no-guard"), nil
	}
	policy, secret := filepath.Join(dir, "policy.json"), filepath.Join(dir, "guard-secret")
	if err := os.WriteFile(policy, []byte(benchPolicy), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(secret, []byte("sms-load-guard-key-secret-0123456789"), 0o600); err != nil {
		return nil, err
	}
	args = append(args, "--policy", policy, "--store", opts.Store)
	if opts.Store != "memory" {
		args = append(args, "--guard-key-secret-file", secret)
	}
	return args, nil
}

// Cell is one measured cell: a path and config mode at a number of callers, in one round.
type Cell struct {
	Path    Path
	Config  ConfigMode // "" for PathDirect, ConfigDefault for PathHTTP
	Callers int
	Round   int // from 0
	// Sends and Errors count the successful and failed sends of the measured window, Elapsed
	// its length.
	Sends, Errors int
	Elapsed       time.Duration
	// P50 and P99 are the latencies of the successful sends (nearest rank).
	P50, P99 time.Duration
	// GenCPU is the load generator's CPU time over the window (this process: twilio-go for
	// (a), the gRPC client for (c), the HTTP client for (h)); BinCPU the binary's ((c) and (h)).
	GenCPU, BinCPU time.Duration
	// PeakRSS is the binary's peak RSS during the window ((c) and (h); 0 when unread).
	PeakRSS int64
	// FirstError is the window's first failed send, if any.
	FirstError error
}

// perSend divides d by the cell's successful sends.
func (c *Cell) perSend(d time.Duration) time.Duration {
	if c.Sends == 0 {
		return 0
	}
	return d / time.Duration(c.Sends)
}

// throughput is successful sends per second.
func (c *Cell) throughput() float64 {
	if c.Elapsed <= 0 {
		return 0
	}
	return float64(c.Sends) / c.Elapsed.Seconds()
}

// Report is what Run measured, with what it takes to judge and reproduce it.
type Report struct {
	// Command is the command line that produced the report (set by the caller).
	Command string
	Date    time.Time
	Options Options
	// Machine describes the machine; LoadStart and LoadEnd are /proc/loadavg's first three
	// fields at the start and the end of the run.
	Machine, LoadStart, LoadEnd string
	// Startup is the binary's time from exec to its serving log line (one sample).
	Startup time.Duration
	// IdleRSS and IdlePeakRSS are the binary's RSS after start-up and IdleWait without
	// requests, and its peak until then.
	IdleRSS, IdlePeakRSS int64
	Cells                []Cell
	// Notes are what the run could not measure, and why.
	Notes []string
}

// Run starts the binary and measures every cell Options.Rounds times: in each round, for each
// number of callers, (a), then (c) in every config mode, then (h).
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Binary == "" || opts.EmulatorURL == "" || len(opts.Concurrency) == 0 || opts.Duration <= 0 {
		return nil, errors.New("bench: Options need Binary, EmulatorURL, Concurrency and a positive Duration")
	}
	opts.Rounds = max(opts.Rounds, 1)
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rep := &Report{Date: time.Now().UTC(), Options: opts, Machine: machine(), LoadStart: loadAverage()}

	dir, err := os.MkdirTemp("", "sms-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	configFile := filepath.Join(dir, "config.json")
	if err := os.WriteFile(configFile, config(), 0o600); err != nil {
		return nil, err
	}
	args, err := binaryArgs(opts, dir, configFile)
	if err != nil {
		return nil, err
	}
	bin, err := startBinary(ctx, opts.Binary, args...)
	if err != nil {
		return nil, err
	}
	defer bin.stop()
	rep.Startup = bin.startup
	if bin.httpAddr == "" {
		return nil, fmt.Errorf("bench: the binary served without logging %q", sdk.HTTPServingMessage)
	}

	conn, err := grpc.NewClient("passthrough:///"+bin.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("bench: dial the binary: %w", err)
	}
	defer conn.Close()
	client := smsv1.NewSmsConnectorClient(conn)
	select {
	case <-time.After(opts.IdleWait):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if rep.IdleRSS, rep.IdlePeakRSS, err = memory(bin.pid); err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("The idle RSS could not be read: %v.", err))
	}
	// Connect before the first cell, so that no cell pays for the connection.
	if _, err := client.GetMetadata(ctx, &smsv1.GetMetadataRequest{}, grpc.WaitForReady(true)); err != nil {
		return nil, fmt.Errorf("bench: GetMetadata on the binary: %w", err)
	}

	tr := newTransport()
	defer tr.CloseIdleConnections()
	direct, err := directSender(opts.EmulatorURL, tr)
	if err != nil {
		return nil, err
	}
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	bridge := httpSender(hc, "http://"+bin.httpAddr+logtobridge.PathLogtoSMS)
	resetRSS := true
	for round := range opts.Rounds {
		for _, callers := range opts.Concurrency {
			for _, k := range kinds() {
				c := Cell{Path: k.path, Config: k.mode, Callers: callers, Round: round}
				send, pid := direct, 0
				if c.Path != PathDirect {
					send, pid = bridge, bin.pid
					if c.Path == PathGRPC {
						if send, err = grpcSender(client, c.Config, opts.Keys); err != nil {
							return nil, err
						}
					}
					if resetRSS {
						if err := resetPeakRSS(pid); err != nil {
							resetRSS = false
							rep.Notes = append(rep.Notes, fmt.Sprintf("The binary's peak RSS could not be reset per cell (%v): each figure is the peak since start.", err))
						}
					}
				}
				if err := measure(ctx, &c, opts, send, pid); err != nil {
					return nil, err
				}
				logf("round %d %-10s %-11s %3d callers: %6.0f sends/s, p99 %s, %d errors",
					round+1, c.Path, c.Config, callers, c.throughput(), fmtDur(c.P99), c.Errors)
				if c.FirstError != nil {
					logf("  first error: %v", c.FirstError)
				}
				rep.Cells = append(rep.Cells, c)
			}
		}
	}
	select {
	case <-bin.exited:
		return nil, fmt.Errorf("bench: the binary exited during the run: %v", bin.cmd.ProcessState)
	default:
	}
	rep.LoadEnd = loadAverage()
	return rep, nil
}

// measure runs send from c.Callers callers for the warm-up, then for the measured window,
// around which it reads this process's CPU time and, for binPID other than 0, the binary's CPU
// time and peak RSS.
func measure(ctx context.Context, c *Cell, opts Options, send sendFunc, binPID int) error {
	if opts.Warmup > 0 {
		if _, err := load(ctx, c.Callers, opts.Warmup, send); err != nil {
			return err
		}
	}
	gen0, bin0 := selfCPU(), processCPU(binPID)
	r, err := load(ctx, c.Callers, opts.Duration, send)
	c.GenCPU, c.BinCPU = selfCPU()-gen0, processCPU(binPID)-bin0
	if err != nil {
		return err
	}
	if binPID != 0 {
		_, c.PeakRSS, _ = memory(binPID)
	}
	c.Sends, c.Errors, c.FirstError, c.Elapsed = len(r.latencies), r.errors, r.firstErr, r.elapsed
	slices.Sort(r.latencies)
	c.P50, c.P99 = percentile(r.latencies, 0.50), percentile(r.latencies, 0.99)
	return nil
}

// loadResult is what one load saw.
type loadResult struct {
	latencies []time.Duration // of the successful sends
	errors    int
	firstErr  error
	elapsed   time.Duration
}

// load runs send from callers goroutines in a closed loop for d. Failed sends are counted, not
// fatal; it fails only when ctx ends.
func load(ctx context.Context, callers int, d time.Duration, send sendFunc) (*loadResult, error) {
	results := make([]loadResult, callers) // each caller writes only its own
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			r := &results[i]
			for {
				t0 := time.Now()
				if !t0.Before(deadline) || ctx.Err() != nil {
					return
				}
				if err := send(ctx); err != nil {
					r.errors++
					if r.firstErr == nil {
						r.firstErr = err
					}
					continue
				}
				r.latencies = append(r.latencies, time.Since(t0))
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	total := &loadResult{elapsed: time.Since(start)}
	for _, r := range results {
		total.latencies = append(total.latencies, r.latencies...)
		total.errors += r.errors
		if total.firstErr == nil {
			total.firstErr = r.firstErr
		}
	}
	return total, nil
}

// percentile returns the nearest-rank p-quantile (0 < p <= 1) of sorted, or 0 when it is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted))+0.999999) - 1 // ceil(p*n) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// binary is a running sms-connector process.
type binary struct {
	addr string // where it serves gRPC, from its serving log line
	// httpAddr is where it serves the Logto bridge (host:port), from its http serving log line.
	httpAddr string
	pid      int
	startup  time.Duration // from just before exec to the serving log line
	exited   chan struct{} // closed once it has exited
	logs     bytes.Buffer  // its stderr up to the serving line, for failure messages
	cmd      *exec.Cmd
}

// startBinary runs path with args, without this process's SMS_CONNECTOR_* variables so that the
// flags decide, and returns once it has logged sdk.ServingMessage (after sdk.HTTPServingMessage,
// whose address it keeps, when args hold --http-listen). Later log lines (one per RPC) are read
// and dropped.
func startBinary(ctx context.Context, path string, args ...string) (*binary, error) {
	cmd := exec.Command(path, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SMS_CONNECTOR_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", path, err)
	}
	b := &binary{pid: cmd.Process.Pid, exited: make(chan struct{}), cmd: cmd}
	addrc := make(chan string, 1)
	go func() {
		defer close(b.exited)
		br := bufio.NewReader(stderr)
		for {
			line, err := br.ReadBytes('\n')
			var entry struct{ Msg, Address string }
			if json.Unmarshal(line, &entry) == nil {
				if entry.Msg == sdk.HTTPServingMessage {
					b.httpAddr = entry.Address // read by startBinary's caller after addrc
				}
				if entry.Msg == sdk.ServingMessage {
					b.startup = time.Since(start)
					addrc <- entry.Address
					break
				}
			}
			b.logs.Write(line)
			if err != nil {
				break
			}
		}
		_, _ = io.Copy(io.Discard, br)
		_ = cmd.Wait() // Wait closes the pipe: read it to the end first
	}()
	select {
	case b.addr = <-addrc:
		return b, nil
	case <-b.exited:
		return nil, fmt.Errorf("bench: %s exited before serving:\n%s", path, b.logs.String())
	case <-ctx.Done():
		b.stop()
		return nil, ctx.Err()
	}
}

// stop sends the binary SIGTERM and waits for it to exit, killing it after 10 s.
func (b *binary) stop() {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}

// processCPU returns the CPU time (user + system, every thread) process pid has used so far,
// from /proc/<pid>/stat in 10 ms ticks (USER_HZ is 100 on every Linux that Go supports), or 0
// for pid 0 or an unreadable file.
func processCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after it. Then
	// utime and stime, fields 14 and 15, are the 12th and 13th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// selfCPU returns the CPU time (user + system) this process has used so far (getrusage).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memory returns pid's RSS and peak RSS in bytes (VmRSS and VmHWM of /proc/<pid>/status; the
// peak is since start or since the last resetPeakRSS).
func memory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		key, val, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		switch key {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	if peak == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
	}
	return rss, peak, nil
}

// resetPeakRSS resets pid's VmHWM to its current RSS (Linux 4.0 and later; the process's owner
// may), so that memory then reports the peak since.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// machine describes this machine: CPUs, CPU model, GOMAXPROCS and Go version of the generator.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s, GOMAXPROCS %d, generator built with %s",
		runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.Version())
}

// loadAverage returns the first three fields of /proc/loadavg, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
