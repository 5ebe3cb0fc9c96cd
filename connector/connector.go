// Package connector is the vendor-neutral contract of an SMS connector: the interface a vendor
// implements, the message, receipt and metadata types that cross it, the typed errors every
// connector returns, and the helpers every vendor needs (template selection and rendering,
// phone-number normalisation, segment counting) written once.
//
// A vendor package (for example connector/twilio) implements SmsConnector and does only the
// vendor's I/O; the gRPC adapter in package server turns any SmsConnector into the
// connector.sms.v1.SmsConnector service. This package imports neither gRPC nor protobuf.
package connector

import (
	"context"
	"encoding/json"
)

// SmsConnector is what an SMS vendor implements. Implementations must be safe for concurrent
// use; every method that can block honours ctx (deadline and cancellation).
type SmsConnector interface {
	// Send delivers msg through the vendor and returns the vendor's receipt. msg.To is already
	// in E.164 form and the payload is checked (see Message.Check). Failures are *Error values
	// with the Reason that fits; anything else is reported to callers as an internal error.
	Send(ctx context.Context, msg *Message) (*Receipt, error)

	// ValidateConfig reports every problem of a connector configuration (the same JSON a
	// Message carries in Config), each with its field path. No problems means valid. The error
	// is for failures to validate, not for an invalid configuration.
	ValidateConfig(ctx context.Context, config json.RawMessage) ([]Violation, error)

	// Metadata describes the connector to a platform: names, form, schema, default config.
	Metadata(ctx context.Context) (*Metadata, error)
}

// Message is one verification message to deliver.
type Message struct {
	// To is the recipient in E.164 form ("+15005550006").
	To string
	// UsageType says what the code is for and selects the template.
	UsageType UsageType
	// Payload holds the values the template is rendered with.
	Payload Payload
	// Config is the connector's own JSON configuration for this message. Empty means the
	// connector's default configuration.
	Config json.RawMessage
	// IdempotencyKey, when set, identifies retries of the same logical send.
	IdempotencyKey string
	// ClientIP is the end user's IP address as the platform saw it, for abuse limits.
	ClientIP string
}

// Payload is what a template is rendered with: {{code}}, {{locale}} and any variable by its
// dotted path ({{application.name}}).
type Payload struct {
	// Code is the verification code.
	Code string
	// Locale is the end user's BCP 47 language tag; it selects a localised template.
	Locale string
	// Variables holds further values (JSON-like: maps, strings, numbers, booleans).
	Variables map[string]any
}

// Receipt is what a vendor answers for an accepted message.
type Receipt struct {
	// MessageID is the vendor's id of the message (Twilio: "SM...").
	MessageID string
	// Status is the vendor's status word at acceptance ("queued", "accepted").
	Status string
	// Segments is how many SMS segments the message takes.
	Segments int
	// Encoding is the character set the body is sent in.
	Encoding Encoding
	// To is the E.164 recipient the message was sent to.
	To string
	// Sender is the sender used: a number, an alphanumeric id or a messaging service id.
	Sender string
}

// Violation is one problem of a configuration or request, with the path of the offending field
// ("templates[2].content").
type Violation struct {
	// Field is the JSON path of the field, dotted, with [i] for array elements.
	Field string
	// Description says what is wrong, in words an operator can act on.
	Description string
}

// FormItemType is the kind of input a platform's admin console renders for a config field
// (Logto's ConnectorConfigFormItemType).
type FormItemType string

// Form item types, as Logto names them.
const (
	FormItemText          FormItemType = "Text"
	FormItemNumber        FormItemType = "Number"
	FormItemMultilineText FormItemType = "MultilineText"
	FormItemSwitch        FormItemType = "Switch"
	FormItemJSON          FormItemType = "Json"
	FormItemSelect        FormItemType = "Select"
)

// FormItem describes one field of the connector's configuration form.
type FormItem struct {
	Key          string
	Label        string
	Type         FormItemType
	Required     bool
	Placeholder  string
	Default      any
	Confidential bool
	Description  string
	// SelectItems lists the choices of a Select item.
	SelectItems []SelectItem
}

// SelectItem is one choice of a Select form item.
type SelectItem struct {
	Value string
	Title string
}

// Metadata describes a connector. Name and Description map BCP 47 tags to text; "en" is
// always present.
type Metadata struct {
	ID          string
	Target      string
	Name        map[string]string
	Description map[string]string
	Logo        string
	LogoDark    string
	Readme      string
	FormItems   []FormItem
	// ConfigSchema is the JSON Schema of the configuration.
	ConfigSchema map[string]any
	// ConfigTemplate is a ready-to-edit example configuration.
	ConfigTemplate map[string]any
	// UsageTypes lists the usage types the connector can send.
	UsageTypes []UsageType
	// Version is the connector's own version.
	Version string
}
