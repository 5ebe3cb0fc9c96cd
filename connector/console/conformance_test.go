package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/connectortest"
	"github.com/sms-connector/sms-connector/connector/console"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// entries parses every line written to b; a line that is not an Entry fails the test.
func entries(t *testing.T, b *testutil.Buffer) []console.Entry {
	t.Helper()
	var out []console.Entry
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var e console.Entry
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("the console connector wrote a line that is not an Entry (%v): %q", err, sc.Text())
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the console output: %v", err)
	}
	return out
}

// harness runs the conformance suite against a console connector writing to a buffer; what
// was delivered is read back from the JSON lines. It has no Staller: the console's vendor is
// an io.Writer, whose Write cannot be interrupted (waiting for the write lock can; see
// TestSendWaitingForTheWriterHonoursContext).
type harness struct {
	out *testutil.Buffer
}

func (h *harness) MakeConnector(context.Context, *testing.T) (connector.SmsConnector, error) {
	return console.New(console.Options{Writer: h.out}), nil
}

func (h *harness) Config(t *testing.T, ts []connector.Template) json.RawMessage {
	b, err := json.Marshal(console.Config{Templates: ts})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *harness) Delivered(t *testing.T) []connectortest.Delivery {
	var out []connectortest.Delivery
	for _, e := range entries(t, h.out) {
		out = append(out, connectortest.Delivery{To: e.To, Body: e.Body})
	}
	return out
}

func (h *harness) InvalidConfigs(*testing.T) []connectortest.InvalidConfig {
	const generic = `{"usageType":"Generic","content":"Your code is {{code}}"}`
	return []connectortest.InvalidConfig{
		{Name: "templates missing", Config: json.RawMessage(`{"senderName":"Acme"}`), Field: "templates"},
		{Name: "templates not an array", Config: json.RawMessage(`{"templates":{}}`), Field: "templates"},
		{Name: "no templates", Config: json.RawMessage(`{"templates":[]}`), Field: "templates"},
		{Name: "unknown usage type", Config: json.RawMessage(`{"templates":[` + generic + `,{"usageType":"Login","content":"{{code}}"}]}`), Field: "templates[1].usageType"},
		{Name: "malformed locale", Config: json.RawMessage(`{"templates":[` + generic + `,{"usageType":"SignIn","content":"{{code}}","locale":"french!"}]}`), Field: "templates[1].locale"},
		{Name: "duplicate template", Config: json.RawMessage(`{"templates":[` + generic + `,` + generic + `]}`), Field: "templates[1]"},
		{Name: "senderName not a string", Config: json.RawMessage(`{"templates":[` + generic + `],"senderName":42}`), Field: "senderName"},
		{Name: "senderName too long", Config: json.RawMessage(`{"templates":[` + generic + `],"senderName":"` + strings.Repeat("x", console.MaxSenderNameLength+1) + `"}`), Field: "senderName"},
		{Name: "unknown field", Config: json.RawMessage(`{"templates":[` + generic + `],"sendername":"Acme"}`), Field: "sendername"},
	}
}

func (h *harness) Close() {}

// TestConformance runs the connector conformance suite against the console connector.
func TestConformance(t *testing.T) {
	connectortest.RunConformanceTests(t, func(context.Context, *testing.T) (connectortest.Harness, error) {
		return &harness{out: &testutil.Buffer{}}, nil
	})
}
