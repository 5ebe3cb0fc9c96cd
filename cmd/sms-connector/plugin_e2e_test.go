package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	"github.com/sms-connector/sms-connector/internal/testutil"
	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
	"github.com/sms-connector/sms-connector/smsplugin"
)

// These tests run the built binary in plugin mode: through the Go host package (go-plugin's
// client), and by hand, reading its stdout byte for byte as a host in another language does.

// pluginTimeout bounds a plugin test's start and calls; a guard against a hang, not a check.
const pluginTimeout = time.Minute

// shortTempDir is a directory for unix sockets: t.TempDir's paths can be too long for one.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "smsc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// twilioConfigFile writes a Twilio config for the emulator's sandbox account.
func twilioConfigFile(t *testing.T) string {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"accountSID": twiliotest.SandboxAccountSID,
		"authToken":  twiliotest.SandboxAuthToken,
		"from":       twiliotest.FromValid,
		"templates":  []any{map[string]any{"usageType": "Generic", "content": "Your Acme code is {{code}}."}},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "twilio.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// processGone reports whether no process has the id pid any more.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestPluginThroughTheGoHost(t *testing.T) {
	bin := testbin.Build(t, "./cmd/sms-connector")
	tests := []struct {
		name    string
		opts    []smsplugin.LaunchOption
		network string
		mtls    bool
	}{
		{"AutoMTLS over a unix socket", nil, "unix", true},
		{"plaintext over TCP", []smsplugin.LaunchOption{smsplugin.WithoutAutoMTLS(), smsplugin.WithTCP()}, "tcp", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := twiliotest.NewServer()
			defer emu.Close()
			var stderr testutil.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
			defer cancel()
			opts := append([]smsplugin.LaunchOption{
				smsplugin.WithEnv(
					"SMS_CONNECTOR_TWILIO_API_URL="+emu.URL,
					"SMS_CONNECTOR_CONFIG="+twilioConfigFile(t),
					"SMS_CONNECTOR_LOG_LEVEL=debug",
					smsplugin.EnvUnixSocketDir+"="+shortTempDir(t)),
				smsplugin.WithStderr(&stderr),
			}, tt.opts...)
			p, err := smsplugin.Launch(ctx, bin, opts...)
			if err != nil {
				t.Fatalf("Launch: %v\n%s", err, stderr.String())
			}
			defer p.Kill()
			pid, addr := p.Pid(), p.Addr()
			if pid <= 0 || addr == nil || addr.Network() != tt.network {
				t.Fatalf("pid %d, address %v: want a %s address", pid, addr, tt.network)
			}
			if tt.network == "tcp" && !strings.HasPrefix(addr.String(), "127.0.0.1:") {
				t.Errorf("TCP address %s is not loopback", addr)
			}
			var c connector.SmsConnector = p // the host cannot tell it from a local connector

			t.Run("send, and read the code back from the emulator", func(t *testing.T) {
				rec, err := c.Send(ctx, &connector.Message{To: "+14155550123", UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "654321"}})
				if err != nil {
					t.Fatalf("Send: %v\n%s", err, stderr.String())
				}
				if !regexp.MustCompile(`^SM[0-9a-f]{32}$`).MatchString(rec.MessageID) || rec.Status != "queued" || rec.To != "+14155550123" || rec.Segments != 1 {
					t.Errorf("receipt = %+v", rec)
				}
				var body string
				for _, m := range emu.Messages() {
					if m.Sid == rec.MessageID {
						body = m.Body
					}
				}
				if body != "Your Acme code is 654321." {
					t.Errorf("the emulator got %q for %s", body, rec.MessageID)
				}
			})
			t.Run("a Twilio refusal is a typed error on the host", func(t *testing.T) {
				_, err := c.Send(ctx, &connector.Message{To: twiliotest.ToNoGeoPermission, UsageType: connector.UsageRegister, Payload: connector.Payload{Code: "1"}})
				var ce *connector.Error
				if !errors.As(err, &ce) {
					t.Fatalf("err = %T %v, not a *connector.Error", err, err)
				}
				if ce.Reason != connector.ReasonCountryNotPermitted || ce.Provider != "twilio" || ce.ProviderCode != "21408" ||
					ce.MoreInfo != "https://www.twilio.com/docs/errors/21408" {
					t.Errorf("error = %+v", ce)
				}
			})
			t.Run("ValidateConfig and Metadata", func(t *testing.T) {
				vs, err := c.ValidateConfig(ctx, json.RawMessage(`{"accountSID":"AC123","templates":[]}`))
				if err != nil || len(vs) == 0 || vs[0].Field != "accountSID" {
					t.Errorf("ValidateConfig = %+v, %v", vs, err)
				}
				md, err := c.Metadata(ctx)
				if err != nil || md.ID != "twilio-short-message-service" || md.Name["en"] == "" {
					t.Errorf("Metadata = %+v, %v", md, err)
				}
			})
			t.Run("only the host gets in", func(t *testing.T) {
				target := addr.String()
				if addr.Network() == "unix" {
					target = "unix://" + target
				}
				conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: smsplugin.HealthService})
				switch {
				case tt.mtls && err == nil:
					t.Error("a plaintext client got through AutoMTLS")
				case !tt.mtls && (err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING):
					t.Errorf("health %q = %v, %v", smsplugin.HealthService, resp, err)
				}
			})

			p.Kill()
			if !p.Exited() || p.ExitCode() != 0 {
				t.Errorf("after Kill: exited %v, exit code %d (want a graceful exit, 0)\n%s", p.Exited(), p.ExitCode(), stderr.String())
			}
			if !processGone(pid) {
				t.Errorf("process %d is still there after Kill", pid)
			}
			if tt.network == "unix" {
				if _, err := os.Stat(addr.String()); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("socket %s left behind: %v", addr, err)
				}
			}
			logs := stderr.String()
			for _, want := range []string{`"@message":"shutting down: the host asked (GRPCController.Shutdown)"`, `"@message":"plugin stopped"`} {
				if !strings.Contains(logs, want) {
					t.Errorf("the plugin's log lacks %s:\n%s", want, logs)
				}
			}
			if strings.Contains(logs, twiliotest.SandboxAuthToken) {
				t.Errorf("the auth token appears in the log:\n%s", logs)
			}
		})
	}
}

func TestPluginConsoleConnectorThroughTheGoHost(t *testing.T) {
	bin := testbin.Build(t, "./cmd/sms-connector")
	var stderr testutil.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
	defer cancel()
	p, err := smsplugin.Launch(ctx, bin, smsplugin.WithArgs("--connector", "console"), smsplugin.WithStderr(&stderr))
	if err != nil {
		t.Fatalf("Launch: %v\n%s", err, stderr.String())
	}
	defer p.Kill()
	rec, err := p.Send(ctx, &connector.Message{To: "+14155550123", UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "777888"}})
	if err != nil || !strings.HasPrefix(rec.MessageID, "console-") {
		t.Fatalf("Send = %+v, %v\n%s", rec, err, stderr.String())
	}
	p.Kill()
	if p.ExitCode() != 0 {
		t.Errorf("exit code %d", p.ExitCode())
	}
	if !regexp.MustCompile(`"id":"` + rec.MessageID + `".*"body":"Your sign-in verification code is 777888\.`).MatchString(stderr.String()) {
		t.Errorf("the console line for %s is missing:\n%s", rec.MessageID, stderr.String())
	}
}

// reHandshakeLine is the first stdout line of a plugin: core 1, app 1, unix, its path, grpc and,
// with AutoMTLS, a 6th field of unpadded base64.
var reHandshakeLine = regexp.MustCompile(`^1\|1\|unix\|(/[^|\n]+)\|grpc(?:\|([A-Za-z0-9+/]+))?\n$`)

// pluginEnv is the environment a host in any language gives the plugin.
func pluginEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SMS_CONNECTOR_") && !strings.HasPrefix(kv, "PLUGIN_") {
			env = append(env, kv)
		}
	}
	env = append(env, smsplugin.EnvUnixSocketDir+"="+shortTempDir(t), "SMS_CONNECTOR_SANDBOX=true")
	return append(env, extra...)
}

func TestPluginHandshakeByHand(t *testing.T) {
	bin := testbin.Build(t, "./cmd/sms-connector")
	hostPEM := string(hostCertificatePEM(t))
	tests := []struct {
		name string
		env  []string
		mtls bool
	}{
		{"plaintext", nil, false},
		{"AutoMTLS", []string{smsplugin.EnvClientCert + "=" + hostPEM}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin)
			cmd.Env = pluginEnv(t, append([]string{
				smsplugin.MagicCookieKey + "=" + smsplugin.MagicCookieValue,
				smsplugin.EnvProtocolVersions + "=1",
			}, tt.env...)...)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr testutil.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			defer func() {
				_ = cmd.Process.Kill()
				<-exited
			}()
			r := bufio.NewReader(stdout)
			rest := make(chan string, 1)
			line, err := r.ReadString('\n')
			go func() {
				b, _ := io.ReadAll(r)
				rest <- string(b)
				_ = cmd.Wait()
				close(exited)
			}()
			if err != nil {
				t.Fatalf("no handshake line: %v\n%s", err, stderr.String())
			}
			m := reHandshakeLine.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("the first stdout bytes are %q, not a handshake line", line)
			}
			fields := strings.Split(strings.TrimSuffix(line, "\n"), "|")
			if tt.mtls {
				if len(fields) != 6 {
					t.Fatalf("%d fields with AutoMTLS, want 6: %q", len(fields), line)
				}
				der, err := base64.RawStdEncoding.DecodeString(m[2])
				if err != nil {
					t.Fatalf("6th field is not unpadded base64: %v", err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatalf("6th field is not a DER certificate: %v", err)
				}
				if cert.VerifyHostname("localhost") != nil {
					t.Errorf("the plugin's certificate is not for localhost: %v", cert.DNSNames)
				}
			} else if len(fields) != 5 {
				t.Fatalf("%d fields without AutoMTLS, want 5: %q", len(fields), line)
			}
			sock := m[1]
			fi, err := os.Stat(sock)
			if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
				t.Fatalf("socket %s: %v %v", sock, fi, err)
			}
			if !tt.mtls {
				// A host in any language connects with plain gRPC and finds health "plugin" SERVING.
				conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "plugin"})
				conn.Close()
				if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Errorf("health plugin = %v, %v", resp, err)
				}
			}
			// SIGTERM drains and exits 0, as in service mode; the socket goes with it.
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if out := <-rest; out != "" {
				t.Errorf("stdout after the handshake line: %q", out)
			}
			<-exited
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit code after SIGTERM = %d\n%s", code, stderr.String())
			}
			if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket %s left behind: %v", sock, err)
			}
		})
	}
}

func TestPluginRefusals(t *testing.T) {
	bin := testbin.Build(t, "./cmd/sms-connector")
	cookie := smsplugin.MagicCookieKey + "=" + smsplugin.MagicCookieValue
	tests := []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"wrong cookie", nil, []string{smsplugin.MagicCookieKey + "=not-ours", "PLUGIN_PROTOCOL_VERSIONS=1"}, 1, "SMS_CONNECTOR_PLUGIN has the wrong value"},
		{"unsupported protocol version", nil, []string{cookie, "PLUGIN_PROTOCOL_VERSIONS=7"}, 1, "the host speaks plugin protocol version(s) 7, this connector speaks 1"},
		{"a host of another kind of plugin", nil, []string{"PLUGIN_PROTOCOL_VERSIONS=1"}, 1, "SMS_CONNECTOR_PLUGIN is not set"},
		{"plugin by hand", []string{"plugin"}, nil, 2, `to serve on your own, run "sms-connector --listen 127.0.0.1:50051" instead`},
		{"plugin by hand after flags", []string{"--log-level", "debug", "plugin"}, nil, 2, "to serve on your own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = pluginEnv(t, tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			out := stderr.String()
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || !strings.Contains(out, tt.want) {
				t.Errorf("stderr is not one line saying %q:\n%s", tt.want, out)
			}
		})
	}
}

func TestBinaryConsoleConnector(t *testing.T) {
	p := startBinary(t, "--connector", "console", "--listen", "127.0.0.1:0")
	out, code := grpcurlRun(t, p, "-d", `{"to":"+14155550123","usage_type":"USAGE_TYPE_SIGN_IN","payload":{"code":"123456"}}`,
		"connector.sms.v1.SmsConnector/SendMessage")
	if code != 0 {
		t.Fatalf("SendMessage exit %d:\n%s", code, out)
	}
	var resp struct {
		MessageID   string `json:"messageId"`
		Status      string `json:"status"`
		ConnectorID string `json:"connectorId"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`^console-[0-9a-f]{32}$`).MatchString(resp.MessageID) || resp.Status != "written" || resp.ConnectorID != "console-sms" {
		t.Errorf("unexpected response: %+v", resp)
	}
	p.Stop(t)
	if !regexp.MustCompile(`"id":"` + resp.MessageID + `".*"body":"Your sign-in verification code is 123456\.`).MatchString(p.Logs.String()) {
		t.Errorf("the console line for %s is missing:\n%s", resp.MessageID, p.Logs.String())
	}
}

// hostCertificatePEM is a certificate as a go-plugin host makes one for PLUGIN_CLIENT_CERT:
// self-signed, for localhost, PEM-encoded.
func hostCertificatePEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestMain(m *testing.M) {
	// The Go host (go-plugin's client) and the emulators run in this process: all of their
	// goroutines must be gone once Kill and Close have returned. The built binaries go too.
	goleak.VerifyTestMain(m, goleak.Cleanup(testbin.RemoveAndExit))
}
