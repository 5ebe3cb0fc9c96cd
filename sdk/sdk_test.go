package sdk_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/internal/testutil"
	"github.com/sms-connector/sms-connector/sdk"
	"github.com/sms-connector/sms-connector/smsplugin"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds each test's calls so a bug hangs no test forever; nothing asserts on time.
const testTimeout = time.Minute

// fake is an in-test connector: it accepts a config with "ok": true and records what it sent.
type fake struct {
	mu     sync.Mutex
	sent   []connector.Message
	closed bool
}

func (f *fake) Send(_ context.Context, msg *connector.Message) (*connector.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, *msg)
	return &connector.Receipt{MessageID: "F1", Status: "queued", Segments: 1, Encoding: connector.EncodingGSM7, To: msg.To}, nil
}

func (f *fake) ValidateConfig(_ context.Context, cfg json.RawMessage) ([]connector.Violation, error) {
	var m map[string]any
	if json.Unmarshal(cfg, &m) != nil || m["ok"] != true {
		return []connector.Violation{{Field: "ok", Description: "must be true"}}, nil
	}
	return nil, nil
}

func (f *fake) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{ID: "fake-sms", Name: map[string]string{"en": "Fake"}, Description: map[string]string{"en": "d"}}, nil
}

// Close records that the SDK closed the connector.
func (f *fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fake) state() ([]connector.Message, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]connector.Message(nil), f.sent...), f.closed
}

// binary is a Binary serving f with a valid default config.
func binary(f *fake) sdk.Binary {
	return sdk.Binary{
		Name:          "fake-sms-connector",
		Summary:       "Serves the fake.",
		DefaultConfig: func() json.RawMessage { return json.RawMessage(`{"ok":true}`) },
		New:           func(context.Context, *sdk.Runtime) (connector.SmsConnector, error) { return f, nil },
	}
}

// env is a test environment behind getenv.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// run is one Run in the background, its stderr split into lines as they come.
type run struct {
	code   chan int
	lines  chan string
	stdout *bufio.Reader
	mu     sync.Mutex
	stderr strings.Builder
}

// start runs b with args and e until the test ends.
func start(t *testing.T, b sdk.Binary, args []string, e env) (*run, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	r := &run{code: make(chan int, 1), lines: make(chan string, 100), stdout: bufio.NewReader(outR)}
	scanned := make(chan struct{}) // closed once every stderr line is in r.stderr
	go func() {
		code := sdk.Run(ctx, b, args, e.get, outW, errW)
		outW.Close()
		errW.Close()
		<-scanned // so that a test that has the exit code reads every line
		r.code <- code
	}()
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(errR)
		for sc.Scan() {
			r.mu.Lock()
			r.stderr.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			select {
			case r.lines <- sc.Text():
			default:
			}
		}
		close(r.lines)
	}()
	t.Cleanup(func() {
		cancel()
		go func() { _, _ = io.Copy(io.Discard, outR) }()
		select {
		case c := <-r.code:
			r.code <- c
		case <-time.After(testTimeout):
			t.Error("Run did not return")
		}
	})
	return r, cancel
}

// logs returns the stderr lines so far.
func (r *run) logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

// waitFor returns the first JSON log line whose key has the value.
func (r *run) waitFor(t *testing.T, key, value string) map[string]any {
	t.Helper()
	for line := range r.lines {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry[key] == value {
			return entry
		}
	}
	t.Fatalf("no log line with %s %q:\n%s", key, value, r.logs())
	return nil
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestServiceMode(t *testing.T) {
	f := &fake{}
	dir, err := os.MkdirTemp("", "sdk") // short: a socket path has at most ~107 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, listen := range []string{"127.0.0.1:0", "unix://" + dir + "/s.sock"} {
		t.Run(listen, func(t *testing.T) {
			r, cancel := start(t, binary(f), []string{"--listen", listen}, env{"SMS_CONNECTOR_LOG_LEVEL": "debug"})
			entry := r.waitFor(t, "msg", sdk.ServingMessage)
			if entry["connector"] != "fake-sms" || entry["binary"] != "fake-sms-connector" || entry["default_config"] != true {
				t.Errorf("serving line = %v", entry)
			}
			c := smsplugin.NewClient(testutil.Dial(t, entry["address"].(string)))
			if _, err := c.Send(ctxFor(t), &connector.Message{To: "+15005550006", UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "1"}}); err != nil {
				t.Fatalf("Send: %v", err)
			}
			cancel()
			if code := <-r.code; code != 0 {
				t.Errorf("exit code %d after the context ended\n%s", code, r.logs())
			}
			r.code <- 0
			sent, closed := f.state()
			if len(sent) == 0 || string(sent[len(sent)-1].Config) != `{"ok":true}` || !closed {
				t.Errorf("sent %+v (want the default config), closed %v", sent, closed)
			}
		})
	}
}

func TestPluginMode(t *testing.T) {
	f := &fake{}
	dir, err := os.MkdirTemp("", "sdk")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, args := range [][]string{nil, {"plugin"}} {
		t.Run(strings.Join(append([]string{"args"}, args...), " "), func(t *testing.T) {
			r, _ := start(t, binary(f), args, env{
				smsplugin.MagicCookieKey:      smsplugin.MagicCookieValue,
				smsplugin.EnvProtocolVersions: "1",
				smsplugin.EnvUnixSocketDir:    dir,
				"SMS_CONNECTOR_LISTEN":        "127.0.0.1:1", // does not apply in plugin mode
			})
			line, err := r.stdout.ReadString('\n')
			if err != nil {
				t.Fatalf("no handshake: %v\n%s", err, r.logs())
			}
			m := regexp.MustCompile(`^1\|1\|unix\|([^|]+)\|grpc\n$`).FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("handshake line %q", line)
			}
			conn := testutil.Dial(t, "unix://"+m[1])
			if _, err := smsplugin.NewClient(conn).Send(ctxFor(t), &connector.Message{To: "+15005550006", UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "1"}}); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if err := conn.Invoke(ctxFor(t), "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
				t.Fatal(err)
			}
			if code := <-r.code; code != 0 {
				t.Errorf("exit code %d after Shutdown\n%s", code, r.logs())
			}
			r.code <- 0
			// go-plugin's JSON shape, so a Go host re-logs each line at its level.
			if !strings.Contains(r.logs(), `"@level":"info"`) || !strings.Contains(r.logs(), `"@message":"plugin stopped"`) {
				t.Errorf("logs are not in go-plugin's shape:\n%s", r.logs())
			}
		})
	}
}

func TestHooks(t *testing.T) {
	f := &fake{}
	var order []string
	cleaned := false
	b := binary(f)
	var region string
	b.Flags = func(fs *flag.FlagSet) { fs.StringVar(&region, "fake-region", "eu", "the fake's region") }
	b.Sandbox = func(_ context.Context, rt *sdk.Runtime) (json.RawMessage, func(), error) {
		if rt.Log == nil || !rt.Sandbox || rt.Plugin {
			t.Errorf("runtime = %+v", rt)
		}
		order = append(order, "sandbox:"+region)
		return json.RawMessage(`{"ok":true,"sandbox":1}`), func() { cleaned = true }, nil
	}
	b.New = func(context.Context, *sdk.Runtime) (connector.SmsConnector, error) {
		order = append(order, "new")
		return f, nil
	}
	b.DefaultConfig = func() json.RawMessage {
		order = append(order, "default")
		return nil
	}
	r, cancel := start(t, b, []string{"--sandbox", "--listen", "127.0.0.1:0"}, env{"SMS_CONNECTOR_FAKE_REGION": "us"})
	entry := r.waitFor(t, "msg", sdk.ServingMessage)
	if entry["sandbox"] != true {
		t.Errorf("serving line = %v", entry)
	}
	c := smsplugin.NewClient(testutil.Dial(t, entry["address"].(string)))
	if _, err := c.Send(ctxFor(t), &connector.Message{To: "+15005550006", UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "1"}}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if code := <-r.code; code != 0 {
		t.Fatalf("exit code %d\n%s", code, r.logs())
	}
	r.code <- 0
	if strings.Join(order, ",") != "sandbox:us,new" || !cleaned {
		t.Errorf("hooks ran %v (cleanup %v), want the sandbox (with the vendor's flag from its variable), then New, then the cleanup", order, cleaned)
	}
	if sent, _ := f.state(); len(sent) != 1 || string(sent[0].Config) != `{"ok":true,"sandbox":1}` {
		t.Errorf("sent %+v, want the sandbox config", sent)
	}
}

func TestRunRefuses(t *testing.T) {
	badConfig := t.TempDir() + "/bad.json"
	if err := os.WriteFile(badConfig, []byte(`{"ok":false}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cookie := env{smsplugin.MagicCookieKey: "not-ours"}
	tests := []struct {
		name  string
		args  []string
		env   env
		edit  func(*sdk.Binary)
		code  int
		want  string
		lines int // 0: any
	}{
		{"help", []string{"-h"}, nil, nil, 0, "Every flag can also be set as SMS_CONNECTOR_<FLAG>", 0},
		{"unknown flag", []string{"--nope"}, nil, nil, 2, "flag provided but not defined: -nope", 0},
		{"no sandbox to offer", []string{"--sandbox"}, nil, nil, 2, "-sandbox", 0},
		{"stray argument", []string{"serve"}, nil, nil, 2, `unexpected argument "serve"`, 1},
		{"bad variable", nil, env{"SMS_CONNECTOR_LOG_LEVEL": "loud"}, nil, 2, "log-level", 1},
		{"plugin by hand", []string{"plugin"}, nil, nil, 2, "to serve on your own, run", 1},
		{"wrong cookie", nil, cookie, nil, 1, "SMS_CONNECTOR_PLUGIN has the wrong value", 1},
		{"reserved flag", nil, nil, func(b *sdk.Binary) {
			b.Flags = func(fs *flag.FlagSet) { fs.String("plugin-network", "", "") }
		}, 2, "flag --plugin-network is reserved", 1},
		{"no connector", nil, nil, func(b *sdk.Binary) { b.New = nil }, 2, "sdk.Binary.New is not set", 1},
		{"connector fails", nil, nil, func(b *sdk.Binary) {
			b.New = func(context.Context, *sdk.Runtime) (connector.SmsConnector, error) {
				return nil, errors.New("no account")
			}
		}, 1, "connector: no account", 1},
		{"invalid config file", []string{"--config", badConfig}, nil, nil, 1, "has 1 problem(s):\\n  ok: must be true", 1},
		{"invalid built-in default", nil, nil, func(b *sdk.Binary) {
			b.DefaultConfig = func() json.RawMessage { return json.RawMessage(`{}`) }
		}, 1, "the built-in default config has 1 problem(s)", 1},
		{"sandbox with config", []string{"--sandbox", "--config", badConfig}, nil, func(b *sdk.Binary) {
			b.Sandbox = func(context.Context, *sdk.Runtime) (json.RawMessage, func(), error) { return nil, nil, nil }
		}, 2, "--sandbox brings its own config", 1},
		{"port in use", []string{"--listen", "127.0.0.1:-1"}, nil, nil, 1, "listen on 127.0.0.1:-1", 1},
		{"public url without http listener", []string{"--public-url", "https://sms.example.com"}, nil, nil, 2, "nothing would receive the callbacks: give --http-listen", 1},
		{"public url over http", []string{"--public-url", "http://sms.example.com", "--http-listen", "127.0.0.1:0"}, nil, nil, 2, "http is accepted for a loopback host only", 1},
		{"public url with query", []string{"--public-url", "https://sms.example.com/?a=b", "--http-listen", "127.0.0.1:0"}, nil, nil, 2, "no query or fragment", 1},
		{"public url relative", nil, env{"SMS_CONNECTOR_PUBLIC_URL": "sms.example.com"}, nil, 2, "want an absolute https URL", 1},
		{"status ttl too short", []string{"--status-ttl", "1s"}, nil, nil, 2, "--status-ttl 1s: must be at least 1m0s", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := binary(&fake{})
			if tt.edit != nil {
				tt.edit(&b)
			}
			var stdout, stderr bytes.Buffer
			code := sdk.Run(ctxFor(t), b, tt.args, tt.env.get, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, stderr.String())
			}
			if tt.lines > 0 && strings.Count(stderr.String(), "\n") != tt.lines {
				t.Errorf("stderr has %d lines, want %d:\n%s", strings.Count(stderr.String(), "\n"), tt.lines, stderr.String())
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}
