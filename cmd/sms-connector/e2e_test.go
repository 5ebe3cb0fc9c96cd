package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
)

// These tests drive the built binary with the real grpcurl binary, the way an operator would.

// startBinary runs the built binary with args and waits until it serves.
func startBinary(t *testing.T, args ...string) *testbin.Process {
	t.Helper()
	return testbin.Start(t, testbin.Build(t, "./cmd/sms-connector"), args...)
}

// grpcurlRun runs grpcurl against p with args and returns stdout+stderr and the exit code.
func grpcurlRun(t *testing.T, p *testbin.Process, args ...string) (string, int) {
	t.Helper()
	gc := testbin.Build(t, "github.com/fullstorydev/grpcurl/cmd/grpcurl", "-modfile=tools/go.mod")
	target := []string{"-plaintext"}
	if strings.HasPrefix(p.Addr, "unix://") {
		target = append(target, "-unix", strings.TrimPrefix(p.Addr, "unix://"))
	} else {
		target = append(target, p.Addr)
	}
	// grpcurl wants flags, then the address, then the method.
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			flags = append(flags, args[i])
			if (args[i] == "-d" || args[i] == "-H") && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		rest = append(rest, args[i])
	}
	all := append(append(append(flags, target[:1]...), target[1:]...), rest...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gc, all...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("grpcurl %v: %v", all, err)
	}
	return string(out), code
}

func TestBinarySandboxWithGrpcurl(t *testing.T) {
	p := startBinary(t, "--sandbox", "--listen", "127.0.0.1:0", "--log-level", "debug")

	t.Run("list", func(t *testing.T) {
		out, code := grpcurlRun(t, p, "list")
		for _, want := range []string{"connector.sms.v1.SmsConnector", "grpc.health.v1.Health"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Fatalf("list (exit %d) lacks %s:\n%s", code, want, out)
			}
		}
	})
	t.Run("describe", func(t *testing.T) {
		out, code := grpcurlRun(t, p, "describe", "connector.sms.v1.SmsConnector")
		for _, want := range []string{"rpc SendMessage", "rpc ValidateConfig", "rpc GetMetadata"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Fatalf("describe (exit %d) lacks %s:\n%s", code, want, out)
			}
		}
	})
	t.Run("health", func(t *testing.T) {
		out, code := grpcurlRun(t, p, "-d", `{"service":"connector.sms.v1.SmsConnector"}`, "grpc.health.v1.Health/Check")
		if code != 0 || !strings.Contains(out, "SERVING") {
			t.Fatalf("health (exit %d):\n%s", code, out)
		}
	})
	t.Run("SendMessage", func(t *testing.T) {
		// The README's example, exactly.
		out, code := grpcurlRun(t, p, "-d", `{"to":"+15005550006","usage_type":"USAGE_TYPE_SIGN_IN","payload":{"code":"123456"}}`,
			"connector.sms.v1.SmsConnector/SendMessage")
		if code != 0 {
			t.Fatalf("SendMessage exit %d:\n%s", code, out)
		}
		var resp struct {
			MessageID string `json:"messageId"`
			Status    string `json:"status"`
			Segments  int    `json:"segments"`
			Encoding  string `json:"encoding"`
			To        string `json:"to"`
		}
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatalf("response is not JSON: %v\n%s", err, out)
		}
		if !regexp.MustCompile(`^SM[0-9a-f]{32}$`).MatchString(resp.MessageID) || resp.Status != "queued" ||
			resp.Segments != 1 || resp.Encoding != "ENCODING_GSM7" || resp.To != "+15005550006" {
			t.Fatalf("unexpected response: %+v", resp)
		}
		// The emulator's log line shows the rendered body with the code.
		if !regexp.MustCompile(`"sid":"` + resp.MessageID + `".*"body":"\[sandbox\] Your SignIn verification code is 123456\."`).MatchString(p.Logs.String()) {
			t.Fatalf("sandbox log lacks the rendered message %s:\n%s", resp.MessageID, p.Logs.String())
		}
	})
	t.Run("SendMessage localised", func(t *testing.T) {
		out, code := grpcurlRun(t, p, "-d", `{"to":"+1 (500) 555-0006","usage_type":"USAGE_TYPE_SIGN_IN","payload":{"code":"987654","locale":"fr-CA"}}`,
			"connector.sms.v1.SmsConnector/SendMessage")
		if code != 0 || !strings.Contains(p.Logs.String(), "Votre code de connexion est 987654.") {
			t.Fatalf("localised send (exit %d):\n%s\n%s", code, out, p.Logs.String())
		}
	})
	t.Run("ValidateConfig", func(t *testing.T) {
		out, code := grpcurlRun(t, p, "-d", `{"config":{"accountSID":"AC123","from":"+15005550006","templates":[]}}`,
			"connector.sms.v1.SmsConnector/ValidateConfig")
		if code != 0 || strings.Contains(out, `"valid": true`) || !strings.Contains(out, `"field": "accountSID"`) || !strings.Contains(out, `"field": "authToken"`) {
			t.Fatalf("ValidateConfig (exit %d):\n%s", code, out)
		}
	})
	t.Run("GetMetadata", func(t *testing.T) {
		out, code := grpcurlRun(t, p, "connector.sms.v1.SmsConnector/GetMetadata")
		for _, want := range []string{`"id": "twilio-short-message-service"`, `"target": "twilio"`, `"fr":`, `"configSchema"`, `"USAGE_TYPE_BIND_MFA"`} {
			if code != 0 || !strings.Contains(out, want) {
				t.Fatalf("GetMetadata (exit %d) lacks %s:\n%s", code, want, out)
			}
		}
	})
	t.Run("error with details", func(t *testing.T) {
		out, code := grpcurlRun(t, p, "-format-error", "-d", `{"to":"+15005550003","usage_type":"USAGE_TYPE_REGISTER","payload":{"code":"1"}}`,
			"connector.sms.v1.SmsConnector/SendMessage")
		for _, want := range []string{`"code": 9`, `"reason": "COUNTRY_NOT_PERMITTED"`, `"provider_code": "21408"`, `"domain": "sms-connector.dev"`, "google.rpc.ErrorInfo"} {
			if code == 0 || !strings.Contains(out, want) {
				t.Fatalf("error output (exit %d) lacks %s:\n%s", code, want, out)
			}
		}
	})
	t.Run("bad request with field violations", func(t *testing.T) {
		out, code := grpcurlRun(t, p, "-format-error", "-d", `{"to":"nope","payload":{}}`, "connector.sms.v1.SmsConnector/SendMessage")
		for _, want := range []string{`"code": 3`, `"reason": "INVALID_REQUEST"`, "google.rpc.BadRequest", `"field": "to"`, `"field": "usage_type"`, `"field": "payload.code"`} {
			if code == 0 || !strings.Contains(out, want) {
				t.Fatalf("error output (exit %d) lacks %s:\n%s", code, want, out)
			}
		}
	})

	p.Stop(t)
	logs := p.Logs.String()
	if strings.Contains(logs, twiliotest.SandboxAuthToken) {
		t.Fatalf("the auth token appears in the debug log:\n%s", logs)
	}
	if strings.Contains(logs, "5005550") {
		t.Fatalf("an unmasked recipient appears in the log:\n%s", logs)
	}
}

func TestBinaryUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	p := startBinary(t, "--sandbox", "--listen", "unix://"+sock)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode = %o, want 600", perm)
	}
	out, code := grpcurlRun(t, p, "-d", `{"to":"+15005550006","usage_type":"USAGE_TYPE_GENERIC","payload":{"code":"42"}}`, "connector.sms.v1.SmsConnector/SendMessage")
	if code != 0 || !strings.Contains(out, `"messageId": "SM`) {
		t.Fatalf("SendMessage over unix socket (exit %d):\n%s", code, out)
	}
	p.Stop(t)
}

func TestBinaryWithoutConfigNeverPretends(t *testing.T) {
	p := startBinary(t, "--listen", "127.0.0.1:0")
	out, code := grpcurlRun(t, p, "-format-error", "-d", `{"to":"+15005550006","usage_type":"USAGE_TYPE_SIGN_IN","payload":{"code":"123456"}}`, "connector.sms.v1.SmsConnector/SendMessage")
	if code == 0 || !strings.Contains(out, `"code": 9`) || !strings.Contains(out, `"reason": "CONFIG_MISSING"`) {
		t.Fatalf("want FAILED_PRECONDITION CONFIG_MISSING, got (exit %d):\n%s", code, out)
	}
	p.Stop(t)
}

func TestBinaryRefusesBadStartup(t *testing.T) {
	bin := testbin.Build(t, "./cmd/sms-connector")
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"accountSID":"nope","authToken":"x","templates":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"invalid config file", []string{"--config", bad, "--listen", "127.0.0.1:0"}, nil, "accountSID"},
		{"missing config file", []string{"--config", "/nonexistent/x.json"}, nil, "no such file"},
		{"sandbox with config", []string{"--sandbox", "--config", bad}, nil, "--sandbox brings its own config"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "log-level"},
		{"bad env var", nil, []string{"SMS_CONNECTOR_SANDBOX=maybe"}, "SMS_CONNECTOR_SANDBOX"},
		{"stray argument", []string{"serve"}, nil, "unexpected argument"},
		{"unknown connector", []string{"--connector", "pigeon"}, nil, `unknown connector "pigeon": want twilio or console`},
		{"sandbox of the console connector", []string{"--connector", "console", "--sandbox"}, nil, "--sandbox emulates Twilio"},
		{"sandbox with an API URL", []string{"--sandbox", "--twilio-api-url", "http://127.0.0.1:1"}, nil, "drop --twilio-api-url"},
		{"API URL without a scheme", []string{"--twilio-api-url", "127.0.0.1:4010"}, nil, `"127.0.0.1:4010" is not a base URL: want http://host:port`},
		{"API URL with another scheme", nil, []string{"SMS_CONNECTOR_TWILIO_API_URL=ftp://127.0.0.1:4010"}, "SMS_CONNECTOR_TWILIO_API_URL"},
		{"API URL with credentials", []string{"--twilio-api-url", "http://user:pass@127.0.0.1:4010"}, nil, "must not carry credentials"},
		{"API URL with a path", []string{"--twilio-api-url", "http://127.0.0.1:4010/2010-04-01"}, nil, "scheme and host only"},
		{"emulator with a stray argument", []string{"emulator", "now"}, nil, `unexpected argument "now"`},
		{"console connector given a Twilio config", nil, []string{"SMS_CONNECTOR_CONNECTOR=console", "SMS_CONNECTOR_CONFIG=" + bad}, "accountSID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			if err == nil || cmd.ProcessState.ExitCode() == 0 {
				t.Fatalf("exit 0, want failure:\n%s", out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}
