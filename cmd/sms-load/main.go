// Command sms-load measures what sms-connector costs on top of calling Twilio directly, and
// writes the markdown report of BENCHMARKS.md.
//
// It drives one workload three ways against a Twilio emulator with no added latency (run in a
// child process of its own, so that its CPU time is counted apart): (a) twilio-go called
// directly, the limit; (b) the Go connector in process; (c) SendMessage over gRPC through the
// built binary (bin/sms-connector, a separate process started with --config and
// --twilio-api-url), each at every concurrency, with the server's default configuration and
// with a configuration in every request. It also times the binary's start-up: exec to the
// serving log line, to the go-plugin handshake line (plugin mode, with the magic cookie of
// package smsplugin) and to the first answered SendMessage. See package bench for what each figure means.
//
//	go build -o bin/sms-connector ./cmd/sms-connector
//	go run ./cmd/sms-load -duration 3s > report.md
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sms-connector/sms-connector/bench"
	"github.com/sms-connector/sms-connector/smsplugin"
)

// serveEmulatorFlag makes the command act as the emulator child process.
const serveEmulatorFlag = "-internal-serve-emulator"

func main() {
	if len(os.Args) == 2 && os.Args[1] == serveEmulatorFlag {
		if err := bench.ServeEmulator(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sms-load emulator:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the parsed flags.
type options struct {
	suite        bench.SuiteOptions
	emulator     string
	plugin       bool
	pluginCookie string
	pluginKey    string
	out          string
}

// parseFlags parses args into options.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("sms-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	paths := fs.String("paths", "direct,connector,grpc", "paths to measure: direct (a), connector (b), grpc (c)")
	configs := fs.String("configs", "default,per-request,per-request-json", "configuration modes of (b) and (c): default, per-request (a Struct over gRPC), per-request-json (config_json over gRPC; (c) only)")
	concs := fs.String("concurrency", "1,16,64", "numbers of concurrent callers")
	fs.StringVar(&o.suite.Binary, "binary", "bin/sms-connector", "the sms-connector binary (for grpc and the start-up)")
	fs.DurationVar(&o.suite.Duration, "duration", 3*time.Second, "measured time per cell")
	fs.DurationVar(&o.suite.Warmup, "warmup", 500*time.Millisecond, "warm-up per cell, not measured")
	fs.IntVar(&o.suite.Rounds, "rounds", 1, "times the whole matrix runs; ratios are taken within each round and the report shows their median")
	fs.IntVar(&o.suite.Tenants, "tenants", 1, "distinct configurations per-request sends rotate through")
	fs.StringVar(&o.suite.ServerLogLevel, "server-log-level", "info", "the binary's --log-level (info logs one line per RPC, as deployed by default)")
	fs.DurationVar(&o.suite.IdleWait, "idle", time.Second, "how long the binary idles before its idle RSS is read")
	fs.IntVar(&o.suite.StartupRuns, "startup-runs", 20, "start-up measurements per mode (0: skip)")
	fs.BoolVar(&o.plugin, "plugin", true, "measure the plugin-mode start-up too")
	fs.StringVar(&o.pluginCookie, "plugin-cookie", smsplugin.MagicCookieValue, "the plugin magic cookie's value")
	fs.StringVar(&o.pluginKey, "plugin-cookie-key", smsplugin.MagicCookieKey, "the plugin magic cookie's environment variable")
	fs.StringVar(&o.emulator, "emulator", "process", "where the Twilio emulator runs: process (a child process) or inproc")
	fs.StringVar(&o.out, "out", "", "write the markdown report to this file instead of stdout")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sms-load [flags]\n\nBenchmarks sms-connector against twilio-go called directly and writes a markdown report.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range splitList(*paths) {
		p, err := bench.ParsePath(s)
		if err != nil {
			return nil, fmt.Errorf("-paths: %w", err)
		}
		o.suite.Paths = append(o.suite.Paths, p)
	}
	for _, s := range splitList(*configs) {
		m, err := bench.ParseConfigMode(s)
		if err != nil {
			return nil, fmt.Errorf("-configs: %w", err)
		}
		o.suite.Configs = append(o.suite.Configs, m)
	}
	for _, s := range splitList(*concs) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-concurrency: %q is not a positive number", s)
		}
		o.suite.Concurrency = append(o.suite.Concurrency, n)
	}
	switch {
	case len(o.suite.Paths) == 0 || len(o.suite.Concurrency) == 0:
		return nil, errors.New("-paths and -concurrency must not be empty")
	case len(o.suite.Configs) == 0:
		return nil, errors.New("-configs must not be empty")
	case o.suite.Duration <= 0 || o.suite.Warmup < 0:
		return nil, errors.New("-duration must be positive and -warmup not negative")
	case o.emulator != "process" && o.emulator != "inproc":
		return nil, fmt.Errorf("-emulator %q: want process or inproc", o.emulator)
	}
	if o.plugin {
		// What go-plugin's host sets, besides the cookie.
		o.suite.PluginEnv = []string{o.pluginKey + "=" + o.pluginCookie,
			fmt.Sprintf("%s=%d", smsplugin.EnvProtocolVersions, smsplugin.ProtocolVersion),
			smsplugin.EnvMinPort + "=10000", smsplugin.EnvMaxPort + "=25000"}
	}
	return o, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// run is main without the process; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sms-load: %v\n", err)
		return 2
	}
	if err := measure(ctx, o, args, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "sms-load: %v\n", err)
		return 1
	}
	return 0
}

// measure starts the emulator, runs the suite and writes the report.
func measure(ctx context.Context, o *options, args []string, stdout, stderr io.Writer) error {
	var emu *bench.Emulator
	if o.emulator == "inproc" {
		emu = bench.StartEmulator()
	} else {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command(self, serveEmulatorFlag)
		cmd.Stderr = stderr
		if emu, err = bench.StartEmulatorProcess(cmd); err != nil {
			return err
		}
	}
	defer emu.Close()
	o.suite.Emulator = emu
	o.suite.Logf = func(format string, a ...any) { fmt.Fprintf(stderr, "sms-load: "+format+"\n", a...) }

	rep, err := bench.RunSuite(ctx, o.suite)
	if err != nil {
		return err
	}
	rep.Command = strings.Join(append([]string{filepath.Base(os.Args[0])}, args...), " ")
	w := stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if err := rep.WriteMarkdown(w); err != nil {
		return err
	}
	return emu.Close()
}
