package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeConnector counts sends and answers them with fail, when set, or a receipt.
type fakeConnector struct {
	mu    sync.Mutex
	sent  []string
	fail  func(*connector.Message) error
	calls int
}

func (f *fakeConnector) Send(_ context.Context, msg *connector.Message) (*connector.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if msg == nil {
		return nil, connector.Errorf(connector.ReasonInvalidRequest, "no message")
	}
	if f.fail != nil {
		if err := f.fail(msg); err != nil {
			return nil, err
		}
	}
	f.sent = append(f.sent, msg.To)
	return &connector.Receipt{MessageID: fmt.Sprintf("MSG%d", len(f.sent)), To: msg.To}, nil
}

func (f *fakeConnector) ValidateConfig(context.Context, json.RawMessage) ([]connector.Violation, error) {
	return []connector.Violation{{Field: "x", Description: "from next"}}, nil
}

func (f *fakeConnector) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{ID: "fake"}, nil
}

// Calls reports how many sends reached the connector.
func (f *fakeConnector) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// newGuard returns a Guard with o around a fakeConnector, on a fake clock unless o has one.
func newGuard(t *testing.T, o Options) (*Guard, *fakeConnector, *testutil.Clock) {
	t.Helper()
	clk := testutil.NewClock()
	if o.Now == nil {
		o.Now = clk.Now
	}
	next := &fakeConnector{}
	g, err := New(next, o)
	if err != nil {
		t.Fatal(err)
	}
	return g, next, clk
}

// open is a policy with no limits and no destination rules; tests add what they test.
func open() Policy {
	return Policy{PrefixDigits: 4, IPv6PrefixBits: 64}
}

// msg is a message to to from ip.
func msg(to, ip string) *connector.Message {
	return &connector.Message{To: to, UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "123456"}, ClientIP: ip}
}

// refusal returns err's *connector.Error, failing the test when there is none, and checks that
// it does not carry the phone number to.
func refusal(t *testing.T, err error, to string) *connector.Error {
	t.Helper()
	var e *connector.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *connector.Error", err, err)
	}
	digits := strings.TrimPrefix(to, "+")
	if len(digits) >= 7 && (strings.Contains(e.Error(), digits) || strings.Contains(e.Message, digits)) {
		t.Errorf("refusal carries the phone number: %q", e.Error())
	}
	return e
}
