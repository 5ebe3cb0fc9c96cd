package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/sms-connector/sms-connector/connector"
)

// Auth says how the server authenticates its callers. The zero value authenticates nobody:
// every caller gets in, which is right only where nobody else can connect (a unix socket of
// mode 0600, loopback on a single-user machine, a plugin's AutoMTLS) or where something in
// front of the server authenticates them.
type Auth struct {
	// Token, when not empty, is the bearer token every RPC must carry, as the metadata
	// "authorization: Bearer <token>". It is compared in constant time; a call without it, or
	// with another, fails with UNAUTHENTICATED (reason UNAUTHENTICATED) and runs nothing.
	Token string
	// ExemptHealth serves grpc.health.v1 and server reflection without credentials (no token,
	// no client certificate), for probes and load balancers that have none. Off, they require
	// the same credentials as SmsConnector.
	ExemptHealth bool
}

// exemptMethods are the method prefixes Auth.ExemptHealth leaves open.
var exemptMethods = []string{"/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"}

// exempt reports whether fullMethod is health or reflection.
func exempt(fullMethod string) bool {
	for _, p := range exemptMethods {
		if strings.HasPrefix(fullMethod, p) {
			return true
		}
	}
	return false
}

// LoadTLS reads the server's certificate chain and private key (PEM files) and, when
// clientCAFile is not empty, the CA certificates (PEM) that callers' client certificates must
// chain to: with them, the server requires a verified client certificate of every caller
// (mutual TLS), and a certificate from any other CA fails the TLS handshake. The result is for
// Options.TLS. TLS 1.2 is the oldest version accepted.
func LoadTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both a certificate and its private key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load the TLS certificate and key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("read the client CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the client CA file %s holds no PEM certificate", clientCAFile)
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	return cfg, nil
}

// authenticator checks the credentials of each call; see Auth and Options.TLS.
type authenticator struct {
	token       [sha256.Size]byte // SHA-256 of Auth.Token, so the comparison takes the same time whatever the length
	hasToken    bool
	clientCerts bool // a verified client certificate is required
	exemptOpen  bool // health and reflection need nothing
}

// newAuthenticator returns the authenticator of o, or nil when o asks for none. With client
// CAs and ExemptHealth, it lowers the handshake's requirement to "verify a certificate if one
// is given" on a copy of o.TLS, so that a probe without one reaches health, and requires the
// verified certificate itself for every other method.
func newAuthenticator(o *Options) (*authenticator, error) {
	a := &authenticator{exemptOpen: o.Auth.ExemptHealth}
	if o.Auth.Token != "" {
		if strings.TrimSpace(o.Auth.Token) != o.Auth.Token || strings.ContainsAny(o.Auth.Token, "\r\n") {
			return nil, errors.New("server: Options.Auth.Token has leading or trailing white space, which no client can send")
		}
		a.token, a.hasToken = sha256.Sum256([]byte(o.Auth.Token)), true
	}
	if o.TLS != nil && o.TLS.ClientCAs != nil {
		switch o.TLS.ClientAuth {
		case tls.NoClientCert, tls.RequestClientCert, tls.RequireAnyClientCert:
			return nil, errors.New("server: Options.TLS has ClientCAs but does not verify client certificates (set ClientAuth to tls.RequireAndVerifyClientCert)")
		}
		a.clientCerts = true
		if a.exemptOpen && o.TLS.ClientAuth == tls.RequireAndVerifyClientCert {
			o.TLS = o.TLS.Clone()
			o.TLS.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	if !a.hasToken && !a.clientCerts {
		return nil, nil
	}
	return a, nil
}

// unary is the auth interceptor of unary calls: go-grpc-middleware's, applied to every method
// but the exempt ones.
func (a *authenticator) unary() grpc.UnaryServerInterceptor {
	return selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(a.authenticate), selector.MatchFunc(a.applies))
}

// stream is the same for streaming calls (health Watch, reflection).
func (a *authenticator) stream() grpc.StreamServerInterceptor {
	return selector.StreamServerInterceptor(auth.StreamServerInterceptor(a.authenticate), selector.MatchFunc(a.applies))
}

// applies reports whether a call must authenticate.
func (a *authenticator) applies(_ context.Context, c interceptors.CallMeta) bool {
	return !(a.exemptOpen && exempt(c.FullMethod()))
}

// authenticate is the auth.AuthFunc: it checks the client certificate, then the bearer token.
// Its errors are UNAUTHENTICATED statuses with reason UNAUTHENTICATED; they never quote what
// the caller sent.
func (a *authenticator) authenticate(ctx context.Context) (context.Context, error) {
	if a.clientCerts && !verifiedClient(ctx) {
		return nil, unauthenticated("a client certificate signed by the server's client CA is required")
	}
	if !a.hasToken {
		return ctx, nil
	}
	tok, err := auth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return nil, unauthenticated(`a bearer token is required: send the metadata "authorization: Bearer <token>"`)
	}
	got := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(got[:], a.token[:]) != 1 {
		return nil, unauthenticated("the bearer token is not valid")
	}
	return ctx, nil
}

// verifiedClient reports whether the call came over TLS with a client certificate that
// verified against the server's client CAs.
func verifiedClient(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	return ok && len(info.State.VerifiedChains) > 0
}

// unauthenticated is the status error of a call without valid credentials.
func unauthenticated(msg string) error {
	return Status(&connector.Error{Reason: connector.ReasonUnauthenticated, Message: msg}).Err()
}
