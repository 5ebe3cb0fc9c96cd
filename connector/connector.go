// Package connector is the vendor-neutral contract of an SMS connector: the interface a vendor
// implements, the message, receipt and metadata types that cross it, the typed errors every
// connector returns, and the helpers every vendor needs, written once: reading a configuration
// (ConfigReader), keeping what was prepared from it (ConfigCache), template selection by usage
// type and locale and rendering with the segment limit (TemplateSet), phone-number
// normalisation and segment counting.
//
// A vendor package (for example connector/twilio) implements SmsConnector and does only the
// vendor's I/O; the gRPC adapter in package server turns any SmsConnector into the
// connector.sms.v1.SmsConnector service. This package imports neither gRPC nor protobuf.
//
// What a vendor's connector uses: SmsConnector and the types it takes and returns, Error and
// the Reasons, ReadConfig and ConfigReader for its configuration, ConfigCache for the prepared
// form, TemplateSet to render, and DefaultTemplates, TemplatesJSON and TemplatesSchema for its
// Metadata; docs/writing-a-connector.md is the recipe, connector/httpvendor the HTTP side. The
// rest serves the SDK's layers (Message.Check, NormalizePhone, Forward for decorators,
// ViolationsError) or is what TemplateSet is built on (SelectTemplate, CompileTemplate).
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
	// Locales lists the end user's further BCP 47 tags in preference order (Logto's
	// uiLocales), tried after Locale when a template is selected.
	Locales []string
	// Link is a URL the message carries ({{link}}), as in an organization invitation, which
	// has a link rather than a code.
	Link string
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
	// FormItemText is a one-line text input.
	FormItemText FormItemType = "Text"
	// FormItemNumber is a number input.
	FormItemNumber FormItemType = "Number"
	// FormItemMultilineText is a text area.
	FormItemMultilineText FormItemType = "MultilineText"
	// FormItemSwitch is an on/off switch for a boolean.
	FormItemSwitch FormItemType = "Switch"
	// FormItemJSON is a JSON editor, for a list or object value (the templates).
	FormItemJSON FormItemType = "Json"
	// FormItemSelect is a choice among SelectItems.
	FormItemSelect FormItemType = "Select"
)

// FormItem describes one field of the connector's configuration form, which a platform's admin
// console renders so that an operator can fill in the configuration.
type FormItem struct {
	// Key is the configuration field the form item edits ("accountSID"); unique in a form.
	Key string
	// Label is the field's label, in English.
	Label string
	// Type is the input the platform renders.
	Type FormItemType
	// Required says the configuration is invalid without this field.
	Required bool
	// Placeholder is a hint shown in the empty field.
	Placeholder string
	// Default is the value a new configuration starts with (JSON-like: a string, number,
	// boolean, list or map); nil for none.
	Default any
	// Confidential says the value is a secret: platforms mask it and never log it.
	Confidential bool
	// Description explains the field to the operator, in English.
	Description string
	// SelectItems lists the choices of a Select item.
	SelectItems []SelectItem
}

// SelectItem is one choice of a Select form item.
type SelectItem struct {
	// Value is what the configuration stores when the choice is made.
	Value string
	// Title is the text shown for the choice.
	Title string
}

// Metadata describes a connector to a platform, in the shape of Logto's ConnectorMetadata:
// what to list it as, how to render its configuration form, and what configuration to start
// from.
type Metadata struct {
	// ID is the connector's stable id ("twilio-short-message-service"); platforms key stored
	// configurations by it, so it never changes between versions.
	ID string
	// Target is the vendor the connector sends through ("twilio"); connectors of the same
	// vendor share it.
	Target string
	// Name is the display name by BCP 47 tag (ValidLocale); "en" is always present.
	Name map[string]string
	// Description is a one-line description by BCP 47 tag; "en" is always present.
	Description map[string]string
	// Logo is the logo platforms show in their connector list, as a data URI (image/svg+xml).
	Logo string
	// LogoDark is the logo for dark backgrounds, as a data URI; empty when Logo fits both.
	LogoDark string
	// Readme tells an operator how to set the connector up, in Markdown.
	Readme string
	// FormItems are the fields of the configuration form, in display order.
	FormItems []FormItem
	// ConfigSchema is the JSON Schema of the configuration, for platforms and editors that
	// check a configuration before sending it; ValidateConfig remains the authority.
	ConfigSchema map[string]any
	// ConfigTemplate is a ready-to-edit configuration that ValidateConfig accepts, which a
	// platform offers as the starting point.
	ConfigTemplate map[string]any
	// UsageTypes lists the usage types the connector can send.
	UsageTypes []UsageType
	// Version is the connector's own version, for operators and bug reports.
	Version string
}
