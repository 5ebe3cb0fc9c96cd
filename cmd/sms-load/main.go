// Command sms-load measures sms-connector against the budget of BENCHMARKS.md and writes the
// markdown report: twilio-go called directly (a), SendMessage through the built binary (c) and
// POST /logto/sms to the binary's Logto bridge (h), all against a Twilio emulator with no added
// latency (see package bench).
//
// The emulator runs in a child process (this command, started again with an internal flag):
// in the generator's process its server-side CPU would count as (a)'s and make the binary look
// cheaper against it.
//
//	make build
//	go run ./cmd/sms-load -duration 3s -out report.md
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sms-connector/sms-connector/bench"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// serveEmulatorArg makes the command serve the emulator, as the child process of a run.
const serveEmulatorArg = "-internal-serve-emulator"

func main() {
	if len(os.Args) == 2 && os.Args[1] == serveEmulatorArg {
		serveEmulator(os.Stdin, os.Stdout)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// parseFlags parses args into the options of bench.Run and the report's file ("" for stdout).
func parseFlags(args []string, stderr io.Writer) (opts bench.Options, out string, err error) {
	fs := flag.NewFlagSet("sms-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	concurrency := fs.String("concurrency", "1,64", "numbers of concurrent callers, comma-separated (the budget needs 1 and 64)")
	fs.StringVar(&opts.Binary, "binary", "bin/sms-connector", "the sms-connector binary")
	fs.DurationVar(&opts.Duration, "duration", 3*time.Second, "measured time per cell")
	fs.DurationVar(&opts.Warmup, "warmup", 500*time.Millisecond, "warm-up per cell, not measured")
	fs.IntVar(&opts.Rounds, "rounds", 3, "times every cell runs; the budget is judged on the median of the rounds")
	fs.StringVar(&out, "out", "", "write the markdown report to this file instead of stdout")
	fs.StringVar(&opts.Store, "store", "", `run the binary with the abuse guard on (a policy no send reaches) and this --store: "memory" or a Redis URL (redis://127.0.0.1:6379), to compare the shared store's cost per send; default: --no-guard and no store`)
	fs.BoolVar(&opts.Keys, "keys", false, "give every SendMessage a fresh idempotency key")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sms-load [flags]\n\nMeasures sms-connector against twilio-go called directly and writes a markdown report.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return opts, "", err
	}
	if fs.NArg() > 0 {
		return opts, "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for s := range strings.SplitSeq(*concurrency, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return opts, "", fmt.Errorf("-concurrency: %q is not a positive number", s)
		}
		opts.Concurrency = append(opts.Concurrency, n)
	}
	if opts.Duration <= 0 || opts.Warmup < 0 || opts.Rounds < 1 {
		return opts, "", errors.New("-duration must be positive, -warmup not negative and -rounds at least 1")
	}
	opts.IdleWait = time.Second
	return opts, out, nil
}

// run is main without the process; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, out, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sms-load: %v\n", err)
		return 2
	}
	if err := measure(ctx, opts, out, args, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "sms-load: %v\n", err)
		return 1
	}
	return 0
}

// measure starts the emulator process, runs the benchmark and writes the report.
func measure(ctx context.Context, opts bench.Options, out string, args []string, stdout, stderr io.Writer) error {
	url, stopEmulator, err := startEmulator(stderr)
	if err != nil {
		return err
	}
	defer stopEmulator()
	opts.EmulatorURL = url
	opts.Logf = func(format string, a ...any) { fmt.Fprintf(stderr, "sms-load: "+format+"\n", a...) }
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return err
	}
	rep.Command = strings.Join(append([]string{"sms-load"}, args...), " ")
	w := stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	return rep.WriteMarkdown(w)
}

// startEmulator starts this executable again as the emulator process and returns the
// emulator's URL once the child has written it, and a function that stops the child.
func startEmulator(stderr io.Writer) (url string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, serveEmulatorArg)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start the emulator process: %w", err)
	}
	stop = func() {
		_ = stdin.Close() // the child's end of file: it stops
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	url = strings.TrimSpace(line)
	if !strings.HasPrefix(url, "http://") {
		_ = cmd.Process.Kill()
		stop()
		return "", nil, fmt.Errorf("the emulator process wrote %q, not its URL (%v)", url, err)
	}
	return url, stop, nil
}

// serveEmulator is the body of the emulator process: it serves the Twilio emulator on a
// loopback port, writes its URL as one line to out and serves until in reaches end of file
// (the parent closed it, or died). It forgets the messages it accepted every second, so that
// a long run does not grow its heap.
func serveEmulator(in io.Reader, out io.Writer) {
	emu := twiliotest.NewServer()
	defer emu.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, in)
		close(done)
	}()
	fmt.Fprintln(out, emu.URL)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			emu.Reset()
		}
	}
}
