package twilio_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/connectortest"
	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// conformanceHarness runs the connector conformance suite against the Twilio connector talking
// to a twiliotest emulator: what was delivered is what the emulator accepted, and a stall is
// the emulator's latency. It implements connectortest.Staller and connectortest.BodyLimiter.
type conformanceHarness struct {
	srv *twiliotest.Server
}

// MakeConnector returns a Connector pointed at the emulator; the suite closes it.
func (h *conformanceHarness) MakeConnector(context.Context, *testing.T) (connector.SmsConnector, error) {
	return twilio.New(twilio.Options{APIURL: h.srv.URL})
}

// Config returns a configuration for the emulator's sandbox account, sending from its valid
// magic number, with the templates ts.
func (h *conformanceHarness) Config(t *testing.T, ts []connector.Template) json.RawMessage {
	b, err := json.Marshal(map[string]any{
		"accountSID": twiliotest.SandboxAccountSID,
		"authToken":  twiliotest.SandboxAuthToken,
		"from":       twiliotest.FromValid,
		"templates":  ts,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Delivered returns what the emulator accepted.
func (h *conformanceHarness) Delivered(*testing.T) []connectortest.Delivery {
	var out []connectortest.Delivery
	for _, m := range h.srv.Messages() {
		out = append(out, connectortest.Delivery{To: m.To, Body: m.Body})
	}
	return out
}

// InvalidConfigs returns configurations invalid in Twilio's own fields.
func (h *conformanceHarness) InvalidConfigs(t *testing.T) []connectortest.InvalidConfig {
	valid := func(mutate func(m map[string]any)) json.RawMessage {
		m := map[string]any{
			"accountSID": twiliotest.SandboxAccountSID,
			"authToken":  twiliotest.SandboxAuthToken,
			"from":       twiliotest.FromValid,
			"templates":  []any{map[string]any{"usageType": "Generic", "content": "Your code is {{code}}"}},
		}
		mutate(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return []connectortest.InvalidConfig{
		{Name: "malformed accountSID", Field: "accountSID",
			Config: valid(func(m map[string]any) { m["accountSID"] = "AC123" })},
		{Name: "missing accountSID", Field: "accountSID",
			Config: valid(func(m map[string]any) { delete(m, "accountSID") })},
		{Name: "missing authToken", Field: "authToken",
			Config: valid(func(m map[string]any) { delete(m, "authToken") })},
		{Name: "no sender", Field: "fromMessagingServiceSID",
			Config: valid(func(m map[string]any) { delete(m, "from") })},
		{Name: "two senders", Field: "from",
			Config: valid(func(m map[string]any) { m["fromMessagingServiceSID"] = "MG00000000000000000000000000000000" })},
		{Name: "host that is not Twilio's", Field: "host",
			Config: valid(func(m map[string]any) { m["host"] = "https://attacker.example" })},
		{Name: "validityPeriod out of range", Field: "validityPeriod",
			Config: valid(func(m map[string]any) { m["validityPeriod"] = 0 })},
		{Name: "API key without its secret", Field: "apiKeySecret",
			Config: valid(func(m map[string]any) { m["apiKeySID"] = "SK00000000000000000000000000000000" })},
		{Name: "misspelled field", Field: "acountSID",
			Config: valid(func(m map[string]any) { m["acountSID"] = twiliotest.SandboxAccountSID })},
	}
}

// Stall makes the emulator hold every later response until release.
func (h *conformanceHarness) Stall(*testing.T) (release func()) {
	h.srv.SetLatency(time.Hour)
	return sync.OnceFunc(func() { h.srv.SetLatency(0) })
}

// MaxBodyLength is Twilio's limit.
func (h *conformanceHarness) MaxBodyLength() int { return twilio.MaxBodyLength }

// Close stops the emulator, aborting any stalled request.
func (h *conformanceHarness) Close() { h.srv.Close() }

// TestConformance runs the connector conformance suite against the Twilio connector.
func TestConformance(t *testing.T) {
	connectortest.RunConformanceTests(t, func(context.Context, *testing.T) (connectortest.Harness, error) {
		return &conformanceHarness{srv: twiliotest.NewServer()}, nil
	})
}
