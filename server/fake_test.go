package server

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/sms-connector/sms-connector/connector"
)

// fakeConnector is an in-test connector.SmsConnector: by default it accepts every message and
// rejects a config whose "x" is not a string; send, validate and metadata replace that
// behaviour to inject any error, a panic or a block.
type fakeConnector struct {
	send     func(ctx context.Context, msg *connector.Message) (*connector.Receipt, error)
	validate func(ctx context.Context, cfg json.RawMessage) ([]connector.Violation, error)
	metadata func(ctx context.Context) (*connector.Metadata, error)

	mu   sync.Mutex
	sent []connector.Message
}

// setSend replaces the Send behaviour of a fake that is already serving.
func (f *fakeConnector) setSend(fn func(ctx context.Context, msg *connector.Message) (*connector.Receipt, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.send = fn
}

// setValidate replaces the ValidateConfig behaviour of a fake that is already serving.
func (f *fakeConnector) setValidate(fn func(ctx context.Context, cfg json.RawMessage) ([]connector.Violation, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.validate = fn
}

// Send records msg and answers with f.send or a GSM-7 receipt.
func (f *fakeConnector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	f.mu.Lock()
	f.sent = append(f.sent, *msg)
	send := f.send
	f.mu.Unlock()
	if send != nil {
		return send(ctx, msg)
	}
	if vs := fakeConfigViolations(msg.Config); len(vs) > 0 {
		return nil, &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "the configuration is invalid", Violations: vs}
	}
	return &connector.Receipt{
		MessageID: "SM00000000000000000000000000000001",
		Status:    "queued",
		Segments:  1,
		Encoding:  connector.EncodingGSM7,
		To:        msg.To,
		Sender:    "+15005550006",
	}, nil
}

// ValidateConfig answers with f.validate or the fake's one rule.
func (f *fakeConnector) ValidateConfig(ctx context.Context, cfg json.RawMessage) ([]connector.Violation, error) {
	f.mu.Lock()
	validate := f.validate
	f.mu.Unlock()
	if validate != nil {
		return validate(ctx, cfg)
	}
	return fakeConfigViolations(cfg), nil
}

// Metadata answers with f.metadata or fakeMetadata.
func (f *fakeConnector) Metadata(ctx context.Context) (*connector.Metadata, error) {
	if f.metadata != nil {
		return f.metadata(ctx)
	}
	return fakeMetadata(), nil
}

// messages returns what Send received.
func (f *fakeConnector) messages() []connector.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]connector.Message(nil), f.sent...)
}

// fakeConfigViolations is the fake's config rule: "x", when present, must be a string.
func fakeConfigViolations(cfg json.RawMessage) []connector.Violation {
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		return []connector.Violation{{Field: "", Description: "is not a JSON object"}}
	}
	if x, ok := m["x"]; ok {
		if _, ok := x.(string); !ok {
			return []connector.Violation{{Field: "x", Description: "must be a string"}}
		}
	}
	return nil
}

// fakeID is the fake connector's id.
const fakeID = "fake-sms"

// fakeMetadata uses the Go shapes a real connector would (typed slices in the schema, a
// []string default) to prove the JSON-based conversion.
func fakeMetadata() *connector.Metadata {
	return &connector.Metadata{
		ID:          fakeID,
		Target:      "fake",
		Name:        map[string]string{"en": "Fake SMS", "fr": "SMS factice"},
		Description: map[string]string{"en": "Sends nothing."},
		Logo:        "data:image/svg+xml;base64,PHN2Zy8+",
		Readme:      "# Fake",
		FormItems: []connector.FormItem{
			{Key: "authToken", Label: "Auth token", Type: connector.FormItemText, Required: true, Confidential: true},
			{Key: "validityPeriod", Label: "Validity", Type: connector.FormItemNumber, Default: 600},
			{Key: "disableRiskCheck", Label: "Risk check off", Type: connector.FormItemSwitch, Default: false},
			{Key: "templates", Label: "Templates", Type: connector.FormItemJSON, Default: []string{"a", "b"}},
			{Key: "region", Label: "Region", Type: connector.FormItemSelect, Default: "us1",
				SelectItems: []connector.SelectItem{{Value: "us1", Title: "US"}, {Value: "ie1", Title: "Ireland"}}},
		},
		ConfigSchema: map[string]any{
			"type":       "object",
			"required":   []string{"authToken"},
			"properties": map[string]map[string]string{"authToken": {"type": "string"}},
		},
		ConfigTemplate: map[string]any{"authToken": "", "templates": []map[string]string{{"usageType": "Generic", "content": "{{code}}"}}},
		UsageTypes:     []connector.UsageType{connector.UsageSignIn, connector.UsageGeneric, connector.UsageBindMfa},
		Version:        "1.2.3",
	}
}
