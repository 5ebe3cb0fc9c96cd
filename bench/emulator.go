package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// forgetEvery is how often an emulator under load forgets the messages it recorded, so that a
// long run does not grow its heap (and its GC work) without bound.
const forgetEvery = time.Second

// Emulator is a running Twilio emulator with no added latency, in this process or in a child
// process (where its CPU time can be told apart from the load generator's).
type Emulator struct {
	// URL is the emulator's base URL, for twilio.Options.APIURL or --twilio-api-url.
	URL string
	// PID is the child process's id, or 0 when the emulator runs in this process.
	PID int
	// Server is the emulator when it runs in this process, else nil.
	Server *twiliotest.Server

	closeOnce sync.Once
	close     func() error
	closeErr  error
}

// Close stops the emulator (and waits for its process to exit).
func (e *Emulator) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.close() })
	return e.closeErr
}

// StartEmulator starts an emulator in this process; it forgets recorded messages every second
// (WithOnMessage still sees each).
func StartEmulator(opts ...twiliotest.Option) *Emulator {
	srv := twiliotest.NewServer(opts...)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		forget(srv, stop)
	}()
	return &Emulator{URL: srv.URL, Server: srv, close: func() error {
		close(stop)
		<-done
		srv.Close()
		return nil
	}}
}

// forget resets srv every forgetEvery until stop closes.
func forget(srv *twiliotest.Server, stop <-chan struct{}) {
	t := time.NewTicker(forgetEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			srv.Reset()
		}
	}
}

// ServeEmulator is the body of an emulator child process: it starts an emulator on a loopback
// port, writes its URL as one line to out, serves until in reaches end of file (the parent
// closed the pipe, or died), then stops.
func ServeEmulator(in io.Reader, out io.Writer) error {
	e := StartEmulator()
	defer e.Close()
	if _, err := fmt.Fprintln(out, e.URL); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, in)
	return err
}

// StartEmulatorProcess starts cmd, a process that runs ServeEmulator (for example the load
// command re-executing itself), and returns once it has written its URL. cmd's Stdin and
// Stdout must be unset; Close closes its stdin and waits for it to exit.
func StartEmulatorProcess(cmd *exec.Cmd) (*Emulator, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start emulator: %w", err)
	}
	urlc := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		urlc <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	exited := make(chan struct{})
	var waitErr error
	go func() {
		<-drained // Wait closes stdout: read everything first
		waitErr = cmd.Wait()
		close(exited)
	}()
	kill := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	var url string
	select {
	case url = <-urlc:
	case <-time.After(30 * time.Second):
		_ = stdin.Close()
		kill()
		return nil, errors.New("bench: the emulator process wrote no URL within 30s")
	}
	if !strings.HasPrefix(url, "http://") {
		_ = stdin.Close()
		kill()
		return nil, fmt.Errorf("bench: the emulator process wrote %q, not its URL", url)
	}
	return &Emulator{URL: url, PID: cmd.Process.Pid, close: func() error {
		_ = stdin.Close()
		select {
		case <-exited:
			return waitErr
		case <-time.After(10 * time.Second):
			kill()
			return errors.New("bench: the emulator process did not exit; killed")
		}
	}}, nil
}
