package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests build bin/sms-connector and sms-conformance, serve the former and check it with
// the latter, as an operator would: the acceptance of the black-box conformance command.

// repoRoot is the module root, where the binaries are built from.
var repoRoot = filepath.Join("..", "..")

// guard bounds waits on a child process (startup, shutdown): it turns a hang into a failure,
// and asserts nothing about how fast anything is.
const guard = 60 * time.Second

var (
	buildOnce sync.Once
	binDir    string // removed by TestMain
	buildErr  error
)

// binaries builds cmd/sms-connector and cmd/sms-conformance once, and returns their paths.
func binaries(t *testing.T) (connectorBin, conformanceBin string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "sms-conformance-e2e-")
		if buildErr != nil {
			return
		}
		for _, name := range []string{"sms-connector", "sms-conformance"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), "./cmd/"+name)
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build ./cmd/%s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "sms-connector"), filepath.Join(binDir, "sms-conformance")
}

// childEnv is the environment without SMS_CONNECTOR_* variables, so that the flags decide.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SMS_CONNECTOR_") {
			env = append(env, kv)
		}
	}
	return env
}

// servingAddress returns the address of a JSON log line announcing that the binary serves
// ({"msg": "sms-connector serving", "address": ...}), or "".
func servingAddress(line string) string {
	var entry struct {
		Msg     string `json:"msg"`
		Address string `json:"address"`
	}
	if json.Unmarshal([]byte(line), &entry) != nil || !strings.HasSuffix(entry.Msg, "serving") {
		return ""
	}
	return entry.Address
}

// startConnector runs bin/sms-connector with args, waits for its serving line and returns the
// address it serves on. The process is stopped with SIGTERM when the test ends.
func startConnector(t *testing.T, args ...string) string {
	t.Helper()
	bin, _ := binaries(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		logs bytes.Buffer
	)
	addrc := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if a := servingAddress(sc.Text()); a != "" {
				select {
				case addrc <- a:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	exited := make(chan error, 1)
	go func() {
		<-scanned // Wait closes the pipe: read it to the end first
		exited <- cmd.Wait()
	}()
	showLogs := func() string {
		mu.Lock()
		defer mu.Unlock()
		return logs.String()
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(guard)
		defer timer.Stop()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("sms-connector %s did not stop cleanly on SIGTERM: %v\n%s", strings.Join(args, " "), err, showLogs())
			}
		case <-timer.C:
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("sms-connector %s did not stop on SIGTERM\n%s", strings.Join(args, " "), showLogs())
		}
		if t.Failed() {
			t.Logf("sms-connector %s logs:\n%s", strings.Join(args, " "), showLogs())
		}
	})
	timer := time.NewTimer(guard)
	defer timer.Stop()
	select {
	case addr := <-addrc:
		return addr
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("sms-connector %s exited before serving (%v):\n%s", strings.Join(args, " "), err, showLogs())
	case <-timer.C:
		t.Fatalf("sms-connector %s did not log that it serves:\n%s", strings.Join(args, " "), showLogs())
	}
	return ""
}

// conform runs the sms-conformance binary with args and returns its exit code and stdout.
func conform(t *testing.T, args ...string) (int, string) {
	t.Helper()
	_, bin := binaries(t)
	cmd := exec.CommandContext(t.Context(), bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String()
	case errors.As(err, &exit):
		if stderr.Len() > 0 {
			t.Logf("sms-conformance stderr:\n%s", stderr.String())
		}
		return exit.ExitCode(), stdout.String()
	}
	t.Fatalf("running sms-conformance: %v\n%s", err, stderr.String())
	return 0, ""
}

// and the console connector, and checks each with the built sms-conformance, sends included:
// every rule must pass and the command must exit 0.
func TestBinaryConformance(t *testing.T) {
	sockDir, err := os.MkdirTemp("", "smsc") // short: a unix socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	cases := []struct {
		name string
		args []string
	}{
		{name: "twilio sandbox tcp", args: []string{"--sandbox", "--listen", "127.0.0.1:0"}},
		{name: "twilio sandbox unix", args: []string{"--sandbox", "--listen", "unix://" + filepath.Join(sockDir, "twilio.sock")}},
		{name: "console tcp", args: []string{"--connector", "console", "--listen", "127.0.0.1:0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := startConnector(t, tc.args...)
			code, out := conform(t, "--addr", addr, "--send-to", "+15005550006")
			if code != 0 {
				t.Errorf("sms-conformance against sms-connector %s must exit 0, exited %d", strings.Join(tc.args, " "), code)
			}
			checkReport(t, out, []string{"PASS Send/DefaultConfig: ", "PASS Send/ExpiredDeadline: "})
			if strings.Contains(out, "FAIL ") || strings.Contains(out, "SKIP ") {
				t.Errorf("every rule must pass against sms-connector %s", strings.Join(tc.args, " "))
			}
			if t.Failed() {
				t.Logf("report:\n%s", out)
			}
		})
	}
}

// TestBinaryCatchesBrokenServer checks the built sms-conformance against the broken in-test
// server: it must exit 1 with lines that say what is wrong.
func TestBinaryCatchesBrokenServer(t *testing.T) {
	code, out := conform(t, "--addr", serveBroken(t), "--send-to", "+15005550006")
	if code != exitFail {
		t.Errorf("sms-conformance against a broken server must exit %d, exited %d", exitFail, code)
	}
	checkReport(t, out, brokenFailures)
	if t.Failed() {
		t.Logf("report:\n%s", out)
	}
}
