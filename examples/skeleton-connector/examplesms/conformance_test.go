package examplesms_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"example.com/examplesms-connector/examplesms"
	"example.com/examplesms-connector/examplesms/examplesmstest"
	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/connectortest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness runs the conformance suite against the connector talking to the test double:
// delivered is what the double accepted, and a stall is the double holding its answers.
type harness struct{ srv *examplesmstest.Server }

func (h *harness) MakeConnector(context.Context, *testing.T) (connector.SmsConnector, error) {
	return examplesms.New(examplesms.Options{APIURL: h.srv.URL})
}

func (h *harness) Config(t *testing.T, ts []connector.Template) json.RawMessage {
	return config(t, func(m map[string]any) { m["templates"] = ts })
}

func (h *harness) Delivered(*testing.T) []connectortest.Delivery {
	var out []connectortest.Delivery
	for _, m := range h.srv.Messages() {
		out = append(out, connectortest.Delivery{To: m.To, Body: m.Text})
	}
	return out
}

func (h *harness) InvalidConfigs(t *testing.T) []connectortest.InvalidConfig {
	return []connectortest.InvalidConfig{
		{Name: "missing apiKey", Field: "apiKey", Config: config(t, func(m map[string]any) { delete(m, "apiKey") })},
		{Name: "apiKey not a string", Field: "apiKey", Config: config(t, func(m map[string]any) { m["apiKey"] = 7 })},
		{Name: "missing from", Field: "from", Config: config(t, func(m map[string]any) { delete(m, "from") })},
		{Name: "sender id too long", Field: "from", Config: config(t, func(m map[string]any) { m["from"] = "ExampleSender" })},
		{Name: "a URL field", Field: "apiURL", Config: config(t, func(m map[string]any) { m["apiURL"] = "https://attacker.example" })},
	}
}

func (h *harness) Stall(*testing.T) (release func()) {
	h.srv.Stall()
	return sync.OnceFunc(h.srv.Release)
}

func (h *harness) MaxBodyLength() int { return examplesms.MaxBodyLength }

func (h *harness) Close() { h.srv.Close() }

// config returns a valid configuration for the double, changed by mutate.
func config(t *testing.T, mutate func(m map[string]any)) json.RawMessage {
	m := map[string]any{
		"apiKey":    examplesmstest.SandboxAPIKey,
		"from":      "Acme",
		"templates": []connector.Template{{UsageType: connector.UsageGeneric, Content: "Your code is {{code}}"}},
	}
	mutate(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance runs the connector conformance suite against the Example SMS connector.
func TestConformance(t *testing.T) {
	connectortest.RunConformanceTests(t, func(context.Context, *testing.T) (connectortest.Harness, error) {
		return &harness{srv: examplesmstest.NewServer()}, nil
	})
}
