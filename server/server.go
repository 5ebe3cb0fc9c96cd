// Package server serves any connector.SmsConnector as the gRPC service
// connector.sms.v1.SmsConnector. It converts requests and responses, validates requests before
// a connector sees them, and maps every connector.Error to a gRPC status with AIP-193 details,
// bounded to fit any gRPC client's metadata limit (see Status). The conversions live in
// internal/protoconv, which the Go client in package smsplugin shares for the way back.
//
// It adds what every deployment needs once, for every connector: panic recovery, one log line
// per RPC, grpc.health.v1 and server reflection, a receive size limit, caller authentication
// (TLS, mutual TLS, a bearer token; see Auth) and graceful shutdown, which, when its grace
// ends, cancels the RPCs still running so that each answers its caller with a status (see
// Shutdown).
//
// # Logging
//
// Each RPC logs "started call" at debug level and "finished call" when it ends, at info level
// (warn or error for server-side failures, as go-grpc-middleware's DefaultServerCodeToLevel
// decides; health and reflection RPCs that succeed are demoted to debug). The finish line
// carries:
//
//	grpc.service, grpc.method, grpc.method_type, grpc.component, protocol, peer.address,
//	grpc.start_time, grpc.request.deadline (when set), grpc.code, grpc.time_ms,
//	connector.id,
//	sms.usage_type, sms.to (masked with connector.MaskPhone)   -- SendMessage only
//	grpc.error (the status as the client sees it), error.reason,
//	error.provider, error.provider_code                        -- failures only
//
// grpc.code is the code the caller saw: for a caller whose deadline passed or who cancelled,
// DEADLINE_EXCEEDED or CANCELLED, as its own gRPC library reported it (see lifetimeUnary).
//
// Request and response payloads are never logged: a request's config holds credentials. The
// cause of a connector.Error (its Err) is logged at debug level as error.cause; an error that
// is not a *connector.Error, and a recovered panic with its stack, at error level.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/protoconv"
)

// DefaultMaxRecvMsgSize is the largest request the server accepts unless Options say otherwise.
// A verification SMS request is a few KiB even with a large config; anything far bigger is a
// mistake or an attack, and gRPC refuses it with RESOURCE_EXHAUSTED before it is decoded.
const DefaultMaxRecvMsgSize = 256 << 10

// ServiceName is the full name of the served service, also its grpc.health.v1 service name.
const ServiceName = "connector.sms.v1.SmsConnector"

// Options configure New.
type Options struct {
	// Connector is the connector to serve. Required.
	Connector connector.SmsConnector
	// DefaultConfig is the connector configuration (a JSON object) used when a SendMessage
	// request carries none. Nil means none: such a request fails with CONFIG_MISSING.
	DefaultConfig json.RawMessage
	// Logger receives one line per RPC and the details callers never see. Nil means no logging.
	Logger *zap.Logger
	// MaxRecvMsgSize is the largest request in bytes; 0 means DefaultMaxRecvMsgSize.
	MaxRecvMsgSize int
	// ServerOptions are added after the server's own options (for example TLS credentials).
	ServerOptions []grpc.ServerOption
	// TLS, when set, serves over TLS with this configuration (see LoadTLS); with ClientCAs it
	// requires a verified client certificate of every caller (mutual TLS), unless
	// Auth.ExemptHealth leaves health and reflection open. Nil serves plaintext.
	TLS *tls.Config
	// Auth authenticates callers with a bearer token and says whether health and reflection
	// need credentials; see Auth. Failures are UNAUTHENTICATED with reason UNAUTHENTICATED.
	Auth Auth
	// StreamWorkers is how many long-lived goroutines serve RPCs; 0 means DefaultStreamWorkers,
	// a negative value none (a new goroutine per RPC, gRPC's default). See DefaultStreamWorkers.
	StreamWorkers int
}

// DefaultStreamWorkers is the default of Options.StreamWorkers. Without workers gRPC starts a
// new goroutine per RPC, whose stack grows again through a send's deep call chain
// (interceptors, connector, vendor SDK, net/http); a worker keeps its grown stack from one RPC
// to the next. When every worker is busy, an RPC gets its own goroutine as without workers, so
// the number bounds nothing; it only needs to cover the usual number of concurrent RPCs.
const DefaultStreamWorkers = 128

// maxStreamWorkers bounds Options.StreamWorkers: every worker is a goroutine from the start.
const maxStreamWorkers = 1 << 16

// Server is a gRPC server serving one connector, with health and reflection. Build it with
// New, start it with Serve and stop it with Shutdown.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
	log    *zap.Logger
	svc    *service
	auth   *authenticator // nil: every caller gets in

	// life is the parent of every RPC's context besides the caller's: Shutdown cancels it
	// (with cause errShutdown) when its grace period ends, so that each RPC still running
	// answers its caller with its own status.
	life    context.Context
	endLife context.CancelCauseFunc
}

// errShutdown is the cause of an RPC context that Shutdown cancelled.
var errShutdown = errors.New("the server is shutting down")

// cancelledRPCWait bounds how long Shutdown waits, once it has cancelled the RPCs still
// running, for them to answer before it closes every connection.
const cancelledRPCWait = 5 * time.Second

// New builds the gRPC server for opts.Connector: the interceptor chain (request log fields,
// logging, caller authentication, panic recovery), the SmsConnector service, grpc.health.v1
// with the overall status ("") and ServiceName SERVING, and server reflection. It asks the
// connector for its metadata once, to learn its id and to fail now rather than at the first
// GetMetadata if the metadata cannot be converted.
//
// A SmsConnector request that does not decode (a string that is not UTF-8, malformed wire
// data) is answered INVALID_ARGUMENT with reason INVALID_REQUEST and a BadRequest naming the
// fields, rather than gRPC's own INTERNAL; one larger than MaxRecvMsgSize is refused by gRPC
// with RESOURCE_EXHAUSTED before it is decoded.
func New(opts Options) (*Server, error) {
	if opts.MaxRecvMsgSize < 0 {
		return nil, fmt.Errorf("server: Options.MaxRecvMsgSize is negative (%d)", opts.MaxRecvMsgSize)
	}
	if opts.StreamWorkers > maxStreamWorkers {
		return nil, fmt.Errorf("server: Options.StreamWorkers is %d, more than %d", opts.StreamWorkers, maxStreamWorkers)
	}
	if opts.StreamWorkers == 0 {
		opts.StreamWorkers = DefaultStreamWorkers
	}
	if opts.StreamWorkers < 0 {
		opts.StreamWorkers = 0
	}
	if opts.MaxRecvMsgSize == 0 {
		opts.MaxRecvMsgSize = DefaultMaxRecvMsgSize
	}
	svc, err := newService(opts)
	if err != nil {
		return nil, err
	}
	authn, err := newAuthenticator(&opts)
	if err != nil {
		return nil, err
	}
	s := &Server{health: health.NewServer(), log: svc.log, svc: svc, auth: authn}
	s.life, s.endLife = context.WithCancelCause(context.Background())
	sopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(opts.MaxRecvMsgSize),
		grpc.ForceServerCodecV2(newRequestCodec()),
		grpc.NumStreamWorkers(uint32(opts.StreamWorkers)),
		grpc.ChainUnaryInterceptor(s.unaryInterceptors()...),
		grpc.ChainStreamInterceptor(s.streamInterceptors()...),
	}
	if opts.TLS != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	sopts = append(sopts, opts.ServerOptions...)
	s.grpc = grpc.NewServer(sopts...)

	smsv1.RegisterSmsConnectorServer(s.grpc, s.svc)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	reflection.Register(s.grpc)
	return s, nil
}

// Register registers the SmsConnector service alone, for opts.Connector, on reg: a gRPC server
// built elsewhere. It exists for go-plugin's own plugin.Serve, which builds its grpc.Server
// itself and registers health and reflection on it (package smsplugin's GRPCPlugin calls
// Register from its GRPCServer method). Requests are validated, the default config applies
// and every error follows the error model, as with New; but New's interceptors (the per-RPC
// log lines, caller authentication, panic recovery), its codec and its receive size limit are
// the other server's business, so Options.MaxRecvMsgSize, Options.ServerOptions, Options.TLS
// and Options.Auth are ignored, and opts.Logger only receives the causes of failed calls. New
// is the complete server; prefer it.
func Register(reg grpc.ServiceRegistrar, opts Options) error {
	svc, err := newService(opts)
	if err != nil {
		return err
	}
	smsv1.RegisterSmsConnectorServer(reg, svc)
	return nil
}

// newService checks the options New and Register share and builds the service. It asks the
// connector for its metadata once, to learn its id and to fail now rather than at the first
// GetMetadata if the metadata cannot be converted.
func newService(opts Options) (*service, error) {
	if opts.Connector == nil {
		return nil, errors.New("server: Options.Connector is required")
	}
	if len(opts.DefaultConfig) == 0 {
		opts.DefaultConfig = nil
	} else if err := checkJSONObject(opts.DefaultConfig); err != nil {
		return nil, fmt.Errorf("server: Options.DefaultConfig: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	md, err := opts.Connector.Metadata(context.Background())
	if err != nil {
		return nil, fmt.Errorf("server: connector metadata: %w", err)
	}
	if md == nil {
		return nil, errors.New("server: connector metadata is nil")
	}
	if _, err := protoconv.MetadataToProto(md); err != nil {
		return nil, fmt.Errorf("server: connector %s metadata: %w", md.ID, err)
	}
	return &service{
		conn:          opts.Connector,
		defaultConfig: opts.DefaultConfig,
		connectorID:   md.ID,
		log:           log,
	}, nil
}

// checkJSONObject reports whether b is a JSON object, the only shape a config can have.
func checkJSONObject(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if m == nil {
		return errors.New("not a JSON object: null")
	}
	return nil
}

// GRPCServer returns the underlying gRPC server, to register more services before Serve.
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// Health returns the grpc.health.v1 server, so callers can set more statuses (plugin mode
// serves "plugin").
func (s *Server) Health() *health.Server { return s.health }

// Serve accepts connections on l until Shutdown; it returns nil after Shutdown, once every
// in-flight RPC has finished, and an error if l fails.
func (s *Server) Serve(l net.Listener) error { return s.grpc.Serve(l) }

// Shutdown stops the server gracefully: health turns NOT_SERVING (so load balancers and hosts
// stop sending), listeners close, and in-flight RPCs finish before it returns. If ctx ends
// first, the contexts of the RPCs still running are cancelled, so that each answers its caller
// with a status and ErrorInfo (a send stopped this way is UNAVAILABLE with reason
// PROVIDER_OUTCOME_UNKNOWN: it may have reached the vendor); Shutdown waits up to
// cancelledRPCWait for those answers, then closes every connection (Stop) and returns.
func (s *Server) Shutdown(ctx context.Context) {
	defer s.endLife(errShutdown)
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	s.log.Warn("shutdown deadline passed: cancelling the RPCs still running", zap.Error(ctx.Err()))
	s.endLife(errShutdown)
	t := time.NewTimer(cancelledRPCWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("RPCs still running after their cancellation: closing every connection", zap.Duration("waited", cancelledRPCWait))
		s.grpc.Stop()
		<-done
	}
}

// Listen opens the listener for addr: "host:port" for TCP, or "unix:///path/to.sock" (also
// "unix:path") for a unix socket. A unix socket is created with mode 0600, so only the same
// user can connect (put it in a directory only that user can reach, too); a stale socket
// file left by a crashed server is removed first, but a live socket or any other file at the
// path is an error.
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		return listenUnix(path)
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return listenUnix(path)
	}
	if addr == "" {
		return nil, errors.New("listen: empty address")
	}
	return net.Listen("tcp", addr)
}

// listenUnix creates the socket under a private temporary name, makes it 0600 and only then
// renames it into place, so there is no moment when another user could connect to it.
func listenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("listen: empty unix socket path")
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".sock") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return &unixListener{UnixListener: l, addr: &net.UnixAddr{Name: path, Net: "unix"}, file: fi}, nil
}

// removeStaleSocket removes a socket file at path that nobody listens on any more.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("listen on %s: the path exists and is not a socket; refusing to replace it", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("listen on %s: another server is listening on this socket", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("listen on %s: remove stale socket: %w", path, err)
	}
	return nil
}

// unixListener reports the socket's final path as its address and removes the socket file on
// Close, if it is still the one it created.
type unixListener struct {
	*net.UnixListener
	addr *net.UnixAddr
	file fs.FileInfo
}

// Addr returns the socket's path.
func (l *unixListener) Addr() net.Addr { return l.addr }

// Close closes the listener and removes its socket file.
func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.addr.Name); serr == nil && os.SameFile(fi, l.file) {
		os.Remove(l.addr.Name)
	}
	return err
}

// Send sends msg through the served connector exactly as SendMessage does, for another
// transport in the same process (the Logto HTTP bridge, package logtobridge): msg must have
// passed protoconv.CheckMessage (which normalises its recipient); an empty msg.Config means the
// server's default config (CONFIG_MISSING without one); the connector stack, the logging of
// causes and the error model are SendMessage's, and the error is the gRPC status a SendMessage
// caller would get (see Status). Like an RPC, the send is cancelled when Shutdown's grace
// period ends, and then answers UNAVAILABLE with reason PROVIDER_OUTCOME_UNKNOWN.
func (s *Server) Send(ctx context.Context, msg *connector.Message) (*smsv1.SendMessageResponse, error) {
	if msg == nil {
		return nil, Status(connector.Errorf(connector.ReasonInvalidRequest, "no message to send")).Err()
	}
	cfg := msg.Config
	if len(cfg) == 0 {
		cfg = s.svc.defaultConfig
	}
	if cfg == nil {
		return nil, s.svc.fail(ctx, connector.Errorf(connector.ReasonConfigMissing,
			"the request carries no config and the server has no default config"))
	}
	m := *msg
	m.Config = cfg
	hctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.life, func() { cancel(errShutdown) })
	resp, err := s.svc.send(hctx, &m, "")
	stop()
	cancel(nil)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(hctx), errShutdown) && status.Code(err) == codes.Canceled {
		return nil, stoppedByShutdown(err)
	}
	return resp, err
}

// stoppedByShutdown is the status of a send that Shutdown cancelled: it may have reached the
// vendor, and a retry could send a second SMS.
func stoppedByShutdown(err error) error {
	ce := protoconv.ErrorFromStatus(err)
	ce.Reason = connector.ReasonProviderOutcomeUnknown
	ce.Message = "the server shut down before this send finished; the message may or may not have been sent"
	return Status(ce).Err()
}
