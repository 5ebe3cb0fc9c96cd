package bench

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/sms-connector/sms-connector/connector/twilio"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// SuiteOptions configure RunSuite.
type SuiteOptions struct {
	// Binary is the sms-connector binary for path (c) and the start-up measurement.
	Binary string
	// Emulator is the Twilio emulator every path sends to. Required.
	Emulator *Emulator
	// Paths, Configs and Concurrency span the matrix. Path (a) has no configuration: it runs
	// once per concurrency and is the denominator of every ratio at that concurrency.
	Paths       []Path
	Configs     []ConfigMode
	Concurrency []int
	// Duration and Warmup are per cell; see LoadOptions.
	Duration, Warmup time.Duration
	// Rounds is how many times the whole matrix runs (default 1). On a shared machine a
	// burst of someone else's load can sink one cell; with several rounds the report shows
	// each round's ratios and takes the median, every ratio being between cells of the same
	// round.
	Rounds int
	// Tenants is how many distinct configurations per-request sends rotate through (default 1).
	Tenants int
	// ServerLogLevel is the binary's --log-level (default info: one log line per RPC, as
	// deployed by default).
	ServerLogLevel string
	// IdleWait is how long the binary idles after start-up before its idle RSS is read
	// (default 1s).
	IdleWait time.Duration
	// StartupRuns is how many times the start-up is measured per mode; 0 skips it.
	StartupRuns int
	// PluginEnv, when set, makes the start-up measurement cover plugin mode; see
	// StartupOptions.PluginEnv.
	PluginEnv []string
	// Logf, when set, receives progress lines.
	Logf func(format string, args ...any)
}

// Cell is one measured point of the matrix.
type Cell struct {
	Path        Path
	Config      ConfigMode // "" for PathDirect
	Concurrency int
	Round       int // 0 for the first round
	Result      *LoadResult
	// CPU time over the measured window: this process (the load generator, with the emulator
	// when it runs in process), the binary (PathGRPC) and the emulator's process (when it has
	// one).
	GenCPU, ServerCPU, EmulatorCPU time.Duration
	// GenAllocs counts this process's heap allocations over the window.
	GenAllocs uint64
	// ServerMem is the binary's RSS at the end of the window and its peak during it
	// (PathGRPC, when readable).
	ServerMem *Memory
}

// PerSend divides d by the cell's successful sends.
func (c *Cell) PerSend(d time.Duration) time.Duration {
	if c.Result.Sends == 0 {
		return 0
	}
	return d / time.Duration(c.Result.Sends)
}

// Report is what RunSuite measured, with what it takes to reproduce and judge it.
type Report struct {
	// Command is the command line that produced the report (set by the caller).
	Command  string
	Date     time.Time
	Machine  Machine
	Options  SuiteOptions
	BinaryGo string // the Go version the binary was built with
	// LoadAverage at the start and the end of the run.
	LoadStart, LoadEnd string
	Cells              []Cell
	// IdleMem is the binary's memory after start-up and IdleWait of idleness.
	IdleMem *Memory
	Startup *StartupResult
	// Notes are things the run could not measure, and why.
	Notes []string
}

// RunSuite runs the matrix and the start-up measurement.
func RunSuite(ctx context.Context, opts SuiteOptions) (*Report, error) {
	if opts.Emulator == nil {
		return nil, errors.New("bench: SuiteOptions.Emulator is required")
	}
	if opts.Tenants < 1 {
		opts.Tenants = 1
	}
	if opts.Rounds < 1 {
		opts.Rounds = 1
	}
	if opts.ServerLogLevel == "" {
		opts.ServerLogLevel = "info"
	}
	if opts.IdleWait <= 0 {
		opts.IdleWait = time.Second
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rep := &Report{Date: time.Now().UTC(), Machine: ReadMachine(), Options: opts, LoadStart: LoadAverage()}
	if opts.Emulator.PID == 0 {
		rep.Notes = append(rep.Notes, "The emulator ran inside the load generator: its CPU time and allocations count as the generator's.")
	}
	needBinary := slices.Contains(opts.Paths, PathGRPC) || opts.StartupRuns > 0
	if needBinary && opts.Binary == "" {
		return nil, errors.New("bench: path grpc and the start-up measurement need SuiteOptions.Binary")
	}

	tmp, err := os.MkdirTemp("", "sms-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	configFile := filepath.Join(tmp, "config.json")
	if err := os.WriteFile(configFile, Config(0), 0o600); err != nil {
		return nil, err
	}

	if needBinary {
		if bi, err := buildinfo.ReadFile(opts.Binary); err == nil {
			rep.BinaryGo = bi.GoVersion
		}
	}
	if opts.StartupRuns > 0 {
		logf("start-up: %d runs per mode", opts.StartupRuns)
		so := StartupOptions{
			Binary: opts.Binary, Standalone: opts.StartupRuns, EmulatorURL: opts.Emulator.URL,
			ConfigFile: configFile, PluginEnv: opts.PluginEnv,
		}
		if opts.PluginEnv != nil {
			so.Plugin = opts.StartupRuns
		}
		rep.Startup, err = MeasureStartup(ctx, so)
		if err != nil {
			return nil, err
		}
		if opts.PluginEnv == nil {
			rep.Notes = append(rep.Notes, "Plugin mode was not measured (no plugin environment given).")
		}
	}

	var bin *Binary
	var client smsv1.SmsConnectorClient
	if slices.Contains(opts.Paths, PathGRPC) {
		bin, err = startLoadBinary(ctx, opts, configFile)
		if err != nil {
			return nil, err
		}
		defer func() { _ = bin.Stop(10 * time.Second) }()
		logf("binary pid %d serving on %s; idling %v", bin.PID, bin.Addr, opts.IdleWait)
		conn, err := DialGRPC(bin.Addr)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		client = smsv1.NewSmsConnectorClient(conn)
		select {
		case <-time.After(opts.IdleWait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if m, err := ProcessMemory(bin.PID); err == nil {
			rep.IdleMem = &m
		} else {
			rep.Notes = append(rep.Notes, fmt.Sprintf("Idle RSS not readable: %v.", err))
		}
		// Connect before the first cell, so that no cell pays for the connection.
		if _, err := client.GetMetadata(ctx, &smsv1.GetMetadataRequest{}, grpc.WaitForReady(true)); err != nil {
			return nil, fmt.Errorf("bench: GetMetadata on the binary: %w\n%s", err, bin.Logs())
		}
	}

	var direct SendFunc
	if slices.Contains(opts.Paths, PathDirect) {
		tr := NewTransport()
		defer tr.CloseIdleConnections()
		if direct, err = NewDirect(opts.Emulator.URL, tr); err != nil {
			return nil, err
		}
	}
	conn, err := NewConnector(opts.Emulator.URL)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	rssResettable := true
	for round := range opts.Rounds {
		if err := runRound(ctx, round, opts, rep, direct, conn, client, bin, &rssResettable); err != nil {
			return nil, err
		}
	}
	if bin != nil {
		select {
		case <-bin.Exited():
			return nil, fmt.Errorf("bench: the binary exited during the run\n%s", bin.Logs())
		default:
		}
	}
	rep.LoadEnd = LoadAverage()
	return rep, nil
}

// runRound measures every cell of the matrix once, appending them to rep.Cells.
func runRound(ctx context.Context, round int, opts SuiteOptions, rep *Report, direct SendFunc, conn *twilio.Connector,
	client smsv1.SmsConnectorClient, bin *Binary, rssResettable *bool) error {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	for _, conc := range opts.Concurrency {
		for _, p := range opts.Paths {
			modes := opts.Configs
			switch p {
			case PathDirect:
				modes = []ConfigMode{""}
			case PathConnector: // handed JSON in any case: per-request-json is per-request
				modes = slices.DeleteFunc(slices.Clone(modes), func(m ConfigMode) bool { return m == ConfigPerRequestJSON })
			}
			for _, mode := range modes {
				var send SendFunc
				switch p {
				case PathDirect:
					send = direct
				case PathConnector:
					send = ConnectorSender(conn, mode, opts.Tenants)
				case PathGRPC:
					send = GRPCSender(client, mode, opts.Tenants)
				default:
					return fmt.Errorf("bench: unknown path %q", p)
				}
				cell := Cell{Path: p, Config: mode, Concurrency: conc, Round: round}
				if p == PathGRPC && *rssResettable {
					if err := ResetPeakRSS(bin.PID); err != nil {
						*rssResettable = false
						rep.Notes = append(rep.Notes, fmt.Sprintf("The binary's peak RSS could not be reset per cell (%v): each figure is the peak since start.", err))
					}
				}
				if err := measureCell(ctx, &cell, opts, send, bin); err != nil {
					return err
				}
				r := cell.Result
				logf("round %d (%s) %-9s %-11s c=%-3d %8.0f sends/s  p50 %v  p99 %v  errors %d",
					round+1, p.Letter(), p, mode, conc, r.Throughput(), r.Latency.P50, r.Latency.P99, r.Errors)
				if r.FirstError != nil {
					logf("    first error: %v", r.FirstError)
				}
				rep.Cells = append(rep.Cells, cell)
			}
		}
	}
	return nil
}

// measureCell runs one cell's load and reads the counters around its measured window.
func measureCell(ctx context.Context, cell *Cell, opts SuiteOptions, send SendFunc, bin *Binary) error {
	var (
		ms0, ms1       runtime.MemStats
		gen0, srv0, e0 time.Duration
	)
	procCPU := func(pid int) time.Duration {
		if pid == 0 {
			return 0
		}
		d, _ := ProcessCPU(pid)
		return d
	}
	binPID := 0
	if cell.Path == PathGRPC && bin != nil {
		binPID = bin.PID
	}
	var err error
	cell.Result, err = Load(ctx, LoadOptions{
		Concurrency: cell.Concurrency, Duration: opts.Duration, Warmup: opts.Warmup,
		OnMeasure: func() {
			runtime.ReadMemStats(&ms0)
			srv0, e0 = procCPU(binPID), procCPU(opts.Emulator.PID)
			gen0 = SelfCPU()
		},
		Done: func() {
			cell.GenCPU = SelfCPU() - gen0
			cell.ServerCPU = procCPU(binPID) - srv0
			cell.EmulatorCPU = procCPU(opts.Emulator.PID) - e0
			runtime.ReadMemStats(&ms1)
			cell.GenAllocs = ms1.Mallocs - ms0.Mallocs
			if binPID != 0 {
				if m, err := ProcessMemory(binPID); err == nil {
					cell.ServerMem = &m
				}
			}
		},
	}, send)
	return err
}

// startLoadBinary starts the binary that path (c) drives: the emulator as Twilio, the
// workload's configuration as the default. The abuse guard is off (--no-guard): the workload
// sends one recipient thousands of codes a second, which is exactly what it refuses.
func startLoadBinary(ctx context.Context, opts SuiteOptions, configFile string) (*Binary, error) {
	args := []string{"--config", configFile, "--twilio-api-url", opts.Emulator.URL, "--log-level", opts.ServerLogLevel, "--no-guard"}
	bo := BinaryOptions{Path: opts.Binary, Env: []string{"SMS_CONNECTOR_LISTEN="}}
	switch opts.ServerLogLevel {
	case "debug", "info":
		bo.Args = append(args, "--listen", "127.0.0.1:0")
		bo.Ready = ReadyServingLine
	default:
		// No serving line at this level: pick a free port and wait for health instead.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		addr := l.Addr().String()
		l.Close()
		bo.Args = append(args, "--listen", addr)
		bo.Ready, bo.Addr = ReadyHealth, addr
	}
	return StartBinary(ctx, bo)
}
