package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	"github.com/sms-connector/sms-connector/server"
)

// envPrefix prefixes the environment variable of every flag.
const envPrefix = "SMS_CONNECTOR_"

// shutdownGrace bounds how long in-flight sends may take to finish after SIGINT/SIGTERM.
const shutdownGrace = 30 * time.Second

// options are the parsed flags.
type options struct {
	listen        string
	configFile    string
	sandbox       bool
	sandboxListen string
	twilioAPIURL  string
	twilioTimeout time.Duration
	logLevel      string
}

// parseFlags reads args, then fills every flag not given on the command line from its
// SMS_CONNECTOR_* environment variable.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("sms-connector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:50051", "address to serve gRPC on: host:port, or unix:///path/to.sock")
	fs.StringVar(&o.configFile, "config", "", "JSON file with the default connector config, used when a request carries none")
	fs.BoolVar(&o.sandbox, "sandbox", false, "start the built-in Twilio emulator on loopback and serve against it with a ready-made config (nothing is really sent)")
	fs.StringVar(&o.sandboxListen, "sandbox-listen", "127.0.0.1:0", "address of the sandbox Twilio emulator (with --sandbox)")
	fs.StringVar(&o.twilioAPIURL, "twilio-api-url", "", "operator-only override of Twilio's API base URL (scheme://host[:port]), for a proxy or an emulator")
	fs.DurationVar(&o.twilioTimeout, "twilio-timeout", 10*time.Second, "upper bound of one Twilio API call; the RPC deadline applies too")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sms-connector [flags]\n\nServes the Twilio SMS connector over gRPC (connector.sms.v1.SmsConnector).\nEvery flag can also be set as %s<FLAG> (dashes as underscores, upper case).\n\n", envPrefix)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && !set[f.Name] && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if o.sandbox && (o.configFile != "" || o.twilioAPIURL != "") {
		return nil, errors.New("--sandbox brings its own config and Twilio emulator: drop --config and --twilio-api-url, or drop --sandbox to use a real account")
	}
	return o, nil
}

// newLogger builds the JSON logger on stderr (stdout stays free for a plugin handshake).
func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "time"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core), nil
}

// run is main without the process: it serves until ctx ends and returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	o, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sms-connector: %v\n", err)
		return 2
	}
	log, err := newLogger(o.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sms-connector: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	if err := serve(ctx, o, log); err != nil {
		log.Error("sms-connector stopped", zap.Error(err))
		return 1
	}
	return 0
}

// serve builds the connector (and the sandbox emulator), serves gRPC and shuts down gracefully
// when ctx ends.
func serve(ctx context.Context, o *options, log *zap.Logger) error {
	topts := twilio.Options{APIURL: o.twilioAPIURL, Timeout: o.twilioTimeout}
	var defaultConfig json.RawMessage
	if o.sandbox {
		emu, url, err := startSandbox(o.sandboxListen, log)
		if err != nil {
			return err
		}
		defer emu.Close()
		topts.APIURL = url
		defaultConfig = sandboxConfig()
	}
	conn, err := twilio.New(topts)
	if err != nil {
		return fmt.Errorf("twilio connector: %w", err)
	}
	if o.configFile != "" {
		if defaultConfig, err = loadConfig(ctx, conn, o.configFile); err != nil {
			return err
		}
	}
	srv, err := server.New(server.Options{Connector: conn, DefaultConfig: defaultConfig, Logger: log})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	l, err := server.Listen(o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	log.Info("sms-connector serving",
		zap.String("address", listenerAddress(l)),
		zap.String("connector", twilio.ID),
		zap.Bool("sandbox", o.sandbox),
		zap.Bool("default_config", defaultConfig != nil))
	if !o.sandbox && defaultConfig == nil {
		log.Info("no --config: every SendMessage must carry its own config")
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight RPCs", zap.Duration("grace", shutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	srv.Shutdown(sctx)
	if err := <-served; err != nil {
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

// loadConfig reads the default config file and refuses one with problems, naming each.
func loadConfig(ctx context.Context, c connector.SmsConnector, path string) (json.RawMessage, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	vs, err := c.ValidateConfig(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("--config %s: validate: %w", path, err)
	}
	if len(vs) > 0 {
		var b strings.Builder
		for _, v := range vs {
			fmt.Fprintf(&b, "\n  %s: %s", v.Field, v.Description)
		}
		return nil, fmt.Errorf("--config %s has %d problem(s):%s", path, len(vs), b.String())
	}
	return raw, nil
}

// startSandbox runs the Twilio emulator on addr and logs every message it accepts, body
// included (nothing leaves the machine and the code is what a tester wants to see); the
// recipient is masked as everywhere else.
func startSandbox(addr string, log *zap.Logger) (*twiliotest.Server, string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("sandbox: listen on %s: %w", addr, err)
	}
	slog := log.Named("sandbox")
	emu := twiliotest.NewUnstartedServer(twiliotest.WithOnMessage(func(m twiliotest.Message) {
		slog.Info("sandbox Twilio accepted a message (nothing was sent)",
			zap.String("sid", m.Sid), zap.String("to", connector.MaskPhone(m.To)),
			zap.String("body", m.Body), zap.Int("segments", m.NumSegments))
	}))
	emu.Serve(l)
	slog.Info("sandbox Twilio emulator listening", zap.String("url", emu.URL),
		zap.String("account_sid", twiliotest.SandboxAccountSID))
	return emu, emu.URL, nil
}

// sandboxConfig is the ready-made config of sandbox mode: the emulator's account, Twilio's
// magic sender +15005550006 and a template for every usage type.
func sandboxConfig() json.RawMessage {
	type tmpl struct {
		UsageType string `json:"usageType"`
		Content   string `json:"content"`
		Locale    string `json:"locale,omitempty"`
	}
	var ts []tmpl
	for _, u := range connector.UsageTypes() {
		ts = append(ts, tmpl{UsageType: string(u), Content: fmt.Sprintf("[sandbox] Your %s verification code is {{code}}.", u)})
	}
	ts = append(ts, tmpl{UsageType: string(connector.UsageSignIn), Locale: "fr", Content: "[sandbox] Votre code de connexion est {{code}}."})
	raw, err := json.Marshal(map[string]any{
		"accountSID": twiliotest.SandboxAccountSID,
		"authToken":  twiliotest.SandboxAuthToken,
		"from":       "+15005550006",
		"templates":  ts,
	})
	if err != nil {
		panic(err) // static data: cannot fail
	}
	return raw
}
