// Package sdk turns any connector.SmsConnector into a complete connector binary: a vendor
// writes the vendor part (the connector, its own flags, optionally a sandbox) and a main of a
// few lines; the SDK does the rest, the same for every vendor:
//
//   - flags and their SMS_CONNECTOR_* environment variables: --listen, --config, --log-level,
//     --sandbox (when the vendor has a sandbox), the security and defence flags below, and
//     the vendor's own;
//   - a standalone gRPC service (package server): TCP or a unix socket, health, reflection,
//     one JSON log line per RPC on stderr, the AIP-193 error model, graceful drain on SIGINT
//     and SIGTERM (--shutdown-grace, default 30s; then the RPCs still running are cancelled
//     and each answers with its status), caller authentication (TLS, mutual TLS, a bearer
//     token);
//   - the same defences around every vendor's connector (see Defend): idempotent sends, an
//     abuse guard against SMS pumping, a concurrency limit; and --max-segments, which the
//     vendor's connector applies where it renders the body (Runtime.MaxSegments);
//   - plugin mode (package smsplugin), chosen by itself when a plugin host starts the binary:
//     the handshake line on stdout, AutoMTLS, health "plugin", GRPCController.Shutdown,
//     GRPCStdio, logs in go-plugin's JSON shape on stderr.
//
// A vendor's main (the console connector; see the package example):
//
//	func main() {
//		sdk.Main(sdk.Binary{
//			Name:          "console-sms-connector",
//			Summary:       "Serves the console SMS connector: each message is written to stderr as a JSON line.",
//			DefaultConfig: console.DefaultConfig,
//			New: func(_ context.Context, rt *sdk.Runtime) (connector.SmsConnector, error) {
//				return console.New(console.Options{MaxSegments: rt.MaxSegments}), nil
//			},
//		})
//	}
//
// # Modes
//
// The binary serves on its own ("service mode") unless a plugin host started it: when the
// environment has the magic cookie smsplugin.MagicCookieKey (or go-plugin's
// PLUGIN_PROTOCOL_VERSIONS), it runs in plugin mode. "<name> plugin" asks for plugin mode
// explicitly; started by hand like that, without the cookie, it says in one line how to run as
// a service instead and exits 2. In plugin mode --listen does not apply (the host's
// environment decides where to listen), SIGINT is ignored (a Ctrl-C in a terminal reaches the
// host and the plugin alike; the host decides when its plugins stop, as go-plugin's plugins
// do), and SIGTERM drains as in service mode. Every other flag and variable works the same, so
// a host configures a plugin with SMS_CONNECTOR_CONFIG, SMS_CONNECTOR_SANDBOX and so on.
//
// # Configuration
//
// The default connector configuration, used when a SendMessage request carries none, is, in
// order: the sandbox's (--sandbox), the --config file, Binary.DefaultConfig. Whichever it is,
// it is checked with the connector's ValidateConfig at start-up, and a configuration with
// problems stops the binary with every problem listed.
//
// # Security (service mode)
//
// --tls-cert and --tls-key serve over TLS; --tls-client-ca also requires every caller to
// present a client certificate signed by that CA (mutual TLS: a certificate from another CA
// fails the handshake). --auth-token-file requires the metadata "authorization: Bearer
// <token>" of every call, the token being the file's content, trimmed; a missing or wrong
// token is UNAUTHENTICATED. Both together require both. Health and reflection require the
// same, unless --auth-exempt-health opens them to probes. On a TCP address that is not
// loopback, the binary refuses to start without a token or client certificates, unless
// --insecure says that something in front of it authenticates callers; a unix socket is
// created with mode 0600. In plugin mode these flags are refused: go-plugin's AutoMTLS
// authenticates the host.
//
// # Logto bridge (service mode)
//
// --http-listen host:port also serves Logto's HTTP SMS connector at POST /logto/sms (package
// logtobridge): each request is sent through the same served connector, with the default
// config, as a SendMessage. It shares --listen's TLS certificate, bearer token (Logto's
// "Authorization Header": "Bearer <token>"), exposure rule, --max-request-bytes and
// --shutdown-grace.
//
// # Defences
//
// Every connector is wrapped by Defend, in both modes: the abuse guard (guard.DefaultPolicy,
// or --policy FILE, or SandboxPolicy with --sandbox; --no-guard turns it off for trusted
// internal callers), idempotent sends within --idempotency-window (default 10m; 0 turns it
// off) and at most --max-concurrent-sends sends in flight (default 256). --max-segments
// (default 10) bounds the SMS segments of one message; it reaches the connector as
// Runtime.MaxSegments, since the connector is where the body is rendered. --max-request-bytes
// bounds a request (default 256 KiB).
//
// # Delivery status (service and plugin mode)
//
// Every connector is wrapped by the delivery status layer (package deliverystatus; see Defend):
// each accepted message is recorded in the --store (memory, bounded; or Redis, shared) for
// --status-ttl (default 7 days) after its last change, and a status read answers from there,
// asking the vendor only for what is not known yet. With --public-url (requires --http-listen)
// the vendor is asked to call back with each status change: Binary.StatusCallbacks gives the
// handlers (Twilio: POST /twilio/status, signed with the default config's auth token), served
// on --http-listen beside the Logto bridge without its bearer token (each callback is verified
// by its signature instead). --public-url is an https URL; http is accepted for a loopback host
// only (tests, the sandbox). With --metrics-listen, each message's final state is counted once
// (sms_connector_delivery_total, sms_connector_delivery_seconds).
//
// # Several replicas
//
// --store (default memory) names where the guard's windows and breaker, idempotency answers
// and delivery statuses live: this process's memory, or a Redis shared by every replica
// (redis://, rediss://, Redis Cluster; see package redisconn and docs/replicas.md), with --store-password-file, --store-ca-file and
// --guard-key-secret-file (required with Redis: the same secret on every replica). The store
// must answer a PING at start-up or the binary stops. --store-unavailable says what a send
// meets while Redis is down: refuse (default; UNAVAILABLE STORE_UNAVAILABLE, nothing sent) or
// allow (sent without the limits). The concurrency limit stays per process.
//
// # Observability
//
// --metrics-listen host:port serves Prometheus metrics at /metrics (gRPC server metrics, sends
// by usage type, destination calling code and outcome, provider errors and latency, rate-limit
// refusals, sends in flight, Go runtime); --otlp-endpoint URL (or the standard
// OTEL_EXPORTER_OTLP_ENDPOINT) exports OpenTelemetry spans of every RPC and vendor call over
// OTLP/HTTP. Both are off by default, in both modes; see package telemetry.
//
// # Exit codes
//
// 0 after a graceful stop (or -h), 2 for a usage error (a bad flag or variable, "plugin"
// without a host), 1 for any other failure (a bad configuration, a port in use, a plugin host
// with the wrong cookie or protocol version).
package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/deliverystatus"
	"github.com/sms-connector/sms-connector/connector/idempotency"
	"github.com/sms-connector/sms-connector/connector/limits"
	"github.com/sms-connector/sms-connector/logtobridge"
	"github.com/sms-connector/sms-connector/server"
	"github.com/sms-connector/sms-connector/smsplugin"
)

// EnvPrefix prefixes the environment variable of every flag: --log-level is
// SMS_CONNECTOR_LOG_LEVEL (dashes as underscores, upper case). It is the same for every
// vendor's binary, so a host configures any of them alike. A flag on the command line wins.
const EnvPrefix = "SMS_CONNECTOR_"

// PluginCommand is the argument that asks for plugin mode explicitly.
const PluginCommand = "plugin"

// ServingMessage is the message of the log line a binary writes once it accepts RPCs in service
// mode, with the field "address" (as --listen takes it): scripts and tests wait for it.
const ServingMessage = "sms-connector serving"

// HTTPServingMessage is the message of the log line a binary writes once it serves the Logto
// bridge (--http-listen), before ServingMessage, with the field "address" (host:port).
const HTTPServingMessage = "sms-connector http serving"

// ShutdownGrace is the default of --shutdown-grace: how long in-flight RPCs may take to finish
// once the binary is told to stop (SIGTERM, SIGINT in service mode, GRPCController.Shutdown in
// plugin mode). When it passes, the RPCs still running are cancelled and each answers its
// caller with its status (a send: UNAVAILABLE, PROVIDER_OUTCOME_UNKNOWN; see server.Shutdown).
const ShutdownGrace = 30 * time.Second

// Binary is what a vendor tells the SDK: a name, how to build the connector, and optional
// hooks. The hooks run in this order: Flags (before parsing), Sandbox (with --sandbox), New,
// DefaultConfig (without --sandbox and --config); each runs once.
type Binary struct {
	// Name is the command's name in usage and error messages ("sms-connector"). Required.
	Name string
	// Summary is one sentence for -h saying what the binary serves.
	Summary string
	// Flags, when set, registers the vendor's own flags on fs. Each can also be set by its
	// SMS_CONNECTOR_* variable. It must not redefine a built-in flag (the flag package panics)
	// nor use a name whose variable belongs to the plugin protocol ("plugin", "plugin-network").
	Flags func(fs *flag.FlagSet)
	// New builds the connector, once the flags are parsed (and after Sandbox). Required. If the
	// connector is an io.Closer, it is closed after the server has stopped.
	New func(ctx context.Context, rt *Runtime) (connector.SmsConnector, error)
	// StatusCallbacks, when set, returns the HTTP handlers, by path, through which the vendor
	// reports delivery statuses (Twilio's status callbacks); the SDK serves them on
	// --http-listen beside the Logto bridge. It is called once, after New, and only with
	// --public-url (which requires --http-listen). defaultConfig is the server's default
	// configuration (nil when there is none): the account whose credentials verify the
	// callbacks. rec merges each verified report into the delivery status store.
	StatusCallbacks func(ctx context.Context, rt *Runtime, defaultConfig json.RawMessage, rec *deliverystatus.Recorder) (map[string]http.Handler, error)
	// DefaultConfig, when set, returns the default configuration used when neither --sandbox
	// nor --config gives one; nil means none (every SendMessage must then carry its own).
	DefaultConfig func() json.RawMessage
	// Sandbox, when set, enables --sandbox: it starts whatever lets the connector run without a
	// vendor account (an emulator on loopback), before New, and returns the configuration that
	// goes with it and a cleanup run after the server has stopped (may be nil). Options New
	// needs (an emulator's URL) travel in the vendor's own variables, which both hooks close
	// over.
	Sandbox func(ctx context.Context, rt *Runtime) (config json.RawMessage, cleanup func(), err error)
}

// Runtime is what the SDK hands the vendor's hooks.
type Runtime struct {
	// Log is the binary's logger (JSON lines on stderr, at --log-level). Hooks log through it,
	// never to stdout.
	Log *zap.Logger
	// Plugin reports whether the binary runs in plugin mode.
	Plugin bool
	// Sandbox reports whether --sandbox was given.
	Sandbox bool
	// MaxSegments is the most SMS segments one rendered message may take (--max-segments; 0:
	// no limit but the vendor's). New passes it to the connector, which passes it to
	// connector.NewTemplateSet, where every body is rendered and counted.
	MaxSegments int
	// PublicURL is --public-url: the https URL (scheme, host, optional path prefix, no
	// trailing slash) at which the vendor reaches --http-listen, "" when not set. New passes
	// it, followed by the path of its status callbacks, to the connector, which asks the
	// vendor to call back there.
	PublicURL string
}

// options are the parsed built-in flags.
type options struct {
	listen     string
	httpListen string // the Logto bridge's address; "" for none
	configFile string
	logLevel   string
	sandbox    bool
	plugin     bool // plugin mode

	// Caller authentication (service mode); see security.go.
	tlsCert, tlsKey, tlsClientCA string
	authTokenFile                string
	authExemptHealth             bool
	insecure                     bool

	// Defences and limits; see defences.go.
	policyFile         string
	noGuard            bool
	idempotencyWindow  time.Duration
	maxRequestBytes    int
	maxSegments        int
	maxConcurrentSends int
	shutdownGrace      time.Duration

	// Delivery statuses (--status-ttl, --public-url); see status.go.
	statusTTL time.Duration
	publicURL string

	// Observability (--metrics-listen, --otlp-endpoint); see telemetry.go.
	telemetry telemetryOptions

	// The shared store (--store and its companions); see store.go.
	store storeOptions
}

// Main runs the binary b as a process: it reads os.Args and the environment, stops gracefully
// on SIGTERM (and on SIGINT in service mode), and exits with Run's code. A vendor's main calls
// it and nothing else.
func Main(b Binary) {
	getenv := os.Getenv
	sigs := []os.Signal{syscall.SIGTERM}
	if smsplugin.Launched(getenv) {
		signal.Ignore(os.Interrupt)
	} else {
		sigs = append(sigs, os.Interrupt)
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	code := Run(ctx, b, os.Args[1:], getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Run is Main without the process, for tests and for callers that own it: it runs b with args
// (without the program name) and the environment getenv until ctx ends (or, in plugin mode,
// the host shuts it down), and returns the exit code. stdout receives the plugin handshake line
// and nothing else; logs, usage and errors go to stderr.
func Run(ctx context.Context, b Binary, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	name := b.Name
	if name == "" {
		name = "sms-connector"
	}
	if b.New == nil {
		fmt.Fprintf(stderr, "%s: sdk.Binary.New is not set: the binary has no connector\n", name)
		return 2
	}
	o, err := parseFlags(b, name, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	if o.plugin {
		if err := smsplugin.CheckHandshake(getenv); err != nil {
			fmt.Fprintf(stderr, "%s: cannot start as a plugin: %v\n", name, err)
			return 1
		}
	}
	log, err := newLogger(o.logLevel, o.plugin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("binary", name))
	if err := serve(ctx, b, o, getenv, stdout, log); err != nil {
		log.Error(name+" stopped", zap.Error(err))
		return 1
	}
	return 0
}

// envName is the variable of flag name.
func envName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseFlags reads args, then fills every flag not given on the command line from its
// SMS_CONNECTOR_* variable, and decides the mode.
func parseFlags(b Binary, name string, args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:50051", "address to serve gRPC on: host:port, or unix:///path/to.sock (service mode only)")
	fs.StringVar(&o.httpListen, "http-listen", "", "address (host:port) to serve Logto's HTTP SMS connector on, at POST "+logtobridge.PathLogtoSMS+", beside gRPC (default: off; service mode only); same TLS, token and exposure rules as --listen")
	fs.StringVar(&o.configFile, "config", "", "JSON file with the default connector config, used when a request carries none")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	if b.Sandbox != nil {
		fs.BoolVar(&o.sandbox, "sandbox", false, "run against a built-in emulator of the vendor with a ready-made config (nothing is really sent)")
	}
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM file of the server's TLS certificate (chain): serve over TLS (service mode)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM file of the private key of --tls-cert")
	fs.StringVar(&o.tlsClientCA, "tls-client-ca", "", "PEM file of the CA(s) callers' client certificates must chain to: mutual TLS, a verified client certificate is required")
	fs.StringVar(&o.authTokenFile, "auth-token-file", "", `file holding the bearer token every call must carry as "authorization: Bearer <token>" (trimmed; never logged)`)
	fs.BoolVar(&o.authExemptHealth, "auth-exempt-health", false, "serve grpc.health.v1 and reflection without credentials, for probes (default: they require auth too)")
	fs.BoolVar(&o.insecure, "insecure", false, "serve on a non-loopback TCP address without caller authentication (only behind something that authenticates callers)")
	fs.StringVar(&o.policyFile, "policy", "", "JSON file of the abuse guard's policy, over the defaults (default: guard.DefaultPolicy; with --sandbox a relaxed one)")
	fs.BoolVar(&o.noGuard, "no-guard", false, "turn the abuse guard off: no rate limits, no country or number-type policy (trusted internal callers only)")
	fs.DurationVar(&o.idempotencyWindow, "idempotency-window", idempotency.DefaultWindow, "how long a send's answer is kept for retries with the same idempotency_key (0: idempotency off)")
	fs.IntVar(&o.maxRequestBytes, "max-request-bytes", server.DefaultMaxRecvMsgSize, "largest request accepted, in bytes (gRPC answers RESOURCE_EXHAUSTED beyond it)")
	fs.IntVar(&o.maxSegments, "max-segments", connector.DefaultMaxSegments, "most SMS segments one rendered message may take (MESSAGE_TOO_LONG beyond; 0: the vendor's limit only)")
	fs.IntVar(&o.maxConcurrentSends, "max-concurrent-sends", limits.DefaultMaxConcurrent, "most sends in flight at once; one more is refused with RESOURCE_EXHAUSTED OVERLOADED (0: no limit)")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", ShutdownGrace, "how long in-flight RPCs may run once the binary is told to stop; then each is cancelled and answers its caller with its status")
	fs.DurationVar(&o.statusTTL, "status-ttl", deliverystatus.DefaultTTL, "how long a message's delivery status is kept in the --store after its last change")
	fs.StringVar(&o.publicURL, "public-url", "", "https URL at which the vendor reaches --http-listen (e.g. https://sms.example.com, behind a TLS-terminating proxy): messages ask for status callbacks there (Twilio: <url>"+twilioStatusPathDoc+"); http only for a loopback host (default: no callbacks; statuses are fetched from the vendor)")
	o.telemetry.register(fs)
	o.store.register(fs)
	if b.Flags != nil {
		b.Flags(fs)
	}
	var reserved error
	fs.VisitAll(func(f *flag.Flag) {
		for _, r := range []string{smsplugin.MagicCookieKey, smsplugin.EnvNetwork} { // the plugin protocol's
			if envName(f.Name) == r && reserved == nil {
				reserved = fmt.Errorf("flag --%s is reserved: its variable %s belongs to the plugin protocol", f.Name, r)
			}
		}
	})
	if reserved != nil {
		return nil, reserved
	}
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s [flags]\n       %s plugin [flags]   (started by a plugin host only)\n\n", name, name)
		if b.Summary != "" {
			fmt.Fprintf(w, "%s\n", b.Summary)
		}
		fmt.Fprintf(w, "Every flag can also be set as %s<FLAG> (dashes as underscores, upper case).\n"+
			"A plugin host (go-plugin protocol, cookie %s) gets plugin mode without asking.\n\n", EnvPrefix, smsplugin.MagicCookieKey)
		fs.PrintDefaults()
	}

	pluginCmd := len(args) > 0 && args[0] == PluginCommand
	if pluginCmd {
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if !pluginCmd && fs.NArg() > 0 && fs.Arg(0) == PluginCommand {
		pluginCmd = true
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return nil, err
		}
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		if v := getenv(env); v != "" && !set[f.Name] && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	if err != nil {
		return nil, err
	}

	o.plugin = smsplugin.Launched(getenv)
	if pluginCmd && !o.plugin {
		return nil, fmt.Errorf("%q is the mode a plugin host starts (it sets %s); to serve on your own, run %q instead (see -h)",
			PluginCommand, smsplugin.MagicCookieKey, name+" --listen 127.0.0.1:50051")
	}
	if o.sandbox && o.configFile != "" {
		return nil, errors.New("--sandbox brings its own config: drop --config, or drop --sandbox to use your own account")
	}
	if err := checkSecurityFlags(o); err != nil {
		return nil, err
	}
	if o.plugin && o.httpListen != "" {
		return nil, errors.New("--http-listen applies to service mode only: a plugin is reached through its host")
	}
	if err := checkStatusFlags(o); err != nil {
		return nil, err
	}
	switch {
	case o.policyFile != "" && o.noGuard:
		return nil, errors.New("--policy configures the abuse guard and --no-guard turns it off: give one of them")
	case o.idempotencyWindow < 0:
		return nil, fmt.Errorf("--idempotency-window %v is negative (0 turns idempotency off)", o.idempotencyWindow)
	case o.maxRequestBytes < minRequestBytes || o.maxRequestBytes > maxRequestBytes:
		return nil, fmt.Errorf("--max-request-bytes %d: must be %d to %d", o.maxRequestBytes, minRequestBytes, maxRequestBytes)
	case o.maxSegments < 0:
		return nil, fmt.Errorf("--max-segments %d is negative (0: no limit but the vendor's)", o.maxSegments)
	case o.maxConcurrentSends < 0:
		return nil, fmt.Errorf("--max-concurrent-sends %d is negative (0: no limit)", o.maxConcurrentSends)
	case o.shutdownGrace <= 0:
		return nil, fmt.Errorf("--shutdown-grace %v: must be positive", o.shutdownGrace)
	}
	if err := o.store.check(!o.noGuard); err != nil {
		return nil, err
	}
	return o, nil
}

// The range of --max-request-bytes: a request with a config is a few KiB; more than a few
// MiB is never a verification SMS.
const (
	minRequestBytes = 4 << 10
	maxRequestBytes = 16 << 20
)

// hclogTimeLayout is the timestamp layout go-plugin's host parses in a plugin's JSON log lines.
const hclogTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// newLogger builds the JSON logger on stderr (stdout stays free for the plugin handshake). In
// plugin mode the keys are go-plugin's (@level, @message, @timestamp, @module), so a Go host
// re-logs each line at its level with its fields; in service mode they are zap's (level, msg,
// time, logger).
func newLogger(level string, pluginMode bool, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "time"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	if pluginMode {
		enc.TimeKey, enc.LevelKey, enc.MessageKey, enc.NameKey = "@timestamp", "@level", "@message", "@module"
		enc.EncodeTime = zapcore.TimeEncoderOfLayout(hclogTimeLayout)
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core), nil
}

// serve builds the connector and its default config, then serves in the mode o says until
// ctx ends or the plugin host shuts it down, and stops gracefully.
func serve(ctx context.Context, b Binary, o *options, getenv func(string) string, stdout io.Writer, log *zap.Logger) error {
	rt := &Runtime{Log: log, Plugin: o.plugin, Sandbox: o.sandbox, MaxSegments: o.maxSegments, PublicURL: o.publicURL}
	sec, err := loadSecurity(o, log)
	if err != nil {
		return err
	}
	if !o.plugin {
		if err := checkExposure(ctx, o.listen, sec, o.insecure, log); err != nil {
			return err
		}
		if o.httpListen != "" {
			if err := checkExposure(ctx, o.httpListen, sec, o.insecure, log); err != nil {
				return fmt.Errorf("--http-listen: %w", err)
			}
		}
	}
	defences, policySource, err := defencesOf(o)
	if err != nil {
		return err
	}
	// The shared store: nil with --store memory. The idempotency layer's Redis store is built
	// on the same client.
	store, storeErrs, err := openStore(ctx, o, &defences, log)
	if err != nil {
		return err
	}
	if store != nil {
		defer func() {
			if err := store.Close(); err != nil {
				log.Warn("closing the store's client", zap.Error(err))
			}
		}()
	}
	var defaultConfig json.RawMessage
	source := ""
	if o.sandbox {
		cfg, cleanup, err := b.Sandbox(ctx, rt)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if cleanup != nil {
			defer cleanup()
		}
		defaultConfig, source = cfg, "the sandbox config"
	}
	vendor, err := b.New(ctx, rt)
	if err != nil {
		return fmt.Errorf("connector: %w", err)
	}
	if vendor == nil {
		return errors.New("connector: New returned none")
	}
	if c, ok := vendor.(io.Closer); ok {
		defer func() {
			if err := c.Close(); err != nil {
				log.Warn("closing the connector", zap.Error(err))
			}
		}()
	}
	switch {
	case o.sandbox:
	case o.configFile != "":
		raw, err := os.ReadFile(o.configFile)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		defaultConfig, source = raw, "--config "+o.configFile
	case b.DefaultConfig != nil:
		defaultConfig, source = b.DefaultConfig(), "the built-in default config"
	}
	if len(defaultConfig) > 0 {
		if err := checkConfig(ctx, vendor, defaultConfig, source); err != nil {
			return err
		}
	}
	// Observability: the vendor's calls are measured inside the defences, every send outside
	// them (so their refusals count), every RPC by the server options.
	tel, stopTelemetry, err := startTelemetry(ctx, b.Name, o.telemetry, getenv, log)
	if err != nil {
		return err
	}
	defer stopTelemetry()
	storeErrs.metrics = tel.Metrics()
	if vendor, err = tel.WrapVendor(ctx, vendor); err != nil {
		return err
	}
	if err := wireStatus(ctx, vendor, &defences, tel.Metrics(), log); err != nil {
		return err
	}
	conn, err := Defend(vendor, defences)
	if err != nil {
		return err
	}
	if conn, err = tel.WrapSends(ctx, conn); err != nil {
		return err
	}
	md, err := conn.Metadata(ctx)
	if err != nil {
		return fmt.Errorf("connector metadata: %w", err)
	}
	if md == nil {
		return errors.New("connector metadata: none")
	}
	log = log.With(zap.String("connector", md.ID))
	sopts := server.Options{Connector: conn, DefaultConfig: defaultConfig, Logger: log, MaxRecvMsgSize: o.maxRequestBytes,
		TLS: sec.tls, Auth: server.Auth{Token: sec.token, ExemptHealth: o.authExemptHealth}}
	sopts.ServerOptions = append(sopts.ServerOptions, tel.ServerOptions()...)

	if o.plugin {
		logDefences(log, o, defences, policySource)
		err := smsplugin.Serve(ctx, smsplugin.ServeOptions{Server: sopts, Stdout: stdout, Getenv: getenv, ShutdownGrace: o.shutdownGrace})
		if err != nil {
			return fmt.Errorf("plugin: %w", err)
		}
		return nil
	}

	l, err := server.Listen(o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	// The server comes after the listener: once built, it runs goroutines (its stream
	// workers) that only Shutdown ends.
	srv, err := server.New(sopts)
	if err != nil {
		l.Close()
		return err
	}
	var bridge *logtobridge.Server
	var bridgeListener net.Listener
	if o.httpListen != "" {
		if bridgeListener, err = net.Listen("tcp", o.httpListen); err != nil {
			l.Close()
			srv.Shutdown(ctx)
			return fmt.Errorf("--http-listen %s: %w", o.httpListen, err)
		}
		var routes map[string]http.Handler
		if routes, err = statusCallbacks(ctx, b, rt, defaultConfig, defences.DeliveryStatus); err == nil {
			bridge, err = logtobridge.New(logtobridge.Options{Sender: srv, Token: sec.token, TLS: sec.tls,
				MaxRequestBytes: o.maxRequestBytes, Logger: log.Named("http"), Instrument: tel.InstrumentHTTP, Routes: routes})
		}
		if err != nil {
			bridgeListener.Close()
			l.Close()
			srv.Shutdown(ctx)
			return err
		}
	}
	logDefences(log, o, defences, policySource)
	log.Info("caller authentication",
		zap.Bool("tls", sec.tls != nil), zap.Bool("client_certificates", sec.mtls), zap.Bool("bearer_token", sec.token != ""),
		zap.Bool("health_exempt", o.authExemptHealth && sec.authenticates()))
	if bridge != nil {
		log.Info(HTTPServingMessage, zap.String("address", bridgeListener.Addr().String()),
			zap.String("path", logtobridge.PathLogtoSMS), zap.Bool("tls", sec.tls != nil))
	}
	log.Info(ServingMessage,
		zap.String("address", listenerAddress(l)),
		zap.Bool("sandbox", o.sandbox),
		zap.Bool("default_config", defaultConfig != nil))
	if defaultConfig == nil {
		log.Info("no default config: every SendMessage must carry its own config")
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	bridgeServed := make(chan error, 1)
	if bridge != nil {
		go func() { bridgeServed <- bridge.Serve(bridgeListener) }()
	}
	var serveErr error
	select {
	case err := <-served:
		serveErr = fmt.Errorf("serve: %w", err)
	case err := <-bridgeServed:
		serveErr = fmt.Errorf("--http-listen: %w", err)
	case <-ctx.Done():
	}
	if serveErr != nil {
		sctx, cancel := context.WithTimeout(context.Background(), o.shutdownGrace)
		defer cancel()
		if bridge != nil {
			bridge.Shutdown(sctx)
		}
		srv.Shutdown(sctx)
		return serveErr
	}
	log.Info("shutting down: finishing in-flight RPCs", zap.Duration("grace", o.shutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownGrace)
	defer cancel()
	if bridge != nil {
		// Both stop together: at the grace end the gRPC server cancels the bridge's sends too.
		bridgeDone := make(chan struct{})
		go func() {
			bridge.Shutdown(sctx)
			close(bridgeDone)
		}()
		defer func() { <-bridgeDone }()
	}
	srv.Shutdown(sctx)
	// A stop that comes before Serve has started makes Serve return ErrServerStopped.
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// defencesOf returns the Defences o asks for and where the guard's policy comes from.
func defencesOf(o *options) (Defences, string, error) {
	d := Defences{
		Guard:              !o.noGuard,
		IdempotencyWindow:  o.idempotencyWindow,
		MaxConcurrentSends: o.maxConcurrentSends,
	}
	if !d.Guard {
		return d, "", nil
	}
	p, source, err := policyOf(o)
	if err != nil {
		return Defences{}, "", err
	}
	d.GuardOptions.Policy = p
	return d, source, nil
}

// logDefences logs the defences in force: the guard's policy in full (it holds no secret), or
// a warning that the guard is off, and the limits.
func logDefences(log *zap.Logger, o *options, d Defences, policySource string) {
	if d.Guard {
		log.Info("abuse guard on", zap.String("policy_source", policySource), zap.Reflect("policy", d.GuardOptions.Policy))
	} else {
		log.Warn("abuse guard off (--no-guard): no rate limits, no country or number-type policy; for trusted internal callers only")
	}
	if !o.store.redis() {
		log.Info("store: memory (idempotency answers and guard windows are this process's own; --store to share them)")
	}
	log.Info("limits",
		zap.Stringer("idempotency_window", d.IdempotencyWindow), zap.Int("max_segments", o.maxSegments),
		zap.Int("max_concurrent_sends", d.MaxConcurrentSends), zap.Int("max_request_bytes", o.maxRequestBytes))
}

// listenerAddress names l the way --listen takes it.
func listenerAddress(l net.Listener) string {
	if l.Addr().Network() == "unix" {
		return "unix://" + l.Addr().String()
	}
	return l.Addr().String()
}

// checkConfig refuses a default config with problems, naming each.
func checkConfig(ctx context.Context, c connector.SmsConnector, raw json.RawMessage, source string) error {
	vs, err := c.ValidateConfig(ctx, raw)
	if err != nil {
		return fmt.Errorf("%s: validate: %w", source, err)
	}
	if len(vs) == 0 {
		return nil
	}
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "\n  %s: %s", v.Field, v.Description)
	}
	return fmt.Errorf("%s has %d problem(s):%s", source, len(vs), b.String())
}
