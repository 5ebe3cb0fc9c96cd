package smsplugin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLaunchFailures starts binaries that are not plugins: Launch fails, says why, and leaves
// no process behind. (The real binary is launched by cmd/sms-connector's tests.)
func TestLaunchFailures(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	script := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name    string
		path    string
		timeout time.Duration // of the start; 0: testTimeout
		want    string        // a regular expression
	}{
		{"missing binary", filepath.Join(dir, "nope"), 0, "no such file"},
		{"exits at once", script("exits", "echo 'not today' >&2; exit 3"), 0, "plugin exited before we could connect|Failed to read any lines from plugin's stdout"},
		{"prints something else", script("chatty", "echo hello; exec sleep 3600"), 0, "Unrecognized remote plugin message: hello"},
		{"never answers", script("silent", "echo $$ > "+pidFile+"; exec sleep 3600"), 500 * time.Millisecond, "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(pidFile)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = testTimeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			p, err := Launch(ctx, tt.path, WithStderr(&strings.Builder{}))
			if err == nil {
				p.Kill()
				t.Fatal("Launch succeeded")
			}
			if !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if raw, rerr := os.ReadFile(pidFile); rerr == nil {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
				if pid <= 0 || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
					t.Errorf("process %d is still there", pid)
				}
			}
		})
	}
	if _, err := Launch(canceled(), "/bin/true"); !errors.Is(err, context.Canceled) {
		t.Errorf("Launch with a cancelled context: %v", err)
	}
}

// canceled is a context that has ended.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
