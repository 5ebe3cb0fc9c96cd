package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sms-connector/sms-connector/conformance"
	"github.com/sms-connector/sms-connector/connector/console"
	"github.com/sms-connector/sms-connector/server"
)

// serveConsole serves the console connector (writing into a buffer) with its default
// configuration, in process, and returns the address.
func serveConsole(t *testing.T) string {
	t.Helper()
	srv, err := server.New(server.Options{Connector: console.New(console.Options{Writer: &bytes.Buffer{}}), DefaultConfig: console.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		<-served
	})
	return l.Addr().String()
}

// TestRunUsage checks the flags the command refuses, and --help.
func TestRunUsage(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"help", []string{"--help"}, exitPass, "Usage: sms-conformance --addr"},
		{"no addr", nil, exitUsage, "--addr is required"},
		{"argument", []string{"--addr", "127.0.0.1:1", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"unknown flag", []string{"--nope"}, exitUsage, "flag provided but not defined: -nope"},
		{"send-to not E.164", []string{"--addr", "127.0.0.1:1", "--send-to", "0612345678"}, exitUsage, `--send-to "0612345678" is not an E.164 phone number`},
		{"server name without TLS", []string{"--addr", "127.0.0.1:1", "--tls-server-name", "x"}, exitUsage, "--tls-server-name needs TLS"},
		{"missing CA file", []string{"--addr", "127.0.0.1:1", "--tls-ca", filepath.Join(t.TempDir(), "none.pem")}, exitUsage, "--tls-ca: open"},
		{"CA file without PEM", []string{"--addr", "127.0.0.1:1", "--tls-ca", notPEM}, exitUsage, "holds no PEM certificate"},
		{"zero RPC timeout", []string{"--addr", "127.0.0.1:1", "--rpc-timeout", "0s"}, exitUsage, "--rpc-timeout must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr must say %q, got:\n%s", tc.stderr, stderr.String())
			}
			if stdout.Len() > 0 {
				t.Errorf("nothing may be printed on stdout when the check does not run, got:\n%s", stdout.String())
			}
		})
	}
}

// TestRunInProcess runs the command's run against in-process servers: the console connector
// passes (exit 0), the broken server fails (exit 1) with lines that say what is wrong.
func TestRunInProcess(t *testing.T) {
	cases := []struct {
		name  string
		addr  func(*testing.T) string
		args  []string
		code  int
		lines []string // lines the report must hold
	}{
		{name: "console with sends", addr: serveConsole, args: []string{"--send-to", "+15005550006"}, code: exitPass,
			lines: []string{"PASS Send/DefaultConfig: ", "conformance: 29 rules: 29 passed, 0 failed, 0 skipped"}},
		{name: "console without sends", addr: serveConsole, code: exitPass,
			lines: []string{"SKIP Send/DefaultConfig: sends a real message, and no phone number was given to send it to"}},
		{name: "console plugin health", addr: serveConsole, args: []string{"--health-service", "plugin"}, code: exitFail,
			lines: []string{`FAIL Health: conformance: grpc.health.v1.Health/Check of the service "plugin" must answer SERVING, got NOT_FOUND`}},
		{name: "broken", addr: serveBroken, args: []string{"--send-to", "+15005550006"}, code: exitFail, lines: brokenFailures},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), append([]string{"--addr", tc.addr(t)}, tc.args...), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			checkReport(t, stdout.String(), tc.lines)
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			}
		})
	}
}

// checkReport checks that out is a report, one line per rule and a summary, holding a line that
// starts with each of want.
func checkReport(t *testing.T, out string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if n := len(conformance.Rules()) + 1; len(lines) != n {
		t.Errorf("the report must have one line per rule and a summary, %d lines; it has %d", n, len(lines))
	}
	for i, rule := range conformance.Rules() {
		if i < len(lines) && !strings.Contains(lines[i], " "+rule+": ") {
			t.Errorf("line %d of the report must be about the rule %s, it is %q", i+1, rule, lines[i])
		}
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, w) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("the report must have a line starting %q", w)
		}
	}
}
