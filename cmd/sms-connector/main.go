// Command sms-connector serves an SMS connector over gRPC (connector.sms.v1.SmsConnector):
// Twilio (the default), or the console connector for development (--connector console), which
// writes each message to stderr instead of sending it.
//
// "sms-connector emulator [--listen ADDR]" serves only the Twilio emulator that --sandbox uses
// (package twiliotest) and prints its URL and credentials, for pointing other Twilio clients,
// or this binary's --twilio-api-url, at it.
//
// It is built on package sdk, as any vendor's connector binary is: it listens on TCP or a unix
// socket, with health and reflection always on, or runs as a go-plugin plugin when a plugin
// host starts it. Without a Twilio account, --sandbox starts the built-in Twilio emulator on
// loopback and serves against it, so every RPC can be tried with grpcurl. Every flag can also
// be set by an SMS_CONNECTOR_* variable (--log-level: SMS_CONNECTOR_LOG_LEVEL); a flag on the
// command line wins.
//
// Unless the GOGC variable is set, the binary runs Go's garbage collector at GOGC=400 rather
// than Go's 100 (see defaultGOGC); GOGC=100 restores Go's default.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/console"
	"github.com/sms-connector/sms-connector/connector/deliverystatus"
	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliostatus"
	"github.com/sms-connector/sms-connector/sdk"
)

// The connectors this binary offers with --connector.
const (
	connectorTwilio  = "twilio"
	connectorConsole = "console"
)

// connectorNames lists them, the default first.
func connectorNames() []string { return []string{connectorTwilio, connectorConsole} }

// defaultGOGC is the garbage collector's target when GOGC is not set. The service's live heap
// is a few MiB, so letting the heap grow to five times it between collections costs little
// memory (BENCHMARKS.md gives RSS and CPU per send with and without it) and spares the
// collector work on every send. The choice is the program's, not the SDK's: a library does
// not change process-wide settings.
const defaultGOGC = 400

func main() {
	if len(os.Args) > 1 && os.Args[1] == emulatorCommand {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := runEmulator(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	setGCPercent(os.Getenv)
	redis.SetLogger(dropRedisLog{})
	sdk.Main(newBinary())
}

// dropRedisLog is go-redis's process-wide logger for this binary: it drops go-redis's own
// lines, which it would otherwise write to stderr as plain text ("redis: connection pool:
// failed to dial ..."), one per failed command while Redis is down, among the binary's JSON
// lines. Nothing is lost: each failure it reports comes back as that command's error, which
// the SDK counts (sms_connector_store_errors_total) and logs as JSON at warn level, at most
// once per 10 s per layer. Setting it is main's choice, as a library must not change
// process-wide settings.
type dropRedisLog struct{}

// Printf drops the line.
func (dropRedisLog) Printf(context.Context, string, ...any) {}

// setGCPercent sets the garbage collector's target to defaultGOGC, unless the GOGC variable
// is set: then Go's runtime has already applied it.
func setGCPercent(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
}

// app holds the binary's own flags, which its hooks share.
type app struct {
	connector     connectorName
	sandboxListen string
	twilioAPIURL  string
	twilioTimeout time.Duration
}

// newBinary describes the binary to the SDK.
func newBinary() sdk.Binary {
	a := &app{connector: connectorTwilio}
	return sdk.Binary{
		Name:            "sms-connector",
		Summary:         "Serves an SMS connector over gRPC (connector.sms.v1.SmsConnector): Twilio, or the console connector for development. Runs Go's garbage collector at GOGC=400 unless GOGC is set.",
		Flags:           a.flags,
		Sandbox:         a.sandbox,
		New:             a.newConnector,
		DefaultConfig:   a.defaultConfig,
		StatusCallbacks: a.statusCallbacks,
	}
}

// flags registers the binary's own flags.
func (a *app) flags(fs *flag.FlagSet) {
	fs.Var(&a.connector, "connector", "the connector to serve: "+strings.Join(connectorNames(), " or ")+" (console writes each message to stderr as a JSON line and sends nothing)")
	fs.StringVar(&a.sandboxListen, "sandbox-listen", "127.0.0.1:0", "address of the sandbox Twilio emulator (with --sandbox)")
	fs.Func("twilio-api-url", "operator-only override of Twilio's API base URL, http(s)://host[:port] (a proxy, or \"sms-connector "+emulatorCommand+"\")", a.setTwilioAPIURL)
	fs.DurationVar(&a.twilioTimeout, "twilio-timeout", twilio.DefaultTimeout, "upper bound of one Twilio API call; the RPC deadline applies too")
}

// sandbox starts the Twilio emulator on loopback and points the Twilio connector at it.
func (a *app) sandbox(_ context.Context, rt *sdk.Runtime) (json.RawMessage, func(), error) {
	switch {
	case a.connector != connectorTwilio:
		return nil, nil, fmt.Errorf("--sandbox emulates Twilio: it applies to --connector %s only (the %s connector sends nothing anyway)", connectorTwilio, a.connector)
	case a.twilioAPIURL != "":
		return nil, nil, errors.New("--sandbox brings its own Twilio emulator: drop --twilio-api-url, or drop --sandbox to use a real account")
	}
	emu, err := startSandbox(a.sandboxListen, rt.Log)
	if err != nil {
		return nil, nil, err
	}
	a.twilioAPIURL = emu.URL
	return sandboxConfig(), emu.Close, nil
}

// setTwilioAPIURL accepts a base URL of the form http(s)://host[:port], saying so when it is
// not one (a bare "127.0.0.1:4010" is the usual mistake).
func (a *app) setTwilioAPIURL(v string) error {
	u, err := url.Parse(v)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("%q is not a base URL: want http://host:port or https://host[:port], e.g. http://127.0.0.1:4010", v)
	case u.User != nil:
		return errors.New("the URL must not carry credentials: the Twilio config holds them")
	case strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: give scheme and host only, no path or query: Twilio's API paths are added to it", v)
	}
	a.twilioAPIURL = v
	return nil
}

// newConnector builds the chosen connector.
func (a *app) newConnector(_ context.Context, rt *sdk.Runtime) (connector.SmsConnector, error) {
	if a.connector == connectorConsole {
		return console.New(console.Options{MaxSegments: rt.MaxSegments}), nil
	}
	if a.twilioAPIURL != "" && !rt.Sandbox {
		rt.Log.Info("Twilio API URL overridden (--twilio-api-url): every Twilio call goes there", zap.String("url", a.twilioAPIURL))
	}
	callback := ""
	if rt.PublicURL != "" {
		callback = rt.PublicURL + twiliostatus.Path
	}
	c, err := twilio.New(twilio.Options{APIURL: a.twilioAPIURL, Timeout: a.twilioTimeout, MaxSegments: rt.MaxSegments, StatusCallbackURL: callback})
	if err != nil {
		return nil, fmt.Errorf("twilio connector: %w", err)
	}
	return c, nil
}

// statusCallbacks serves Twilio's status callbacks at twiliostatus.Path, verified with the
// default config's auth token: Twilio signs callbacks with the account's auth token, even for
// messages created with an API key. Without an auth token in the default config (API-key
// auth, or no default config) nothing can verify them: every callback is refused (403) and the
// statuses come from Twilio's fetch, as it says at start-up. Messages sent with a per-request
// config of another account call back too, signed with that account's token: they are refused
// the same way.
func (a *app) statusCallbacks(_ context.Context, rt *sdk.Runtime, defaultConfig json.RawMessage, rec *deliverystatus.Recorder) (map[string]http.Handler, error) {
	if a.connector != connectorTwilio {
		return nil, nil
	}
	var token, account string
	if len(defaultConfig) > 0 {
		if cfg, vs := twilio.ParseConfig(defaultConfig); len(vs) == 0 {
			token, account = cfg.AuthToken, cfg.AccountSID
		}
	}
	if token == "" {
		rt.Log.Warn("Twilio status callbacks cannot be verified: the default config has no authToken (Twilio signs callbacks with the account's auth token); every callback is refused (403) and statuses are fetched from Twilio instead",
			zap.String("path", twiliostatus.Path))
	}
	h, err := twiliostatus.New(twiliostatus.Options{AuthToken: token, AccountSID: account, CallbackURL: rt.PublicURL + twiliostatus.Path,
		Recorder: rec, Logger: rt.Log.Named("twilio-status")})
	if err != nil {
		return nil, err
	}
	rt.Log.Info("Twilio status callbacks", zap.String("url", rt.PublicURL+twiliostatus.Path), zap.Bool("verified", token != ""))
	return map[string]http.Handler{twiliostatus.Path: h}, nil
}

// defaultConfig is the console connector's ready-made config; Twilio has none (an account is
// needed).
func (a *app) defaultConfig() json.RawMessage {
	if a.connector == connectorConsole {
		return console.DefaultConfig()
	}
	return nil
}

// connectorName is the value of --connector: one of connectorNames.
type connectorName string

// String returns the name.
func (c *connectorName) String() string {
	if c == nil {
		return ""
	}
	return string(*c)
}

// Set accepts a known connector name.
func (c *connectorName) Set(v string) error {
	if !slices.Contains(connectorNames(), v) {
		return fmt.Errorf("unknown connector %q: want %s", v, strings.Join(connectorNames(), " or "))
	}
	*c = connectorName(v)
	return nil
}
