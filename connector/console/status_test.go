package console

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/sms-connector/sms-connector/connector"
)

// sendOne sends a SignIn message to +14155550123 through c and returns its receipt.
func sendOne(t *testing.T, c *Connector) *connector.Receipt {
	t.Helper()
	r, err := c.Send(context.Background(), &connector.Message{To: "+14155550123", UsageType: connector.UsageSignIn,
		Payload: connector.Payload{Code: "123456", Variables: map[string]any{"app": map[string]any{"name": "Acme"}}}, Config: []byte(testConfig)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMessageStatusOfWrittenMessages(t *testing.T) {
	var out bytes.Buffer
	c := New(Options{Writer: &out})
	r := sendOne(t, c)
	entries := decodeLines(t, out.Bytes())

	st, err := c.MessageStatus(context.Background(), r.MessageID, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := connector.MessageStatus{MessageID: r.MessageID, To: "+14155550123", State: connector.DeliveryDelivered,
		VendorStatus: Status, UpdatedAt: entries[0].Time, Segments: r.Segments}
	if *st != want {
		t.Errorf("MessageStatus = %+v, want %+v", *st, want)
	}

	tests := []struct {
		name   string
		ctx    func() context.Context
		id     string
		reason connector.Reason
	}{
		{"an id never written", context.Background, "console-00000000000000000000000000000000", connector.ReasonMessageNotFound},
		{"an empty id", context.Background, "", connector.ReasonMessageNotFound},
		{"a cancelled context", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, r.MessageID, connector.ReasonCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := c.MessageStatus(tt.ctx(), tt.id, nil)
			var ce *connector.Error
			if !errors.As(err, &ce) || ce.Reason != tt.reason || st != nil {
				t.Errorf("MessageStatus = %+v, %v; want %s", st, err, tt.reason)
			}
		})
	}
}

func TestMessageStatusForgetsTheOldest(t *testing.T) {
	const kept = 50
	var out bytes.Buffer
	c := New(Options{Writer: &out, KeptStatuses: kept})
	first := sendOne(t, c).MessageID
	second := sendOne(t, c).MessageID
	var last string
	for range kept - 1 {
		last = sendOne(t, c).MessageID
		out.Reset()
	}
	// kept+1 messages written: the first is forgotten, the second and last are kept.
	if _, err := c.MessageStatus(context.Background(), first, nil); connector.ReasonOf(err) != connector.ReasonMessageNotFound {
		t.Errorf("the oldest message: %v, want MESSAGE_NOT_FOUND", err)
	}
	for _, id := range []string{second, last} {
		if st, err := c.MessageStatus(context.Background(), id, nil); err != nil || st.State != connector.DeliveryDelivered {
			t.Errorf("MessageStatus(%s) = %+v, %v", id, st, err)
		}
	}
	if n := len(c.written.byID); n != kept {
		t.Errorf("%d statuses kept, want %d", n, kept)
	}
}

func TestMessageStatusKeptStatuses(t *testing.T) {
	tests := []struct {
		kept int
		want int
	}{{0, DefaultKeptStatuses}, {-1, 0}, {3, 3}}
	for _, tt := range tests {
		c := New(Options{Writer: &bytes.Buffer{}, KeptStatuses: tt.kept})
		if c.written.max != tt.want {
			t.Errorf("KeptStatuses %d keeps %d, want %d", tt.kept, c.written.max, tt.want)
		}
	}
	c := New(Options{Writer: &bytes.Buffer{}, KeptStatuses: -1})
	r := sendOne(t, c)
	if _, err := c.MessageStatus(context.Background(), r.MessageID, nil); connector.ReasonOf(err) != connector.ReasonMessageNotFound {
		t.Errorf("with no statuses kept: %v, want MESSAGE_NOT_FOUND", err)
	}
}
