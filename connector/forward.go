package connector

import (
	"context"
	"encoding/json"
)

// Forward is embedded by a connector that wraps another and changes only what Send does (the
// SDK's defences, telemetry): it answers ValidateConfig and Metadata with the wrapped
// connector's, so that a wrapper writes Send alone and cannot forget to forward the rest.
type Forward struct {
	// Next is the wrapped connector.
	Next SmsConnector
}

// ValidateConfig returns Next's answer.
func (f Forward) ValidateConfig(ctx context.Context, config json.RawMessage) ([]Violation, error) {
	return f.Next.ValidateConfig(ctx, config)
}

// MessageStatus returns Next's answer, or NOT_SUPPORTED when Next cannot tell (see
// ReadStatus), so that a wrapper never hides a vendor's delivery status.
func (f Forward) MessageStatus(ctx context.Context, messageID string, config json.RawMessage) (*MessageStatus, error) {
	return ReadStatus(ctx, f.Next, messageID, config)
}

// Metadata returns Next's answer.
func (f Forward) Metadata(ctx context.Context) (*Metadata, error) {
	return f.Next.Metadata(ctx)
}
