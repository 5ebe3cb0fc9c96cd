// Package bench measures what sms-connector costs on top of calling Twilio directly.
//
// One workload (a Register verification code to one recipient, rendered from a one-line
// template, accepted by the Twilio emulator of package twiliotest with no added latency) is
// driven three ways:
//
//	(a) direct     twilio-go's CreateMessage called directly with one shared, tuned transport:
//	               the limit, since every way of sending through Twilio from Go pays for it
//	(b) connector  the Go Twilio connector in process (Message.Check, then Connector.Send)
//	(c) grpc       SendMessage over gRPC through a server: the built bin/sms-connector binary
//	               (cmd/sms-load) or an in-process server on loopback (BenchmarkGRPCSend)
//
// For (b) and (c) the connector configuration comes either from the server's default
// configuration (ConfigDefault) or with every request (ConfigPerRequest), the way a platform
// with many tenants sends it.
//
// The package holds the pieces the Go benchmarks (go test -bench . -benchmem ./bench/) and the
// load command (cmd/sms-load) share: the workload, one SendFunc per path, a closed-loop load
// runner with latency percentiles, process CPU and RSS readings from /proc, the emulator as a
// child process, the binary's start-up measurement, and RunSuite, which runs the whole matrix
// and writes the markdown report of BENCHMARKS.md.
package bench

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// The workload: every path sends this message, so the emulator receives identical requests.
const (
	// To is the recipient, a well-formed number the emulator accepts.
	To = "+14155550123"
	// From is the sender, Twilio's magic number that always succeeds.
	From = twiliotest.FromValid
	// Code is the verification code.
	Code = "424242"
	// Template is the Register template of the configuration.
	Template = "Your verification code is {{code}}."
	// Body is Template rendered with Code: what path (a) sends as is.
	Body = "Your verification code is 424242."
)

// ConfigMode says where the connector configuration of a send comes from.
type ConfigMode string

// The configuration modes.
const (
	// ConfigDefault: the request carries no configuration; the server's default is used.
	ConfigDefault ConfigMode = "default"
	// ConfigPerRequest: every request carries the tenant's configuration (over gRPC, as the
	// request's google.protobuf.Struct config).
	ConfigPerRequest ConfigMode = "per-request"
	// ConfigPerRequestJSON: every request carries the tenant's configuration as JSON text, in
	// the request's config_json. Path (c) only: the connector in process (b) is always handed
	// JSON, so for it this is ConfigPerRequest.
	ConfigPerRequestJSON ConfigMode = "per-request-json"
)

// ParseConfigMode returns the mode named s.
func ParseConfigMode(s string) (ConfigMode, error) {
	switch m := ConfigMode(s); m {
	case ConfigDefault, ConfigPerRequest, ConfigPerRequestJSON:
		return m, nil
	}
	return "", fmt.Errorf("unknown config mode %q (want %q, %q or %q)", s, ConfigDefault, ConfigPerRequest, ConfigPerRequestJSON)
}

// configValue returns tenant's Twilio configuration as a JSON value: the emulator's sandbox
// account, the magic sender and Logto's four required templates. Tenants differ only in the
// text of a template the workload never uses, so every tenant sends the same SMS while a
// configuration cache keyed by content sees tenants distinct configurations.
func configValue(tenant int) map[string]any {
	tpl := func(usage connector.UsageType, content string) map[string]any {
		return map[string]any{"usageType": string(usage), "content": content}
	}
	return map[string]any{
		"accountSID": twiliotest.SandboxAccountSID,
		"authToken":  twiliotest.SandboxAuthToken,
		"from":       From,
		"templates": []any{
			tpl(connector.UsageRegister, Template),
			tpl(connector.UsageSignIn, "Your sign-in code is {{code}}."),
			tpl(connector.UsageForgotPassword, "Your password reset code is {{code}}."),
			tpl(connector.UsageGeneric, fmt.Sprintf("Tenant %d: your code is {{code}}.", tenant)),
		},
	}
}

// Config returns tenant's Twilio configuration as JSON (tenant 0 is the server default's).
func Config(tenant int) json.RawMessage {
	raw, err := json.Marshal(configValue(tenant))
	if err != nil {
		panic(err) // static data
	}
	return raw
}

// ConfigStruct returns tenant's Twilio configuration as the protobuf Struct a request carries.
func ConfigStruct(tenant int) *structpb.Struct {
	s, err := structpb.NewStruct(configValue(tenant))
	if err != nil {
		panic(err) // static data
	}
	return s
}

// NewRequest returns the workload's SendMessage request, carrying cfg (nil: use the server's
// default configuration).
func NewRequest(cfg *structpb.Struct) *smsv1.SendMessageRequest {
	return &smsv1.SendMessageRequest{
		To:        To,
		UsageType: smsv1.UsageType_USAGE_TYPE_REGISTER,
		Payload:   &smsv1.Payload{Code: Code, Locale: "en"},
		Config:    cfg,
	}
}

// NewMessage returns the workload's connector message with configuration cfg.
func NewMessage(cfg json.RawMessage) *connector.Message {
	return &connector.Message{
		To:        To,
		UsageType: connector.UsageRegister,
		Payload:   connector.Payload{Code: Code, Locale: "en"},
		Config:    cfg,
	}
}

// tenantConfigs returns the JSON configurations of n tenants (at least one).
func tenantConfigs(n int) []json.RawMessage {
	cs := make([]json.RawMessage, max(n, 1))
	for i := range cs {
		cs[i] = Config(i)
	}
	return cs
}

// cloneConfig returns a copy of cfg, so that a configuration "arrives" as fresh bytes.
func cloneConfig(cfg json.RawMessage) json.RawMessage { return bytes.Clone(cfg) }
