package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/testpki"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// authToken is a distinctive bearer token: no log line may ever contain it.
const authToken = "Sh0uldNeverBeL0gged-b3arer-t0ken"

// authServer serves a fake connector with opts edited by edit and returns its address, the
// fake and the captured logs.
func authServer(t *testing.T, edit func(*Options)) (string, *fakeConnector, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	fake := &fakeConnector{}
	opts := Options{Connector: fake, Logger: zap.New(core)}
	edit(&opts)
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		<-served
		for _, e := range logs.All() {
			if strings.Contains(e.Message+" "+strings.Join(contextStrings(e), " "), authToken) {
				t.Errorf("a log line carries the bearer token: %s %v", e.Message, e.ContextMap())
			}
		}
	})
	return l.Addr().String(), fake, logs
}

// contextStrings returns a log entry's fields as key=value strings.
func contextStrings(e observer.LoggedEntry) []string {
	var out []string
	for k, v := range e.ContextMap() {
		out = append(out, k+"="+fmt.Sprint(v))
	}
	return out
}

// withToken returns ctx carrying "authorization: <value>".
func withToken(ctx context.Context, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", value)
}

// calls are the RPCs an authentication test makes: SendMessage, health and reflection.
type calls struct {
	send, health, reflect error
}

func callAll(t *testing.T, ctx context.Context, conn *grpc.ClientConn) calls {
	t.Helper()
	var c calls
	_, c.send = smsv1.NewSmsConnectorClient(conn).SendMessage(ctx, validRequest(t))
	_, c.health = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: ServiceName})
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err == nil {
		// A Send that meets a stream the server has ended returns io.EOF; Recv has the status.
		if err = stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err == nil || errors.Is(err, io.EOF) {
			_, err = stream.Recv()
		}
		_ = stream.CloseSend()
	}
	c.reflect = err
	return c
}

// wantUnauthenticated checks that err is UNAUTHENTICATED with reason UNAUTHENTICATED.
func wantUnauthenticated(t *testing.T, what string, err error) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.Unauthenticated {
		t.Errorf("%s: code %s (%q), want UNAUTHENTICATED", what, st.Code(), st.Message())
		return
	}
	if d := detailsOf(t, st); d.info == nil || d.info.Reason != string(connector.ReasonUnauthenticated) || d.info.Domain != ErrorDomain {
		t.Errorf("%s: ErrorInfo %v, want reason UNAUTHENTICATED", what, d.info)
	}
	if strings.Contains(st.Message(), authToken) {
		t.Errorf("%s: the status quotes the token", what)
	}
}

func TestBearerToken(t *testing.T) {
	for _, exemptHealth := range []bool{false, true} {
		t.Run(map[bool]string{false: "health requires the token", true: "health exempt"}[exemptHealth], func(t *testing.T) {
			addr, fake, logs := authServer(t, func(o *Options) { o.Auth = Auth{Token: authToken, ExemptHealth: exemptHealth} })
			conn := testutil.Dial(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			for _, tt := range []struct {
				name, header string
			}{
				{"no credentials", ""},
				{"a wrong token", "Bearer " + authToken + "x"},
				{"a prefix of the token", "Bearer " + authToken[:10]},
				{"the token without its scheme", authToken},
				{"another scheme", "Basic " + authToken},
				{"an empty bearer", "Bearer "},
			} {
				ctx := ctxFor(t)
				if tt.header != "" {
					ctx = withToken(ctx, tt.header)
				}
				c := callAll(t, ctx, conn)
				wantUnauthenticated(t, tt.name+": SendMessage", c.send)
				if exemptHealth {
					if c.health != nil || c.reflect != nil {
						t.Errorf("%s: health %v, reflection %v; want both open", tt.name, c.health, c.reflect)
					}
				} else {
					wantUnauthenticated(t, tt.name+": health", c.health)
					wantUnauthenticated(t, tt.name+": reflection", c.reflect)
				}
			}
			if n := len(fake.messages()); n != 0 {
				t.Fatalf("the connector was called %d times without valid credentials", n)
			}
			for _, scheme := range []string{"Bearer ", "bearer "} {
				c := callAll(t, withToken(ctxFor(t), scheme+authToken), conn)
				if c.send != nil || c.health != nil || c.reflect != nil {
					t.Errorf("%q + the token: SendMessage %v, health %v, reflection %v", scheme, c.send, c.health, c.reflect)
				}
			}
			if n := len(fake.messages()); n != 2 {
				t.Errorf("the connector was called %d times, want 2", n)
			}
			// The refusals are logged with their reason, like any failed call.
			if n := logs.FilterField(zap.String(fieldErrorReason, "UNAUTHENTICATED")).Len(); n == 0 {
				t.Error("no log line carries the UNAUTHENTICATED reason")
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	ca, otherCA := testpki.NewCA(t, "sms-connector test CA"), testpki.NewCA(t, "another CA")
	serverPair := ca.Server(t)
	serverTLS := func(exempt bool, token string) func(*Options) {
		return func(o *Options) {
			o.TLS = &tls.Config{Certificates: []tls.Certificate{serverPair.TLS}, ClientCAs: ca.Pool(),
				ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
			o.Auth = Auth{Token: token, ExemptHealth: exempt}
		}
	}
	client := func(certs ...tls.Certificate) credentials.TransportCredentials {
		return credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), Certificates: certs, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	}
	// forcing presents cert whatever CAs the server names (crypto/tls would otherwise withhold
	// a certificate the server's CertificateRequest does not accept), as a hostile client does.
	forcing := func(cert tls.Certificate) credentials.TransportCredentials {
		return credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }})
	}
	good, foreign := ca.Client(t, "platform"), otherCA.Client(t, "intruder")

	for _, exempt := range []bool{false, true} {
		t.Run(map[bool]string{false: "health requires a certificate", true: "health exempt"}[exempt], func(t *testing.T) {
			addr, fake, _ := authServer(t, serverTLS(exempt, ""))

			// A certificate from another CA never gets past the handshake: nothing is sent.
			c := callAll(t, ctxFor(t), testutil.Dial(t, addr, grpc.WithTransportCredentials(forcing(foreign.TLS))))
			for what, err := range map[string]error{"SendMessage": c.send, "health": c.health, "reflection": c.reflect} {
				if status.Code(err) != codes.Unavailable {
					t.Errorf("another CA's certificate: %s = %v, want UNAVAILABLE (handshake failure)", what, err)
				}
			}
			// A Go client holding only such a certificate does not present it: it is a client
			// without a certificate (below).
			c = callAll(t, ctxFor(t), testutil.Dial(t, addr, grpc.WithTransportCredentials(client(foreign.TLS))))
			if exempt {
				wantUnauthenticated(t, "another CA's certificate, withheld: SendMessage", c.send)
			} else if status.Code(c.send) != codes.Unavailable {
				t.Errorf("another CA's certificate, withheld: SendMessage = %v, want UNAVAILABLE", c.send)
			}

			// No certificate: refused in the handshake, or, with health exempt, at the method.
			c = callAll(t, ctxFor(t), testutil.Dial(t, addr, grpc.WithTransportCredentials(client())))
			if exempt {
				wantUnauthenticated(t, "no certificate: SendMessage", c.send)
				if c.health != nil || c.reflect != nil {
					t.Errorf("no certificate: health %v, reflection %v; want both open", c.health, c.reflect)
				}
			} else {
				for what, err := range map[string]error{"SendMessage": c.send, "health": c.health, "reflection": c.reflect} {
					if status.Code(err) != codes.Unavailable {
						t.Errorf("no certificate: %s = %v, want UNAVAILABLE (handshake failure)", what, err)
					}
				}
			}

			// Plaintext does not even speak TLS.
			if _, err := smsv1.NewSmsConnectorClient(testutil.Dial(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials()))).SendMessage(ctxFor(t), validRequest(t)); status.Code(err) != codes.Unavailable {
				t.Errorf("plaintext client: %v, want UNAVAILABLE", err)
			}
			if n := len(fake.messages()); n != 0 {
				t.Fatalf("the connector was called %d times without a valid certificate", n)
			}

			c = callAll(t, ctxFor(t), testutil.Dial(t, addr, grpc.WithTransportCredentials(client(good.TLS))))
			if c.send != nil || c.health != nil || c.reflect != nil {
				t.Errorf("the CA's client certificate: SendMessage %v, health %v, reflection %v", c.send, c.health, c.reflect)
			}
		})
	}

	t.Run("certificate and token together", func(t *testing.T) {
		addr, fake, _ := authServer(t, serverTLS(false, authToken))
		conn := testutil.Dial(t, addr, grpc.WithTransportCredentials(client(good.TLS)))
		_, err := smsv1.NewSmsConnectorClient(conn).SendMessage(ctxFor(t), validRequest(t))
		wantUnauthenticated(t, "certificate without the token", err)
		if _, err := smsv1.NewSmsConnectorClient(conn).SendMessage(withToken(ctxFor(t), "Bearer "+authToken), validRequest(t)); err != nil {
			t.Errorf("certificate and token: %v", err)
		}
		if n := len(fake.messages()); n != 1 {
			t.Errorf("the connector was called %d times, want 1", n)
		}
	})
}

func TestAuthOptions(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	pair := ca.Server(t)
	for _, tt := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"token with white space", func(o *Options) { o.Auth.Token = authToken + "\n" }, "white space"},
		{"client CAs not verified", func(o *Options) {
			o.TLS = &tls.Config{Certificates: []tls.Certificate{pair.TLS}, ClientCAs: ca.Pool(), ClientAuth: tls.RequestClientCert}
		}, "does not verify client certificates"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{Connector: &fakeConnector{}}
			tt.edit(&opts)
			if _, err := New(opts); err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), authToken) {
				t.Errorf("New = %v, want an error saying %q (without the token)", err, tt.want)
			}
		})
	}
}

func TestLoadTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	pair := ca.Server(t)
	cert := testpki.WriteFile(t, dir, "cert.pem", pair.CertPEM)
	key := testpki.WriteFile(t, dir, "key.pem", pair.KeyPEM)
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.CertPEM)
	notPEM := testpki.WriteFile(t, dir, "not.pem", []byte("hello"))

	cfg, err := LoadTLS(cert, key, "")
	if err != nil || cfg.ClientCAs != nil || cfg.ClientAuth != tls.NoClientCert || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("server TLS only: %+v, %v", cfg, err)
	}
	cfg, err = LoadTLS(cert, key, caFile)
	if err != nil || cfg.ClientCAs == nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("mutual TLS: %+v, %v", cfg, err)
	}
	for _, tt := range []struct{ cert, key, ca, want string }{
		{cert, "", "", "both a certificate and its private key"},
		{cert, caFile, "", "load the TLS certificate and key"},
		{cert, key, dir + "/missing.pem", "read the client CA file"},
		{cert, key, notPEM, "holds no PEM certificate"},
	} {
		if _, err := LoadTLS(tt.cert, tt.key, tt.ca); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadTLS(%q, %q, %q) = %v, want %q", tt.cert, tt.key, tt.ca, err, tt.want)
		}
	}
}
