package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/testpki"
	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
	"github.com/sms-connector/sms-connector/smsplugin"
)

// These tests run the built binary with caller authentication, the abuse defences and a
// graceful stop under load, against a Twilio emulator in this process (so that the test can
// count what reached "Twilio").

// bearerToken is a distinctive bearer token: it must never appear in the binary's output.
const bearerToken = "Bin4ryB3arerT0ken-n0t-f0r-l0gs-42"

// e2e secrets of an API key the emulator accepts; the secret must never appear in a log.
const (
	binKeySID    = "SK" + "abcdef0123456789abcdef0123456789"
	binKeySecret = "B1nApIkEySeCrEt0B1nApIkEySeCrEt0"
)

// sendReq is a SignIn request to to, with the binary's default config.
func sendReq(to string) *smsv1.SendMessageRequest {
	return &smsv1.SendMessageRequest{To: to, UsageType: smsv1.UsageType_USAGE_TYPE_SIGN_IN, Payload: &smsv1.Payload{Code: "123456"}}
}

// clientTo connects to the binary's address with creds.
func clientTo(t *testing.T, addr string, creds credentials.TransportCredentials) (*grpc.ClientConn, smsv1.SmsConnectorClient) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, smsv1.NewSmsConnectorClient(conn)
}

// rpcCtx bounds one call; a guard against a hang, not a check.
func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// reasonOf returns the ErrorInfo reason of err, or "".
func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// writeFile writes data into a new file of the test's temporary directory.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	return testpki.WriteFile(t, t.TempDir(), name, data)
}

// assertNoSecrets fails when the binary's output holds any of secrets.
func assertNoSecrets(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	if logs == "" {
		t.Fatal("no output captured: the scan would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the output carries a secret (%.6s…):\n%s", s, logs)
		}
	}
}

func TestBinaryBearerToken(t *testing.T) {
	emu := twiliotest.NewServer()
	defer emu.Close()
	tokenFile := writeFile(t, "token", []byte("  "+bearerToken+"\n")) // trimmed
	p := startBinary(t, "--config", twilioConfigFile(t), "--twilio-api-url", emu.URL,
		"--auth-token-file", tokenFile, "--listen", "127.0.0.1:0", "--log-level", "debug")
	conn, client := clientTo(t, p.Addr, insecure.NewCredentials())

	for _, tt := range []struct{ name, header string }{
		{"without credentials", ""},
		{"with a wrong token", "Bearer " + strings.ToUpper(bearerToken)},
		{"with the token in another scheme", "Basic " + bearerToken},
	} {
		ctx := rpcCtx(t)
		if tt.header != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tt.header)
		}
		_, err := client.SendMessage(ctx, sendReq("+14155550123"))
		if status.Code(err) != codes.Unauthenticated || reasonOf(err) != "UNAUTHENTICATED" {
			t.Errorf("SendMessage %s: %v, want UNAUTHENTICATED with reason UNAUTHENTICATED", tt.name, err)
		}
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("health %s: %v, want UNAUTHENTICATED (not exempt by default)", tt.name, err)
		}
	}
	if n := emu.Requests(); n != 0 {
		t.Fatalf("%d requests reached Twilio without valid credentials", n)
	}

	ctx := metadata.AppendToOutgoingContext(rpcCtx(t), "authorization", "Bearer "+bearerToken)
	if _, err := client.SendMessage(ctx, sendReq("+14155550123")); err != nil {
		t.Fatalf("SendMessage with the token: %v", err)
	}
	// grpcurl, as the README shows it.
	out, code := grpcurlRun(t, p, "-H", "authorization: Bearer "+bearerToken, "-d", `{"to":"+14155550124","usage_type":"USAGE_TYPE_SIGN_IN","payload":{"code":"123456"}}`,
		"connector.sms.v1.SmsConnector/SendMessage")
	if code != 0 || !strings.Contains(out, `"messageId": "SM`) {
		t.Fatalf("grpcurl with the token (exit %d):\n%s", code, out)
	}
	if n := len(emu.Messages()); n != 2 {
		t.Errorf("the emulator accepted %d messages, want 2", n)
	}
	p.Stop(t)
	assertNoSecrets(t, p.Logs.String(), bearerToken, twiliotest.SandboxAuthToken)
	if !strings.Contains(p.Logs.String(), `"error.reason":"UNAUTHENTICATED"`) {
		t.Errorf("the refusals are not logged with their reason:\n%s", p.Logs.String())
	}
}

func TestBinaryBearerTokenHealthExempt(t *testing.T) {
	p := startBinary(t, "--sandbox", "--auth-token-file", writeFile(t, "token", []byte(bearerToken)), "--auth-exempt-health", "--listen", "127.0.0.1:0")
	out, code := grpcurlRun(t, p, "-d", `{"service":"connector.sms.v1.SmsConnector"}`, "grpc.health.v1.Health/Check")
	if code != 0 || !strings.Contains(out, "SERVING") {
		t.Errorf("health without a token (exit %d):\n%s", code, out)
	}
	if out, code := grpcurlRun(t, p, "list"); code != 0 || !strings.Contains(out, "connector.sms.v1.SmsConnector") {
		t.Errorf("reflection without a token (exit %d):\n%s", code, out)
	}
	out, code = grpcurlRun(t, p, "-format-error", "-d", `{"to":"+15005550006","usage_type":"USAGE_TYPE_SIGN_IN","payload":{"code":"1"}}`, "connector.sms.v1.SmsConnector/SendMessage")
	if code == 0 || !strings.Contains(out, `"code": 16`) || !strings.Contains(out, `"reason": "UNAUTHENTICATED"`) {
		t.Errorf("SendMessage without a token (exit %d):\n%s", code, out)
	}
	p.Stop(t)
}

func TestBinaryMutualTLS(t *testing.T) {
	emu := twiliotest.NewServer()
	defer emu.Close()
	ca, otherCA := testpki.NewCA(t, "platform CA"), testpki.NewCA(t, "another CA")
	srv, good, foreign := ca.Server(t), ca.Client(t, "platform"), otherCA.Client(t, "intruder")
	p := startBinary(t, "--config", twilioConfigFile(t), "--twilio-api-url", emu.URL, "--listen", "127.0.0.1:0",
		"--tls-cert", writeFile(t, "cert.pem", srv.CertPEM), "--tls-key", writeFile(t, "key.pem", srv.KeyPEM),
		"--tls-client-ca", writeFile(t, "ca.pem", ca.CertPEM))
	tlsClient := func(cfg *tls.Config) credentials.TransportCredentials {
		cfg.RootCAs, cfg.ServerName, cfg.MinVersion = ca.Pool(), "localhost", tls.VersionTLS12
		return credentials.NewTLS(cfg)
	}
	for _, tt := range []struct {
		name  string
		creds credentials.TransportCredentials
	}{
		{"no client certificate", tlsClient(&tls.Config{})},
		{"a certificate from another CA", tlsClient(&tls.Config{GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &foreign.TLS, nil // presented whatever the server asks for, as a hostile client does
		}})},
		{"plaintext", insecure.NewCredentials()},
	} {
		_, client := clientTo(t, p.Addr, tt.creds)
		if _, err := client.SendMessage(rpcCtx(t), sendReq("+14155550123")); status.Code(err) != codes.Unavailable {
			t.Errorf("%s: %v, want UNAVAILABLE (the TLS handshake fails)", tt.name, err)
		}
	}
	if n := emu.Requests(); n != 0 {
		t.Fatalf("%d requests reached Twilio without a valid client certificate", n)
	}
	_, client := clientTo(t, p.Addr, tlsClient(&tls.Config{Certificates: []tls.Certificate{good.TLS}}))
	if _, err := client.SendMessage(rpcCtx(t), sendReq("+14155550123")); err != nil {
		t.Fatalf("the CA's client certificate: %v", err)
	}
	if n := len(emu.Messages()); n != 1 {
		t.Errorf("the emulator accepted %d messages, want 1", n)
	}
	if !strings.Contains(p.Logs.String(), `"client_certificates":true`) {
		t.Errorf("the start-up log does not say client certificates are required:\n%s", p.Logs.String())
	}
	p.Stop(t)
}

// runBinary runs the binary to its end with args and extra environment, and returns its
// output and exit code.
func runBinary(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	bin := testbin.Build(t, "./cmd/sms-connector")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

func TestBinaryExposedAddressNeedsAuth(t *testing.T) {
	out, code := runBinary(t, nil, "--sandbox", "--listen", "0.0.0.0:0")
	if code == 0 || !strings.Contains(out, "refusing to serve on 0.0.0.0:") || !strings.Contains(out, "without caller authentication") ||
		!strings.Contains(out, "--insecure") || strings.Contains(out, "sms-connector serving") {
		t.Fatalf("0.0.0.0 without auth (exit %d), want a refusal saying why:\n%s", code, out)
	}
	for _, args := range [][]string{
		{"--insecure"},
		{"--auth-token-file", writeFile(t, "token", []byte(bearerToken))},
	} {
		p := startBinary(t, append([]string{"--sandbox", "--listen", "0.0.0.0:0"}, args...)...)
		p.Stop(t)
		if args[0] == "--insecure" && !strings.Contains(p.Logs.String(), "without caller authentication") {
			t.Errorf("--insecure on 0.0.0.0 is not warned about:\n%s", p.Logs.String())
		}
		if args[0] == "--auth-token-file" && !strings.Contains(p.Logs.String(), "clear text") {
			t.Errorf("a token without TLS on 0.0.0.0 is not warned about:\n%s", p.Logs.String())
		}
	}
}

func TestBinaryRefusesBadSecurityAndDefences(t *testing.T) {
	empty := writeFile(t, "empty", []byte(" \n"))
	twoWords := writeFile(t, "two", []byte("one two"))
	badPolicy := writeFile(t, "policy.json", []byte(`{"recipient":[{"max":0,"window":"30s"}],"recipent":[]}`))
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"empty token file", []string{"--auth-token-file", empty}, nil, "is empty"},
		{"token file of two words", []string{"--auth-token-file", twoWords}, nil, "more than one word"},
		{"missing token file", []string{"--auth-token-file", "/nonexistent/token"}, nil, "--auth-token-file"},
		{"certificate without key", []string{"--tls-cert", empty}, nil, "--tls-cert and --tls-key go together"},
		{"client CA without TLS", []string{"--tls-client-ca", empty}, nil, "--tls-client-ca needs --tls-cert"},
		{"unreadable certificate", []string{"--tls-cert", empty, "--tls-key", empty}, nil, "load the TLS certificate and key"},
		{"health exempt from nothing", []string{"--auth-exempt-health"}, nil, "none is on"},
		{"policy and no guard", []string{"--policy", badPolicy, "--no-guard"}, nil, "give one of them"},
		{"bad policy", []string{"--policy", badPolicy}, nil, "recipent"},
		{"negative idempotency window", []string{"--idempotency-window", "-1s"}, nil, "--idempotency-window"},
		{"tiny request limit", []string{"--max-request-bytes", "10"}, nil, "--max-request-bytes 10"},
		{"negative segments", []string{"--max-segments", "-1"}, nil, "--max-segments"},
		{"negative concurrency", nil, []string{"SMS_CONNECTOR_MAX_CONCURRENT_SENDS=-5"}, "--max-concurrent-sends"},
		{"auth flags in plugin mode", nil, []string{smsplugin.MagicCookieKey + "=" + smsplugin.MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS=1",
			"SMS_CONNECTOR_AUTH_TOKEN_FILE=" + empty}, "go-plugin's AutoMTLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runBinary(t, tt.env, append(tt.args, "--sandbox", "--listen", "127.0.0.1:0")...)
			if code == 0 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, want a failure saying %q:\n%s", code, tt.want, out)
			}
			if strings.Contains(out, "sms-connector serving") {
				t.Errorf("it served first:\n%s", out)
			}
		})
	}
}

// TestBinaryGracefulStopUnderLoad: SIGTERM while 200 sends wait on a slow Twilio. Every send
// that reached the emulator completes and is answered; none is cut off; the process exits 0.
func TestBinaryGracefulStopUnderLoad(t *testing.T) {
	const sends = 200
	emu := twiliotest.NewServer()
	defer emu.Close()
	emu.SetLatency(2 * time.Second) // long enough for all of them to be in flight at once
	policy := writeFile(t, "policy.json", []byte(`{"recipient":[{"max":1000,"window":"1m"}],"prefix":[{"max":1000,"window":"1h"}]}`))
	p := startBinary(t, "--config", twilioConfigFile(t), "--twilio-api-url", emu.URL, "--policy", policy, "--listen", "127.0.0.1:0")
	_, client := clientTo(t, p.Addr, insecure.NewCredentials())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a guard against a hang
	defer cancel()
	var wg sync.WaitGroup
	resps := make([]*smsv1.SendMessageResponse, sends)
	errs := make([]error, sends)
	for i := range sends {
		wg.Go(func() {
			r := sendReq(fmt.Sprintf("+1415555%04d", i))
			r.Payload.Code = fmt.Sprint(100000 + i)
			resps[i], errs[i] = client.SendMessage(ctx, r)
		})
	}
	for emu.Requests() < sends { // every send has reached "Twilio" and waits for its answer
		select {
		case <-ctx.Done():
			t.Fatalf("only %d of %d sends reached the emulator", emu.Requests(), sends)
		case <-time.After(5 * time.Millisecond):
		}
	}
	p.Stop(t)
	wg.Wait()
	sids := map[string]bool{}
	for _, m := range emu.Messages() {
		sids[m.Sid] = true
	}
	for i := range sends {
		switch {
		case errs[i] != nil:
			t.Errorf("send %d reached Twilio but was not answered: %v", i, errs[i])
		case !sids[resps[i].MessageId]:
			t.Errorf("send %d was answered %s, which the emulator never accepted", i, resps[i].MessageId)
		}
	}
	if len(sids) != sends {
		t.Errorf("the emulator accepted %d messages, want %d", len(sids), sends)
	}
	if !strings.Contains(p.Logs.String(), "shutting down: finishing in-flight RPCs") {
		t.Errorf("no graceful shutdown in the log:\n%s", p.Logs.String())
	}
}

// TestBinaryDebugLogsHoldNoSecrets: a debug-level run with an API-key config and a bearer
// token, through successes, Twilio refusals, auth failures and invalid configs carrying
// secrets, never writes the API secret, the auth token or the bearer token.
func TestBinaryDebugLogsHoldNoSecrets(t *testing.T) {
	emu := twiliotest.NewServer(twiliotest.WithAPIKey(binKeySID, binKeySecret))
	defer emu.Close()
	cfg := map[string]any{
		"accountSID": twiliotest.SandboxAccountSID, "apiKeySID": binKeySID, "apiKeySecret": binKeySecret,
		"from":      twiliotest.FromValid,
		"templates": []any{map[string]any{"usageType": "Generic", "content": "Your code is {{code}}."}},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, "--config", writeFile(t, "twilio.json", raw), "--twilio-api-url", emu.URL, "--log-level", "debug",
		"--auth-token-file", writeFile(t, "token", []byte(bearerToken)), "--listen", "127.0.0.1:0")
	_, client := clientTo(t, p.Addr, insecure.NewCredentials())
	authed := metadata.AppendToOutgoingContext(rpcCtx(t), "authorization", "Bearer "+bearerToken)

	if _, err := client.SendMessage(authed, sendReq("+14155550123")); err != nil {
		t.Fatalf("send: %v", err)
	}
	_, _ = client.SendMessage(authed, sendReq(twiliotest.ToInvalid))                                                   // Twilio 21211
	_, _ = client.SendMessage(metadata.AppendToOutgoingContext(rpcCtx(t), "authorization", "Bearer x"), sendReq("+1")) // refused
	// Per-request configs with secrets: one Twilio rejects (a wrong secret), one that is invalid.
	for _, edit := range []func(m map[string]any){
		func(m map[string]any) { m["apiKeySecret"] = strings.ToLower(binKeySecret) },
		func(m map[string]any) { m["authToken"] = binKeySecret + "!"; m["host"] = "evil.example" },
	} {
		m := map[string]any{}
		for k, v := range cfg {
			m[k] = v
		}
		edit(m)
		r := sendReq("+14155550125")
		b, _ := json.Marshal(m)
		r.Config = mustStructJSON(t, b)
		if _, err := client.SendMessage(authed, r); err == nil {
			t.Errorf("a send with a broken config succeeded")
		}
	}
	p.Stop(t)
	logs := p.Logs.String()
	assertNoSecrets(t, logs, binKeySecret, strings.ToLower(binKeySecret), bearerToken, twiliotest.SandboxAuthToken)
	for _, want := range []string{`"error.reason":"PROVIDER_AUTH_FAILED"`, `"error.reason":"INVALID_CONFIG"`, `"error.reason":"UNAUTHENTICATED"`, `"level":"debug"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the debug log lacks %s, so the scan proves less than it should:\n%s", want, logs)
		}
	}
}

// mustStructJSON decodes a JSON object into the Struct a request carries.
func mustStructJSON(t *testing.T, b []byte) *structpb.Struct {
	t.Helper()
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(b, s); err != nil {
		t.Fatal(err)
	}
	return s
}
