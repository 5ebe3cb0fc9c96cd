package main

import (
	"encoding/json"
	"fmt"
	"net"

	"go.uber.org/zap"

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
		"from":       twiliotest.FromValid,
		"templates":  ts,
	})
	if err != nil {
		panic(err) // static data: cannot fail
	}
	return raw
}
