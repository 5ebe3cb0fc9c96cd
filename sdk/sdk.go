// Package sdk turns any connector.SmsConnector into a complete connector binary: a vendor
// writes the vendor part (the connector, its own flags, optionally a sandbox) and a main of a
// few lines; the SDK does the rest, the same for every vendor:
//
//   - flags and their SMS_CONNECTOR_* environment variables: --listen, --config, --log-level,
//     --sandbox (when the vendor has a sandbox) and the vendor's own;
//   - a standalone gRPC service (package server): TCP or a unix socket, health, reflection,
//     one JSON log line per RPC on stderr, the AIP-193 error model, graceful drain on SIGINT
//     and SIGTERM;
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
//			New: func(context.Context, *sdk.Runtime) (connector.SmsConnector, error) {
//				return console.New(console.Options{}), nil
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
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"

	"github.com/sms-connector/sms-connector/connector"
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

// ShutdownGrace bounds how long in-flight RPCs may take to finish once the binary is told to
// stop (SIGTERM, SIGINT in service mode, GRPCController.Shutdown in plugin mode).
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
}

// options are the parsed built-in flags.
type options struct {
	listen     string
	configFile string
	logLevel   string
	sandbox    bool
	plugin     bool // plugin mode
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
	fs.StringVar(&o.configFile, "config", "", "JSON file with the default connector config, used when a request carries none")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	if b.Sandbox != nil {
		fs.BoolVar(&o.sandbox, "sandbox", false, "run against a built-in emulator of the vendor with a ready-made config (nothing is really sent)")
	}
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
	return o, nil
}

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
	rt := &Runtime{Log: log, Plugin: o.plugin, Sandbox: o.sandbox}
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
	conn, err := b.New(ctx, rt)
	if err != nil {
		return fmt.Errorf("connector: %w", err)
	}
	if conn == nil {
		return errors.New("connector: New returned none")
	}
	if c, ok := conn.(io.Closer); ok {
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
		if err := checkConfig(ctx, conn, defaultConfig, source); err != nil {
			return err
		}
	}
	md, err := conn.Metadata(ctx)
	if err != nil {
		return fmt.Errorf("connector metadata: %w", err)
	}
	if md == nil {
		return errors.New("connector metadata: none")
	}
	log = log.With(zap.String("connector", md.ID))
	sopts := server.Options{Connector: conn, DefaultConfig: defaultConfig, Logger: log}

	if o.plugin {
		err := smsplugin.Serve(ctx, smsplugin.ServeOptions{Server: sopts, Stdout: stdout, Getenv: getenv, ShutdownGrace: ShutdownGrace})
		if err != nil {
			return fmt.Errorf("plugin: %w", err)
		}
		return nil
	}

	srv, err := server.New(sopts)
	if err != nil {
		return err
	}
	l, err := server.Listen(o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
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
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight RPCs", zap.Duration("grace", ShutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	srv.Shutdown(sctx)
	// A stop that comes before Serve has started makes Serve return ErrServerStopped.
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
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
