package smsplugin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/server"
)

func TestMain(m *testing.M) {
	// go-plugin's own plugin.Serve, in its test mode (TestGRPCPluginUnderGoPluginServe), copies
	// pipes it never closes; everything of this package's must be gone.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/hashicorp/go-plugin.copyChan"))
}

// testTimeout bounds each test's calls so a bug hangs no test forever; nothing asserts on time.
const testTimeout = time.Minute

// reHandshake is the handshake line: core 1, app 1, network, address, grpc, optional cert.
var reHandshake = regexp.MustCompile(`^1\|1\|(unix|tcp)\|([^|]+)\|grpc(?:\|([A-Za-z0-9+/]+))?\n$`)

// env is a test environment: a map behind getenv.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// hostEnv is what a host of this contract sets, plus extra.
func hostEnv(t *testing.T, extra env) env {
	t.Helper()
	dir, err := os.MkdirTemp("", "sp") // short: a socket path has at most ~107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := env{MagicCookieKey: MagicCookieValue, EnvProtocolVersions: "1", EnvUnixSocketDir: dir}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

// clientCert is a host's AutoMTLS certificate: its PEM for PLUGIN_CLIENT_CERT and the pair.
func clientCert(t *testing.T) (string, tls.Certificate) {
	t.Helper()
	cert, err := selfSignedCert()
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})), cert
}

// running is a plugin served by Serve in this process.
type running struct {
	network, addr string
	serverCert    *x509.Certificate // under AutoMTLS
	done          chan error        // Serve's result
	cancel        context.CancelFunc
}

// startServe runs Serve for c with environment e and reads the handshake line.
func startServe(t *testing.T, c connector.SmsConnector, e env) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &running{done: make(chan error, 1), cancel: cancel}
	go func() {
		err := Serve(ctx, ServeOptions{
			Server: server.Options{Connector: c, DefaultConfig: json.RawMessage(`{"templates":[]}`)},
			Stdout: pw, Getenv: e.get,
		})
		pw.CloseWithError(errors.New("Serve returned"))
		r.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no handshake line: %v (Serve: %v)", err, <-r.done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }() // nothing else is written; drain anyway
	m := reHandshake.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("handshake line %q", line)
	}
	r.network, r.addr = m[1], m[2]
	if m[3] != "" {
		der, err := base64.RawStdEncoding.DecodeString(m[3])
		if err != nil {
			t.Fatalf("certificate field: %v", err)
		}
		if r.serverCert, err = x509.ParseCertificate(der); err != nil {
			t.Fatalf("certificate field: %v", err)
		}
	}
	return r
}

// dial connects to r, with TLS when creds is set.
func (r *running) dial(t *testing.T, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	target := r.addr
	if r.network == "unix" {
		target = "unix://" + r.addr
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// hostCreds is the host's side of AutoMTLS: its certificate, trusting only the plugin's.
func hostCreds(r *running, cert tls.Certificate) credentials.TransportCredentials {
	roots := x509.NewCertPool()
	roots.AddCert(r.serverCert)
	return credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12})
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// shutdown calls GRPCController.Shutdown as go-plugin's host does, and waits for Serve.
func shutdown(t *testing.T, r *running, conn *grpc.ClientConn) {
	t.Helper()
	if err := conn.Invoke(ctxFor(t), "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-r.done; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	r.done <- nil // for the cleanup
}

func TestServeTransports(t *testing.T) {
	pemCert, cert := clientCert(t)
	tests := []struct {
		name    string
		env     env
		network string
		mtls    bool
	}{
		{"unix plaintext", nil, "unix", false},
		{"unix AutoMTLS", env{EnvClientCert: pemCert}, "unix", true},
		{"tcp plaintext", env{EnvNetwork: "tcp"}, "tcp", false},
		{"tcp AutoMTLS in a port range", env{EnvNetwork: "tcp", EnvClientCert: pemCert, EnvMinPort: "0", EnvMaxPort: "0"}, "tcp", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake()
			r := startServe(t, fake, hostEnv(t, tt.env))
			if r.network != tt.network || (r.serverCert != nil) != tt.mtls {
				t.Fatalf("handshake: network %s, certificate %v", r.network, r.serverCert != nil)
			}
			if tt.network == "tcp" && !strings.HasPrefix(r.addr, "127.0.0.1:") {
				t.Errorf("tcp address %s is not loopback", r.addr)
			}
			var creds credentials.TransportCredentials
			if tt.mtls {
				creds = hostCreds(r, cert)
				// Without the host's certificate, nothing gets through.
				plain := r.dial(t, nil)
				if _, err := healthpb.NewHealthClient(plain).Check(ctxFor(t), &healthpb.HealthCheckRequest{Service: HealthService}); err == nil {
					t.Error("a plaintext client got through AutoMTLS")
				}
				_, stranger := clientCert(t)
				if _, err := healthpb.NewHealthClient(r.dial(t, hostCreds(r, stranger))).Check(ctxFor(t), &healthpb.HealthCheckRequest{Service: HealthService}); err == nil {
					t.Error("a client with another certificate got through AutoMTLS")
				}
			}
			conn := r.dial(t, creds)
			for _, svc := range []string{HealthService, server.ServiceName} {
				resp, err := healthpb.NewHealthClient(conn).Check(ctxFor(t), &healthpb.HealthCheckRequest{Service: svc})
				if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Fatalf("health %q: %v %v", svc, resp, err)
				}
			}
			// go-plugin's host opens the stdio stream at once; it must not hold the shutdown.
			stdio, err := conn.NewStream(ctxFor(t), &grpc.StreamDesc{ServerStreams: true}, "/plugin.GRPCStdio/StreamStdio")
			if err != nil {
				t.Fatal(err)
			}
			if err := stdio.SendMsg(&emptypb.Empty{}); err != nil {
				t.Fatal(err)
			}
			_ = stdio.CloseSend()

			c := NewClient(conn)
			rec, err := c.Send(ctxFor(t), &connector.Message{To: "+15005550006", UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "123456"}})
			if err != nil || rec.MessageID != "FAKE1" || rec.To != "+15005550006" || rec.Encoding != connector.EncodingGSM7 {
				t.Fatalf("Send = %+v, %v", rec, err)
			}
			if got := fake.messages(); len(got) != 1 || got[0].Payload.Code != "123456" || string(got[0].Config) != `{"templates":[]}` {
				t.Errorf("the connector got %+v (want the default config)", got)
			}
			shutdown(t, r, conn)
			if err := stdio.RecvMsg(&emptypb.Empty{}); err == nil {
				t.Error("the stdio stream sent something")
			}
			if tt.network == "unix" {
				if _, err := os.Stat(r.addr); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("socket %s left behind: %v", r.addr, err)
				}
			}
		})
	}
}

func TestClientOverTheWire(t *testing.T) {
	fake := newFake()
	r := startServe(t, fake, hostEnv(t, nil))
	conn := r.dial(t, nil)
	c := NewClient(conn)

	t.Run("typed error", func(t *testing.T) {
		_, err := c.Send(ctxFor(t), &connector.Message{To: toNoGeo, UsageType: connector.UsageRegister, Payload: connector.Payload{Code: "1"}})
		var ce *connector.Error
		if !errors.As(err, &ce) {
			t.Fatalf("err = %T %v, not a *connector.Error", err, err)
		}
		if ce.Reason != connector.ReasonCountryNotPermitted || ce.Provider != "fake" || ce.ProviderCode != "21408" ||
			ce.MoreInfo != "https://example.com/21408" || ce.Message != "the account may not send to this country" {
			t.Errorf("error = %+v", ce)
		}
		if errors.Is(err, context.Canceled) {
			t.Error("the connector's cause crossed the wire")
		}
	})
	t.Run("invalid request", func(t *testing.T) {
		_, err := c.Send(ctxFor(t), &connector.Message{To: "nope", Payload: connector.Payload{Code: "1"}})
		var ce *connector.Error
		if !errors.As(err, &ce) || ce.Reason != connector.ReasonInvalidRequest || len(ce.Violations) != 2 ||
			ce.Violations[0].Field != "to" || ce.Violations[1].Field != "usage_type" {
			t.Errorf("err = %+v", err)
		}
	})
	t.Run("invalid per-request config, field paths of the config", func(t *testing.T) {
		_, err := c.Send(ctxFor(t), &connector.Message{To: "+15005550006", UsageType: connector.UsageSignIn,
			Payload: connector.Payload{Code: "1"}, Config: json.RawMessage(`{"bad":true}`)})
		var ce *connector.Error
		if !errors.As(err, &ce) || ce.Reason != connector.ReasonInvalidConfig || len(ce.Violations) != 1 || ce.Violations[0].Field != "templates[0].content" {
			t.Errorf("err = %+v", err)
		}
	})
	t.Run("ValidateConfig", func(t *testing.T) {
		tests := []struct {
			cfg    string
			fields []string
		}{
			{`{"ok":true}`, nil},
			{`{"bad":true}`, []string{"templates[0].content"}},
			{`[1,2]`, []string{""}},
			{``, []string{""}},
		}
		for _, tt := range tests {
			vs, err := c.ValidateConfig(ctxFor(t), json.RawMessage(tt.cfg))
			var fields []string
			for _, v := range vs {
				fields = append(fields, v.Field)
			}
			if err != nil || strings.Join(fields, ",") != strings.Join(tt.fields, ",") || (tt.fields == nil) != (vs == nil) {
				t.Errorf("ValidateConfig(%s) = %+v, %v", tt.cfg, vs, err)
			}
		}
	})
	t.Run("Metadata", func(t *testing.T) {
		md, err := c.Metadata(ctxFor(t))
		if err != nil || md.ID != fakeID || md.Name["en"] != "Fake" || md.ConfigSchema["type"] != "object" || len(md.UsageTypes) != len(connector.UsageTypes()) {
			t.Errorf("Metadata = %+v, %v", md, err)
		}
	})
	t.Run("the caller's cancellation crosses the wire", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxFor(t))
		errc := make(chan error, 1)
		go func() {
			_, err := c.Send(ctx, &connector.Message{To: "+15005550006", UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: codeBlock}})
			errc <- err
		}()
		<-fake.entered
		cancel()
		err := <-errc
		if connector.ReasonOf(err) != connector.ReasonCancelled || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want CANCELLED wrapping context.Canceled", err)
		}
	})
	t.Run("reflection describes go-plugin's services", func(t *testing.T) {
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		defer stream.CloseSend()
		for _, sym := range []string{"plugin.GRPCController", "plugin.GRPCStdio", server.ServiceName, "grpc.health.v1.Health"} {
			if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: sym}}); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.Recv()
			if err != nil || resp.GetErrorResponse() != nil || len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
				t.Errorf("reflection of %s: %v %v", sym, resp.GetErrorResponse(), err)
			}
		}
	})
	shutdown(t, r, conn)
}

// TestShutdownLetsCallsInFlightFinish proves the difference with go-plugin's own plugin, whose
// Shutdown cuts the calls in flight: here a send that started before Shutdown completes.
func TestShutdownLetsCallsInFlightFinish(t *testing.T) {
	fake := newFake()
	r := startServe(t, fake, hostEnv(t, nil))
	conn := r.dial(t, nil)
	watchCtx, stopWatching := context.WithCancel(ctxFor(t))
	watch, err := healthpb.NewHealthClient(conn).Watch(watchCtx, &healthpb.HealthCheckRequest{Service: HealthService})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health watch: %v %v", st, err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := NewClient(conn).Send(ctxFor(t), &connector.Message{To: "+15005550006", UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: codeBlock}})
		errc <- err
	}()
	<-fake.entered
	if err := conn.Invoke(ctxFor(t), "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// The plugin is draining: health says so while the send still runs.
	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health watch after Shutdown: %v %v", st, err)
	}
	close(fake.release)
	if err := <-errc; err != nil {
		t.Errorf("the send in flight failed: %v", err)
	}
	stopWatching() // the watch is a call in flight too: it would hold the graceful stop
	if err := <-r.done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	r.done <- nil
}

func TestCheckHandshake(t *testing.T) {
	tests := []struct {
		name string
		env  env
		want string // "" = accepted; else a part of the error
	}{
		{"ours", env{MagicCookieKey: MagicCookieValue, EnvProtocolVersions: "1"}, ""},
		{"no versions offered", env{MagicCookieKey: MagicCookieValue}, ""},
		{"several versions", env{MagicCookieKey: MagicCookieValue, EnvProtocolVersions: "3,2,1"}, ""},
		{"spaces", env{MagicCookieKey: MagicCookieValue, EnvProtocolVersions: "2, 1"}, ""},
		{"unsupported version", env{MagicCookieKey: MagicCookieValue, EnvProtocolVersions: "7"}, "speaks plugin protocol version(s) 7, this connector speaks 1"},
		{"garbage versions", env{MagicCookieKey: MagicCookieValue, EnvProtocolVersions: "x"}, "PLUGIN_PROTOCOL_VERSIONS"},
		{"wrong cookie", env{MagicCookieKey: "nope", EnvProtocolVersions: "1"}, "SMS_CONNECTOR_PLUGIN has the wrong value"},
		{"another kind of host", env{EnvProtocolVersions: "1"}, "SMS_CONNECTOR_PLUGIN is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckHandshake(tt.env.get)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("the message is not one line: %q", err)
			}
		})
	}
	if !Launched(env{MagicCookieKey: "x"}.get) || !Launched(env{EnvProtocolVersions: "1"}.get) || Launched(env{}.get) {
		t.Error("Launched does not follow the cookie and PLUGIN_PROTOCOL_VERSIONS")
	}
}

func TestServeRefusesBeforeTheHandshake(t *testing.T) {
	tests := []struct {
		name string
		env  env
		want string
	}{
		{"wrong cookie", env{MagicCookieKey: "x"}, "wrong value"},
		{"unsupported version", env{EnvProtocolVersions: "2"}, "this connector speaks 1"},
		{"unknown network", env{EnvNetwork: "quic"}, "want unix or tcp"},
		{"bad port", env{EnvNetwork: "tcp", EnvMinPort: "ten"}, "not a port number"},
		{"empty port range", env{EnvNetwork: "tcp", EnvMinPort: "20", EnvMaxPort: "10"}, "is above"},
		{"client cert that is not PEM", env{EnvClientCert: "garbage"}, "holds no PEM certificate"},
		{"unknown socket group", env{EnvUnixSocketGroup: "no-such-group-here"}, "no-such-group-here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout bytes.Buffer
			err := Serve(ctxFor(t), ServeOptions{Server: server.Options{Connector: newFake()}, Stdout: &stdout, Getenv: hostEnv(t, tt.env).get})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("wrote %q before failing", stdout.String())
			}
		})
	}
	if err := Serve(ctxFor(t), ServeOptions{Server: server.Options{Connector: newFake()}}); err == nil {
		t.Error("Serve without Stdout did not fail")
	}
}

func TestServeSharesTheSocketWithAGroup(t *testing.T) {
	gid := os.Getgid()
	r := startServe(t, newFake(), hostEnv(t, env{EnvUnixSocketGroup: strconv.Itoa(gid)}))
	fi, err := os.Stat(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o660 {
		t.Errorf("socket mode = %o, want 660", perm)
	}
	shutdown(t, r, r.dial(t, nil))
}

func TestServeStopsWhenTheContextEnds(t *testing.T) {
	r := startServe(t, newFake(), hostEnv(t, nil))
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("Serve = %v, want nil after a graceful stop", err)
	}
	r.done <- nil
	if _, err := os.Stat(r.addr); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket %s left behind: %v", r.addr, err)
	}
}
