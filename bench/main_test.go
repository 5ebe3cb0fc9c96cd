package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
	"github.com/sms-connector/sms-connector/server"
)

// The test binary plays one more role, chosen by environment variable, so that benchmarks and
// tests can run the emulator in a process of its own.
const (
	roleEnv      = "SMS_BENCH_TEST_ROLE"
	roleEmulator = "emulator" // ServeEmulator on stdin/stdout
)

var (
	emulatorWhere = flag.String("emulator", "process", "where the benchmarks' Twilio emulator runs: process or inproc")
	serverLog     = flag.String("serverlog", "info", "log level of BenchmarkGRPCSend's in-process server (info, as the binary by default; off: no logger)")
)

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == roleEmulator {
		if err := ServeEmulator(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	shared.mu.Lock()
	if shared.emu != nil {
		_ = shared.emu.Close()
	}
	shared.mu.Unlock()
	testbin.RemoveAndExit(code)
}

// shared is the emulator every benchmark of the run sends to.
var shared struct {
	mu  sync.Mutex
	emu *Emulator
}

// benchEmulator returns the shared emulator, starting it on first use (in a child process
// unless -emulator=inproc, so that -benchmem and -cpuprofile see only the measured path).
func benchEmulator(tb testing.TB) *Emulator {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.emu != nil {
		return shared.emu
	}
	if *emulatorWhere == "inproc" {
		shared.emu = StartEmulator()
		return shared.emu
	}
	e, err := startEmulatorChild()
	if err != nil {
		tb.Fatal(err)
	}
	shared.emu = e
	return e
}

// startEmulatorChild runs the test binary as an emulator process.
func startEmulatorChild() (*Emulator, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+roleEmulator, childGORACE())
	cmd.Stderr = os.Stderr
	return StartEmulatorProcess(cmd)
}

// childGORACE is the GORACE setting of test-binary children: under -race a process sleeps a
// second at exit (atexit_sleep_ms) unless told not to.
func childGORACE() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

// newServerLogger returns a logger like the binary's (JSON, ISO 8601 time) writing to w at
// level, or nil for "off".
func newServerLogger(tb testing.TB, level string, w io.Writer) *zap.Logger {
	if level == "off" {
		return nil
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		tb.Fatalf("-serverlog: %v", err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "time"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl))
}

// startServer serves the Twilio connector, sending to apiURL, over gRPC on a loopback port in
// this process, with the workload's configuration as its default, and returns its address.
func startServer(tb testing.TB, apiURL string, log *zap.Logger) string {
	tb.Helper()
	c, err := NewConnector(apiURL)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(server.Options{Connector: c, DefaultConfig: Config(0), Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil {
			tb.Errorf("serve: %v", err)
		}
		_ = c.Close()
	})
	return l.Addr().String()
}
