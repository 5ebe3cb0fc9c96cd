// Package logtobridge serves Logto's HTTP SMS connector (@logto/connector-http-sms): Logto POSTs
// its SendMessageData as JSON ({"to", "type", "payload": {"code", "link", "locale",
// "uiLocales", ...}, "ip"}) with the Authorization header configured in its console, and takes
// any 2xx answer as sent. Each request becomes a connector.Message and is sent through the same
// served stack as a gRPC SendMessage (a Sender: the gRPC server of package server), with the
// server's default config, so every defence, log and metric of the connector applies.
//
// Failures answer an HTTP status chosen from the gRPC code (see HTTPStatus) and a JSON body
// ErrorBody with the ErrorInfo reason and the status message a gRPC caller gets (bounded, and
// safe to show an operator: Logto shows the body in its console). Requests are bounded: the
// body size, the JSON nesting (encoding/json's own bound, then the payload's variables rules),
// the content type (application/json only), the method (POST) and the path (PathLogtoSMS).
package logtobridge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// PathLogtoSMS is the path Logto's HTTP SMS connector is pointed at (its "endpoint" is
// https://HOST:PORT/logto/sms).
const PathLogtoSMS = "/logto/sms"

// DefaultMaxRequestBytes bounds a request body unless Options say otherwise; Logto's
// SendMessageData is a few hundred bytes.
const DefaultMaxRequestBytes = 256 << 10

// Server timeouts: a client that is slow to send its headers or body, or that keeps an idle
// connection, is cut off rather than holding a connection forever.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 16 << 10
)

// cancelledRequestWait bounds how long Shutdown waits, once its grace period has passed, for
// the requests still running to answer before it closes every connection.
const cancelledRequestWait = 5 * time.Second

// Sender sends a checked message through the served connector stack and returns the gRPC
// response or status error a SendMessage caller would get. *server.Server is one.
type Sender interface {
	Send(ctx context.Context, msg *connector.Message) (*smsv1.SendMessageResponse, error)
}

// Options configure New.
type Options struct {
	// Sender is the served stack. Required.
	Sender Sender
	// Token, when not empty, is the bearer token every request must carry as
	// "Authorization: Bearer <token>" (Logto's "Authorization Header" setting), compared in
	// constant time. A request without it, or with another, is answered 401 and sends nothing.
	Token string
	// TLS, when set, serves HTTPS with this configuration (the gRPC server's, from
	// --tls-cert/--tls-key; with client CAs, clients must present a verified certificate).
	TLS *tls.Config
	// MaxRequestBytes bounds the request body; 0 means DefaultMaxRequestBytes. A larger body
	// is answered 413.
	MaxRequestBytes int
	// Logger receives one line per request. Nil means no logging.
	Logger *zap.Logger
	// Instrument, when set, wraps the handler of a route (its path) for metrics and traces.
	Instrument func(route string, h http.Handler) http.Handler
	// Routes are more handlers served on the same listener, by path (a vendor's status
	// callbacks). Each authenticates its requests itself: Token does not apply to them (a
	// vendor calling back cannot send it). They are instrumented like PathLogtoSMS, and share
	// the listener's timeouts and graceful shutdown.
	Routes map[string]http.Handler
}

// Server is the HTTP bridge: build it with New, start it with Serve, stop it with Shutdown.
type Server struct {
	send     Sender
	token    [sha256.Size]byte // SHA-256 of Options.Token, so the comparison takes the same time whatever the length
	hasToken bool
	tls      *tls.Config
	maxBytes int64
	log      *zap.Logger
	http     *http.Server

	mu      sync.Mutex
	closing bool           // Shutdown has begun: no new request is counted in
	running sync.WaitGroup // requests being handled
}

// New builds the bridge.
func New(o Options) (*Server, error) {
	if o.Sender == nil {
		return nil, errors.New("logtobridge: Options.Sender is required")
	}
	if o.MaxRequestBytes < 0 {
		return nil, fmt.Errorf("logtobridge: Options.MaxRequestBytes is negative (%d)", o.MaxRequestBytes)
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	s := &Server{send: o.Sender, maxBytes: int64(o.MaxRequestBytes), log: o.Logger}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if o.Token != "" {
		if strings.TrimSpace(o.Token) != o.Token || strings.ContainsAny(o.Token, " \t\r\n") {
			return nil, errors.New("logtobridge: Options.Token has white space, which no client can send in a bearer token")
		}
		s.token, s.hasToken = sha256.Sum256([]byte(o.Token)), true
	}
	if o.TLS != nil {
		s.tls = o.TLS.Clone()
		s.tls.NextProtos = []string{"http/1.1"}
	}
	var logto http.Handler = http.HandlerFunc(s.serveLogto)
	if o.Instrument != nil {
		logto = o.Instrument(PathLogtoSMS, logto)
	}
	mux := http.NewServeMux()
	mux.Handle(PathLogtoSMS, logto)
	for path, h := range o.Routes {
		if path == PathLogtoSMS || path == "/" || !strings.HasPrefix(path, "/") || h == nil {
			return nil, fmt.Errorf("logtobridge: Options.Routes: cannot serve %q", path)
		}
		if o.Instrument != nil {
			h = o.Instrument(path, h)
		}
		mux.Handle(path, h)
	}
	mux.HandleFunc("/", s.serveNotFound)
	s.http = &http.Server{
		Handler:           s.counted(mux),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	return s, nil
}

// Handler returns the bridge's HTTP handler, for tests and for callers that serve it
// themselves.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve accepts connections on l (over TLS when Options.TLS is set) until Shutdown; it returns
// nil after Shutdown and an error if l fails.
func (s *Server) Serve(l net.Listener) error {
	if s.tls != nil {
		l = tls.NewListener(l, s.tls)
	}
	if err := s.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("logtobridge: serve: %w", err)
	}
	return nil
}

// Shutdown stops the bridge gracefully: the listeners close and the requests in flight finish
// before it returns. If ctx ends first, it waits up to cancelledRequestWait more for them to
// answer (the gRPC server's Shutdown, given the same deadline, cancels their sends: see
// server.Server.Send), then closes every connection.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	if err := s.http.Shutdown(ctx); err == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		s.running.Wait()
		close(done)
	}()
	t := time.NewTimer(cancelledRequestWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("HTTP requests still running after the shutdown grace: closing every connection", zap.Duration("waited", cancelledRequestWait))
	}
	_ = s.http.Close()
}

// counted counts the requests being handled, for Shutdown.
func (s *Server) counted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusServiceUnavailable, errShuttingDown)
			return
		}
		s.running.Add(1)
		s.mu.Unlock()
		defer s.running.Done()
		h.ServeHTTP(w, r)
	})
}

// authorized reports whether r carries "Authorization: Bearer <token>" with the bridge's
// token (always, when there is none).
func (s *Server) authorized(r *http.Request) bool {
	if !s.hasToken {
		return true
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return false
	}
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
}
