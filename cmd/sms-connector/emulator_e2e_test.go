package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	twilio "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	twilioApi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
)

// startupLineTimeout guards against a hang waiting for the emulator's first lines; it is not a
// performance check.
const startupLineTimeout = time.Minute

// emulatorProcess is a running "sms-connector emulator" with what it printed.
type emulatorProcess struct {
	cmd    *exec.Cmd
	vars   map[string]string // url, account_sid, auth_token, from: its stdout
	mu     sync.Mutex
	stderr strings.Builder
	done   chan struct{}
}

func (e *emulatorProcess) logs() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stderr.String()
}

// startEmulator runs the built binary as "emulator --listen 127.0.0.1:0" and reads the four
// key=value lines it prints.
func startEmulator(t *testing.T) *emulatorProcess {
	t.Helper()
	bin := testbin.Build(t, "./cmd/sms-connector")
	cmd := exec.Command(bin, "emulator", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	e := &emulatorProcess{cmd: cmd, vars: map[string]string{}, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			e.mu.Lock()
			e.stderr.WriteString(sc.Text() + "\n")
			e.mu.Unlock()
		}
	}()
	ready := make(chan struct{})
	copied.Add(1)
	go func() {
		defer copied.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), "=")
			e.mu.Lock()
			e.vars[k] = v
			n := len(e.vars)
			e.mu.Unlock()
			if n == 4 {
				close(ready)
			}
		}
	}()
	go func() {
		copied.Wait()
		_ = cmd.Wait()
		close(e.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-e.done
	})
	select {
	case <-ready:
	case <-e.done:
		t.Fatalf("the emulator exited before printing its URL:\n%s", e.logs())
	case <-time.After(startupLineTimeout):
		t.Fatalf("the emulator printed no URL:\n%s", e.logs())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range []string{"url", "account_sid", "auth_token", "from"} {
		if e.vars[k] == "" {
			t.Fatalf("the emulator did not print %s: %v", k, e.vars)
		}
	}
	return e
}

// stop sends sig and returns the exit code.
func (e *emulatorProcess) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := e.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-e.done
	return e.cmd.ProcessState.ExitCode()
}

// baseURLTransport sends every request to base instead of the host twilio-go chose
// (https://api.twilio.com is a constant in twilio-go).
type baseURLTransport struct{ base *url.URL }

func (b baseURLTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = b.base.Scheme, b.base.Host, ""
	return http.DefaultTransport.RoundTrip(r)
}

// TestEmulatorCommand: "sms-connector emulator" prints its URL and credentials, answers the
// real twilio-go client with them, logs what it accepted, and stops with exit code 0 on SIGINT
// and on SIGTERM.
func TestEmulatorCommand(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		t.Run(sig.String(), func(t *testing.T) {
			e := startEmulator(t)
			base, err := url.Parse(e.vars["url"])
			if err != nil {
				t.Fatal(err)
			}
			c := &client.Client{
				Credentials: client.NewCredentials(e.vars["account_sid"], e.vars["auth_token"]),
				HTTPClient:  &http.Client{Transport: baseURLTransport{base: base}, Timeout: time.Minute},
			}
			c.SetAccountSid(e.vars["account_sid"])
			rest := twilio.NewRestClientWithParams(twilio.ClientParams{Client: c})
			params := &twilioApi.CreateMessageParams{}
			params.SetTo("+14155550123").SetFrom(e.vars["from"]).SetBody("Your code is 424242")
			msg, err := rest.Api.CreateMessage(params)
			if err != nil {
				t.Fatalf("CreateMessage: %v", err)
			}
			if msg.Sid == nil || !strings.HasPrefix(*msg.Sid, "SM") || msg.Status == nil || *msg.Status != "queued" {
				t.Fatalf("unexpected message: %+v", msg)
			}
			http.DefaultTransport.(*http.Transport).CloseIdleConnections()
			if code := e.stop(t, sig); code != 0 {
				t.Fatalf("exit code %d after %v:\n%s", code, sig, e.logs())
			}
			if !strings.Contains(e.logs(), `"sid":"`+*msg.Sid+`"`) || !strings.Contains(e.logs(), `"body":"Your code is 424242"`) {
				t.Errorf("the accepted message is not logged:\n%s", e.logs())
			}
		})
	}
}

// TestTwilioAPIURL: the service pointed at "sms-connector emulator" with --twilio-api-url and a
// config holding the printed credentials sends through it, and says at start-up, once, where
// its Twilio calls go.
func TestTwilioAPIURL(t *testing.T) {
	e := startEmulator(t)
	cfg, err := json.Marshal(map[string]any{
		"accountSID": e.vars["account_sid"], "authToken": e.vars["auth_token"], "from": e.vars["from"],
		"templates": []map[string]string{{"usageType": "Generic", "content": "Your code is {{code}}."}},
	})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "emulator.json")
	if err := os.WriteFile(file, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, "--config", file, "--twilio-api-url", e.vars["url"], "--listen", "127.0.0.1:0")
	out, code := grpcurlRun(t, p, "-d", `{"to":"+14155550123","usage_type":"USAGE_TYPE_SIGN_IN","payload":{"code":"777111"}}`,
		"connector.sms.v1.SmsConnector/SendMessage")
	if code != 0 || !strings.Contains(out, `"messageId": "SM`) {
		t.Fatalf("SendMessage through the emulator (exit %d):\n%s", code, out)
	}
	p.Stop(t)
	n := 0
	for _, line := range strings.Split(p.Logs.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		if msg, _ := entry["msg"].(string); strings.HasPrefix(msg, "Twilio API URL overridden") &&
			entry["level"] == "info" && entry["url"] == e.vars["url"] {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d start-up lines say the API URL is overridden, want 1:\n%s", n, p.Logs.String())
	}
	if strings.Contains(p.Logs.String(), e.vars["auth_token"]) {
		t.Errorf("the auth token appears in the log:\n%s", p.Logs.String())
	}
	if code := e.stop(t, syscall.SIGTERM); code != 0 || !strings.Contains(e.logs(), "Your code is 777111.") {
		t.Fatalf("emulator exit %d; it should have accepted the message:\n%s", code, e.logs())
	}
}
