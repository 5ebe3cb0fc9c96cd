package smsplugin

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

// Magic values of the fake connector.
const (
	fakeID          = "fake-sms"
	toNoGeo         = "+15005550003" // Send fails with COUNTRY_NOT_PERMITTED
	codeBlock       = "block"        // Send announces itself on entered and waits for release or ctx
	badConfigMarker = "bad"          // a config containing it is invalid
)

// fakeConnector is an in-test connector: it accepts every message, except the magic ones above.
type fakeConnector struct {
	entered chan struct{} // receives once per blocking Send that has started
	release chan struct{} // closed to let blocking Sends finish

	mu   sync.Mutex
	sent []connector.Message
}

func newFake() *fakeConnector {
	return &fakeConnector{entered: make(chan struct{}, 8), release: make(chan struct{})}
}

// messages returns what the fake was asked to send.
func (f *fakeConnector) messages() []connector.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]connector.Message(nil), f.sent...)
}

func (f *fakeConnector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	f.mu.Lock()
	f.sent = append(f.sent, *msg)
	f.mu.Unlock()
	if strings.Contains(string(msg.Config), badConfigMarker) {
		return nil, &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "the config has 1 problem",
			Violations: []connector.Violation{{Field: "templates[0].content", Description: "lacks {{code}}"}}}
	}
	switch {
	case msg.To == toNoGeo:
		return nil, &connector.Error{
			Reason: connector.ReasonCountryNotPermitted, Message: "the account may not send to this country",
			Provider: "fake", ProviderCode: "21408", MoreInfo: "https://example.com/21408",
			Err: context.Canceled, // a cause that must not cross the wire
		}
	case msg.Payload.Code == codeBlock:
		f.entered <- struct{}{}
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &connector.Receipt{MessageID: "FAKE1", Status: "queued", Segments: 1, Encoding: connector.EncodingGSM7, To: msg.To, Sender: "Acme"}, nil
}

func (f *fakeConnector) ValidateConfig(_ context.Context, cfg json.RawMessage) ([]connector.Violation, error) {
	if strings.Contains(string(cfg), badConfigMarker) {
		return []connector.Violation{{Field: "templates[0].content", Description: "lacks {{code}}"}}, nil
	}
	return nil, nil
}

func (f *fakeConnector) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{
		ID: fakeID, Target: "fake", Name: map[string]string{"en": "Fake"}, Description: map[string]string{"en": "A fake"},
		ConfigSchema: map[string]any{"type": "object"},
		UsageTypes:   connector.UsageTypes(), Version: "0.0.1",
	}, nil
}

// Magic message ids of statusFake.
const (
	fakeMessageID    = "FAKE1"      // the id the fake's Send returns; its status is DELIVERED
	unknownMessageID = "SMnotknown" // MESSAGE_NOT_FOUND
)

// statusFake is fakeConnector that tells delivery statuses: fakeMessageID is delivered,
// anything else unknown. It records the configs it was asked with.
type statusFake struct {
	*fakeConnector

	mu      sync.Mutex
	configs []string
}

func (f *statusFake) MessageStatus(_ context.Context, id string, cfg json.RawMessage) (*connector.MessageStatus, error) {
	f.mu.Lock()
	f.configs = append(f.configs, string(cfg))
	f.mu.Unlock()
	if strings.Contains(string(cfg), badConfigMarker) {
		return nil, &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "the config has 1 problem",
			Violations: []connector.Violation{{Field: "accountSID", Description: "is required"}}}
	}
	if id != fakeMessageID {
		return nil, connector.Errorf(connector.ReasonMessageNotFound, "no message %s", id)
	}
	return &connector.MessageStatus{MessageID: id, State: connector.DeliveryDelivered, VendorStatus: "delivered", Segments: 1,
		UpdatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}, nil
}

// askedConfigs returns the configs MessageStatus was asked with.
func (f *statusFake) askedConfigs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.configs...)
}
