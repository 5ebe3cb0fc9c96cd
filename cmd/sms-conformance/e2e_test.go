package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
)

// These tests build bin/sms-connector and sms-conformance, serve the former and check it with
// the latter, as an operator would: the acceptance of the black-box conformance command.

// conform runs the sms-conformance binary with args and returns its exit code and stdout.
func conform(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), testbin.Build(t, "./cmd/sms-conformance"), args...)
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
			addr := testbin.Start(t, testbin.Build(t, "./cmd/sms-connector"), tc.args...).Addr
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
