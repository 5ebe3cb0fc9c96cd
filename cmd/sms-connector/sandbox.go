package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// startSandbox runs the Twilio emulator on addr and logs every message it accepts, body
// included (nothing leaves the machine and the code is what a tester wants to see); the
// recipient is masked as everywhere else.
func startSandbox(addr string, log *zap.Logger) (*twiliotest.Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
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
	return emu, nil
}

// sandboxConfig is the ready-made config of sandbox mode: the emulator's account, Twilio's
// magic sender +15005550006 and a template for every usage type (the organization
// invitation's carries {{link}} and {{code}}), plus a French SignIn one.
func sandboxConfig() json.RawMessage {
	type tmpl struct {
		UsageType string `json:"usageType"`
		Content   string `json:"content"`
		Locale    string `json:"locale,omitempty"`
	}
	var ts []tmpl
	for _, u := range connector.UsageTypes() {
		content := fmt.Sprintf("[sandbox] Your %s verification code is {{code}}.", u)
		if u == connector.UsageOrganizationInvitation {
			// Logto sends an invitation with a link and no code; a code alone works too.
			content = "[sandbox] You are invited to join an organization: {{link}} (code {{code}})"
		}
		ts = append(ts, tmpl{UsageType: string(u), Content: content})
	}
	ts = append(ts, tmpl{UsageType: string(connector.UsageSignIn), Locale: "fr", Content: "[sandbox] Votre code de connexion est {{code}}."})
	raw, err := json.Marshal(map[string]any{
		"accountSID": twiliotest.SandboxAccountSID,
		"authToken":  twiliotest.SandboxAuthToken,
		"from":       twiliotest.FromValid,
		"templates":  ts,
	})
	if err != nil {
		panic(err) // static data: cannot fail
	}
	return raw
}

// emulatorCommand is the argument that serves the Twilio emulator alone.
const emulatorCommand = "emulator"

// defaultEmulatorListen is where "sms-connector emulator" listens unless --listen says
// otherwise: a fixed port, so that other tools can be configured once.
const defaultEmulatorListen = "127.0.0.1:4010"

// runEmulator serves the sandbox's Twilio emulator on its own until ctx ends, and returns the
// exit code. stdout gets its URL and credentials as key=value lines (nothing else); the
// messages it accepts are logged to stderr as JSON lines, bodies included, as in sandbox mode.
func runEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name := "sms-connector " + emulatorCommand
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", defaultEmulatorListen, "address to serve the emulator on, host:port")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [--listen host:port]\n\n"+
			"Serves only the Twilio emulator of --sandbox (nothing is ever sent) and prints its URL and credentials;\n"+
			"point a Twilio client, or sms-connector --twilio-api-url URL with a config holding them, at it.\n"+
			"SIGINT or SIGTERM stops it.\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (flags only; see -h)\n", name, fs.Arg(0))
		return 2
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey, enc.EncodeTime = "time", zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(stderr)), zap.InfoLevel))
	defer func() { _ = log.Sync() }()
	emu, err := startSandbox(*listen, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stdout, "url=%s\naccount_sid=%s\nauth_token=%s\nfrom=%s\n",
		emu.URL, twiliotest.SandboxAccountSID, twiliotest.SandboxAuthToken, twiliotest.FromValid)
	<-ctx.Done()
	emu.Close()
	log.Info("sandbox Twilio emulator stopped")
	return 0
}
