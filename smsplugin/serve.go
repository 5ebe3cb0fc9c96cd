package smsplugin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sms-connector/sms-connector/server"
)

// DefaultShutdownGrace bounds how long in-flight RPCs may run once a shutdown has started,
// unless ServeOptions say otherwise. go-plugin's host kills a plugin 2 s after asking it to
// shut down anyway; the bound matters when the plugin is stopped by SIGTERM.
const DefaultShutdownGrace = 30 * time.Second

// HealthService is the grpc.health.v1 service name go-plugin's host checks: SERVING while
// the plugin serves, NOT_SERVING once it shuts down.
const HealthService = plugin.GRPCServiceName

// ServeOptions configure Serve.
type ServeOptions struct {
	// Server configures the served connector as server.New takes it; Server.Connector is
	// required. Under AutoMTLS, Serve adds the TLS credentials to Server.ServerOptions.
	Server server.Options
	// Stdout receives the handshake line and nothing else: the process's standard output, which
	// the host reads. Required. Nothing may be written to it before Serve.
	Stdout io.Writer
	// Getenv reads the environment the host set; nil means os.Getenv.
	Getenv func(string) string
	// ShutdownGrace bounds how long in-flight RPCs may run once a shutdown has started; 0 means
	// DefaultShutdownGrace.
	ShutdownGrace time.Duration
}

// Launched reports whether the process was started as a plugin: the magic cookie variable is
// set (to any value: Serve then checks it), or PLUGIN_PROTOCOL_VERSIONS is, which go-plugin's
// host always sets; a binary started without either is not a plugin. A connector binary uses
// it to choose plugin mode over serving on its own.
func Launched(getenv func(string) string) bool {
	return getenv(MagicCookieKey) != "" || getenv(EnvProtocolVersions) != ""
}

// Serve is the plugin side of the protocol: it checks the environment the host set, listens,
// writes the handshake line to opts.Stdout and serves opts.Server.Connector, with
// grpc.health.v1 (HealthService and the SmsConnector service SERVING), reflection,
// plugin.GRPCController and plugin.GRPCStdio, until the host calls GRPCController/Shutdown or
// ctx ends. Then it shuts down gracefully: health turns NOT_SERVING, the listener closes (a
// unix socket file is removed), and RPCs in flight get up to opts.ShutdownGrace to finish. It
// returns nil after a graceful shutdown.
//
// Before anything is written, it returns a one-line error when the magic cookie is missing or
// wrong, when PLUGIN_PROTOCOL_VERSIONS is set and lacks ProtocolVersion, when
// PLUGIN_CLIENT_CERT is set but holds no PEM certificate, or when the port range, network or
// socket group is invalid.
//
// # Why not go-plugin's plugin.Serve
//
// Serve speaks go-plugin's protocol (its host is tested against it) without calling
// plugin.Serve, because plugin.Serve
//   - listens on TCP only on Windows, so a host cannot ask for TCP elsewhere (EnvNetwork);
//   - stops its gRPC server inside GRPCController/Shutdown with Stop, which cuts the RPCs in
//     flight (a send whose SMS may be on its way) instead of letting them finish;
//   - takes over the process: it replaces os.Stdout and os.Stderr, swallows SIGINT, cannot be
//     stopped by a context (SIGTERM), calls os.Exit on a bad cookie, and after a failed start
//     only logs, so a caller cannot tell failure from a normal end nor run it in a test;
//   - silently falls back to its own protocol version when the host offers none it speaks,
//     and says nothing specific about a wrong cookie.
func Serve(ctx context.Context, opts ServeOptions) error {
	if opts.Stdout == nil {
		return errors.New("smsplugin: ServeOptions.Stdout is required")
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	grace := opts.ShutdownGrace
	if grace <= 0 {
		grace = DefaultShutdownGrace
	}
	log := opts.Server.Logger
	if log == nil {
		log = zap.NewNop()
	}

	if err := CheckHandshake(getenv); err != nil {
		return err
	}
	network, err := networkOf(getenv)
	if err != nil {
		return err
	}
	var certField string
	sopts := opts.Server
	if pem := getenv(EnvClientCert); pem != "" {
		tlsConfig, cert, err := autoMTLS(pem)
		if err != nil {
			return err
		}
		certField = cert
		sopts.ServerOptions = append(slices.Clip(sopts.ServerOptions), grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	srv, err := server.New(sopts)
	if err != nil {
		return err
	}
	ctl := newControl()
	registerGoPluginServices(srv.GRPCServer(), ctl)
	srv.Health().SetServingStatus(HealthService, healthpb.HealthCheckResponse_SERVING)

	l, err := listen(network, getenv)
	if err != nil {
		srv.GRPCServer().Stop() // ends its stream workers
		return err
	}
	line := handshakeLine(l.Addr(), certField)
	if _, err := io.WriteString(opts.Stdout, line+"\n"); err != nil {
		l.Close()
		srv.GRPCServer().Stop()
		return fmt.Errorf("write the handshake line: %w", err)
	}
	log.Info("plugin serving", zap.String("network", l.Addr().Network()), zap.String("address", l.Addr().String()),
		zap.Bool("auto_mtls", certField != ""), zap.Int("protocol_version", ProtocolVersion))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	var serveErr error
	select {
	case serveErr = <-served:
		log.Error("plugin listener failed", zap.Error(serveErr))
	case <-ctx.Done():
		log.Info("shutting down: the process was told to stop", zap.Duration("grace", grace))
	case <-ctl.stopping():
		log.Info("shutting down: the host asked (GRPCController.Shutdown)", zap.Duration("grace", grace))
	}
	ctl.requestShutdown() // ends the stdio streams, which would hold a graceful stop
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	srv.Shutdown(sctx)
	if serveErr == nil {
		// A stop that comes before Serve has started makes Serve return ErrServerStopped.
		if err := <-served; !errors.Is(err, grpc.ErrServerStopped) {
			serveErr = err
		}
	}
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	log.Info("plugin stopped")
	return nil
}

// CheckHandshake checks what a host must set for a plugin to start: the magic cookie, and
// PLUGIN_PROTOCOL_VERSIONS, when set, must offer ProtocolVersion (go-plugin's own plugins fall
// back to their version silently; this refuses). Its error is one line for a human: the binary
// prints it on stderr and exits. Serve calls it first; a binary may call it earlier, before
// doing any work, to fail fast.
func CheckHandshake(getenv func(string) string) error {
	switch cookie := getenv(MagicCookieKey); {
	case cookie == "":
		return fmt.Errorf("%s is not set: this binary was started by a plugin host that does not host SMS connectors (run it without the PLUGIN_* variables to serve on its own)", MagicCookieKey)
	case cookie != MagicCookieValue:
		return fmt.Errorf("%s has the wrong value: the host expects another kind of plugin, or a protocol this connector does not speak (want the value published in the sms-connector README)", MagicCookieKey)
	}
	offered := getenv(EnvProtocolVersions)
	if offered == "" {
		return nil // a host from before version negotiation: it speaks the version it was built with
	}
	for _, v := range strings.Split(offered, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n == ProtocolVersion {
			return nil
		}
	}
	return fmt.Errorf("%s=%q: the host speaks plugin protocol version(s) %s, this connector speaks %d", EnvProtocolVersions, offered, offered, ProtocolVersion)
}

// networkOf returns the network to listen on: EnvNetwork, else go-plugin's choice (TCP on
// Windows, a unix socket elsewhere).
func networkOf(getenv func(string) string) (string, error) {
	switch n := getenv(EnvNetwork); n {
	case "unix", "tcp":
		return n, nil
	case "":
		if runtime.GOOS == "windows" {
			return "tcp", nil
		}
		return "unix", nil
	default:
		return "", fmt.Errorf("%s=%q: want unix or tcp", EnvNetwork, n)
	}
}

// listen opens the plugin's listener.
func listen(network string, getenv func(string) string) (net.Listener, error) {
	if network == "tcp" {
		return listenTCP(getenv)
	}
	return listenUnix(getenv)
}

// listenTCP listens on the first free loopback port in PLUGIN_MIN_PORT..PLUGIN_MAX_PORT, as
// go-plugin does; without a range, on any free port.
func listenTCP(getenv func(string) string) (net.Listener, error) {
	port := func(name string) (int, error) {
		v := getenv(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return 0, fmt.Errorf("%s=%q: not a port number", name, v)
		}
		return n, nil
	}
	lo, err := port(EnvMinPort)
	if err != nil {
		return nil, err
	}
	hi, err := port(EnvMaxPort)
	if err != nil {
		return nil, err
	}
	if lo > hi {
		return nil, fmt.Errorf("%s=%d is above %s=%d", EnvMinPort, lo, EnvMaxPort, hi)
	}
	var last error
	for p := lo; p <= hi; p++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err == nil {
			return l, nil
		}
		last = err
	}
	return nil, fmt.Errorf("no free TCP port in %d..%d: %w", lo, hi, last)
}

// listenUnix creates the socket in PLUGIN_UNIX_SOCKET_DIR (default os.TempDir()) under a fresh
// random name, with mode 0600 (server.Listen), or 0660 and the group PLUGIN_UNIX_SOCKET_GROUP
// when that is set.
func listenUnix(getenv func(string) string) (net.Listener, error) {
	dir := getenv(EnvUnixSocketDir)
	if dir == "" {
		dir = os.TempDir()
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("unix socket name: %w", err)
	}
	path := filepath.Join(dir, "sms-connector-plugin-"+hex.EncodeToString(rnd[:])+".sock")
	l, err := server.Listen("unix://" + path)
	if err != nil {
		return nil, err
	}
	if group := getenv(EnvUnixSocketGroup); group != "" {
		if err := shareWithGroup(path, group); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// shareWithGroup gives the socket at path to group (a name or a numeric id) with mode 0660.
func shareWithGroup(path, group string) error {
	gid, err := strconv.Atoi(group)
	if err != nil {
		g, lerr := user.LookupGroup(group)
		if lerr != nil {
			return fmt.Errorf("%s=%q: %w", EnvUnixSocketGroup, group, lerr)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return fmt.Errorf("%s=%q: group id %q is not a number", EnvUnixSocketGroup, group, g.Gid)
		}
	}
	if err := os.Chown(path, -1, gid); err != nil {
		return fmt.Errorf("%s=%q: %w", EnvUnixSocketGroup, group, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		return fmt.Errorf("%s=%q: %w", EnvUnixSocketGroup, group, err)
	}
	return nil
}

// handshakeLine is the line the host reads: core protocol, app protocol, network, address,
// "grpc", and the certificate under AutoMTLS.
func handshakeLine(addr net.Addr, cert string) string {
	line := fmt.Sprintf("%d|%d|%s|%s|%s", plugin.CoreProtocolVersion, ProtocolVersion, addr.Network(), addr.String(), plugin.ProtocolGRPC)
	if cert != "" {
		line += "|" + cert
	}
	return line
}

// control is the plugin's shutdown switch, flipped once by the host or by Serve itself.
type control struct {
	once sync.Once
	done chan struct{}
}

// newControl returns a switch that is not flipped yet.
func newControl() *control { return &control{done: make(chan struct{})} }

// requestShutdown flips the switch; later calls do nothing.
func (c *control) requestShutdown() { c.once.Do(func() { close(c.done) }) }

// stopping is closed once the switch is flipped.
func (c *control) stopping() <-chan struct{} { return c.done }
