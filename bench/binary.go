package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sms-connector/sms-connector/sdk"
)

// Readiness says how StartBinary learns that the binary serves, and where.
type Readiness int

// The readiness signals.
const (
	// ReadyServingLine waits for the sdk.ServingMessage log line on stderr (log level info or
	// debug) and takes the address from it.
	ReadyServingLine Readiness = iota
	// ReadyHandshake waits for the go-plugin handshake line on stdout
	// (CORE|APP|NETWORK|ADDR|grpc...) and takes the address from it.
	ReadyHandshake
	// ReadyHealth dials BinaryOptions.Addr until it accepts and grpc.health.v1 answers
	// SERVING, for a binary that logs nothing at info level.
	ReadyHealth
)

// BinaryOptions configure StartBinary.
type BinaryOptions struct {
	// Path is the binary, e.g. bin/sms-connector.
	Path string
	// Args are its flags.
	Args []string
	// Env is added to this process's environment.
	Env []string
	// Ready is how to tell it serves.
	Ready Readiness
	// Addr is where it listens, for ReadyHealth.
	Addr string
	// Timeout bounds the wait for readiness (default 30s); it guards against a hang and is not
	// a performance check.
	Timeout time.Duration
}

// Binary is a running sms-connector process.
type Binary struct {
	// Addr is where it serves gRPC: "host:port" or "unix:///path".
	Addr string
	// PID is its process id.
	PID int
	// Started is the time just before exec.
	Started time.Time
	// Ready is the time from Started until the readiness signal was read.
	Ready time.Duration
	// HandshakeLine is the first stdout line, with ReadyHandshake.
	HandshakeLine string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // from Wait, once exited is closed
	stderr *tail
	stdout *tail
}

// StartBinary starts opts.Path and returns once it serves.
func StartBinary(ctx context.Context, opts BinaryOptions) (*Binary, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cmd := exec.Command(opts.Path, opts.Args...)
	cmd.Env = append(os.Environ(), opts.Env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	b := &Binary{cmd: cmd, exited: make(chan struct{}), stderr: newTail(16 << 10), stdout: newTail(4 << 10)}
	type signal struct {
		at   time.Duration
		line string
	}
	servingc := make(chan signal, 1)
	handshakec := make(chan signal, 1)

	start := time.Now()
	b.Started = start
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", opts.Path, err)
	}
	b.PID = cmd.Process.Pid

	var readers sync.WaitGroup
	readers.Go(func() {
		// Scan lines until the serving line, then copy the rest in bulk into the tail.
		br := bufio.NewReaderSize(stderr, 64<<10)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				_, _ = b.stderr.Write([]byte(line))
				if isServingLine(line) {
					servingc <- signal{time.Since(start), line}
					break
				}
			}
			if err != nil {
				return
			}
		}
		_, _ = io.Copy(b.stderr, br)
	})
	readers.Go(func() {
		br := bufio.NewReader(stdout)
		line, err := br.ReadString('\n')
		if line != "" {
			_, _ = b.stdout.Write([]byte(line))
			if err == nil {
				handshakec <- signal{time.Since(start), strings.TrimRight(line, "\r\n")}
			}
		}
		_, _ = io.Copy(b.stdout, br)
	})
	go func() {
		readers.Wait()
		b.err = cmd.Wait()
		close(b.exited)
	}()

	fail := func(err error) (*Binary, error) {
		b.Kill()
		return nil, fmt.Errorf("%w\n%s stderr (last lines):\n%s", err, opts.Path, b.stderr.String())
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch opts.Ready {
	case ReadyServingLine:
		select {
		case s := <-servingc:
			addr, err := servingAddress(s.line)
			if err != nil {
				return fail(err)
			}
			b.Addr, b.Ready = addr, s.at
		case <-b.exited:
			return fail(fmt.Errorf("bench: %s exited before serving: %v", opts.Path, b.err))
		case <-wctx.Done():
			return fail(fmt.Errorf("bench: %s did not log %q: %w", opts.Path, sdk.ServingMessage, wctx.Err()))
		}
	case ReadyHandshake:
		select {
		case s := <-handshakec:
			addr, err := HandshakeAddress(s.line)
			if err != nil {
				return fail(err)
			}
			b.Addr, b.Ready, b.HandshakeLine = addr, s.at, s.line
		case <-b.exited:
			return fail(fmt.Errorf("bench: %s exited before its handshake line: %v", opts.Path, b.err))
		case <-wctx.Done():
			return fail(fmt.Errorf("bench: %s printed no handshake line: %w", opts.Path, wctx.Err()))
		}
	case ReadyHealth:
		if err := waitHealthy(wctx, opts.Addr, b.exited); err != nil {
			return fail(fmt.Errorf("bench: %s: %w", opts.Path, err))
		}
		b.Addr, b.Ready = opts.Addr, time.Since(start)
	default:
		return fail(fmt.Errorf("bench: unknown readiness %d", opts.Ready))
	}
	return b, nil
}

// isServingLine reports whether line is the sdk.ServingMessage log line.
func isServingLine(line string) bool {
	if !strings.Contains(line, sdk.ServingMessage) {
		return false
	}
	var e struct {
		Msg string `json:"msg"`
	}
	return json.Unmarshal([]byte(line), &e) == nil && e.Msg == sdk.ServingMessage
}

// servingAddress returns the address of the sdk.ServingMessage log line.
func servingAddress(line string) (string, error) {
	var e struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(line), &e); err != nil || e.Address == "" {
		return "", fmt.Errorf("bench: no address in the serving line %q", line)
	}
	return e.Address, nil
}

// HandshakeAddress returns the gRPC address of a go-plugin handshake line
// CORE-PROTOCOL|APP-PROTOCOL|NETWORK|ADDR|PROTOCOL[|CERT]: "unix:///path" or "host:port".
func HandshakeAddress(line string) (string, error) {
	f := strings.Split(line, "|")
	if len(f) < 5 || f[4] != "grpc" {
		return "", fmt.Errorf("bench: %q is not a gRPC plugin handshake line", line)
	}
	if len(f) > 5 && f[5] != "" {
		return "", errors.New("bench: the plugin asks for AutoMTLS, which the harness does not speak")
	}
	switch f[2] {
	case "unix":
		return "unix://" + f[3], nil
	case "tcp":
		return f[3], nil
	}
	return "", fmt.Errorf("bench: handshake line %q: unknown network %q", line, f[2])
}

// waitHealthy dials addr until grpc.health.v1 answers SERVING, the process exits or ctx ends.
func waitHealthy(ctx context.Context, addr string, exited <-chan struct{}) error {
	network, dialAddr := "tcp", addr
	if isUnix(addr) {
		network, dialAddr = "unix", strings.TrimPrefix(strings.TrimPrefix(addr, "unix:"), "//")
	}
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, dialAddr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			return errors.New("exited before serving")
		case <-ctx.Done():
			return fmt.Errorf("not listening on %s: %w", addr, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	conn, err := DialGRPC(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before serving")
		case <-ctx.Done():
			return fmt.Errorf("health check on %s: %v (%w)", addr, err, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Logs returns the last lines the binary wrote to stderr (and stdout).
func (b *Binary) Logs() string {
	s := b.stderr.String()
	if o := b.stdout.String(); o != "" {
		s += "\n(stdout)\n" + o
	}
	return s
}

// Exited is closed when the process has exited.
func (b *Binary) Exited() <-chan struct{} { return b.exited }

// Stop sends SIGTERM, waits up to grace for the process to exit and kills it after that. It
// returns the process's exit error, if any.
func (b *Binary) Stop(grace time.Duration) error {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
		return b.err
	case <-time.After(grace):
		b.Kill()
		return fmt.Errorf("bench: %s did not stop within %v of SIGTERM; killed", b.cmd.Path, grace)
	}
}

// Kill kills the process and waits for it.
func (b *Binary) Kill() {
	_ = b.cmd.Process.Kill()
	<-b.exited
}

// tail keeps the last bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

// newTail returns a tail that keeps max bytes.
func newTail(max int) *tail { return &tail{max: max} }

// Write appends p, dropping what is older than the last max bytes.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max { // trim in bulk: amortised, one copy per max bytes written
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) > t.max {
		return string(t.buf[len(t.buf)-t.max:])
	}
	return string(t.buf)
}
