package console

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sms-connector/sms-connector/connector"
)

// MaxBodyLength is the longest rendered body the console connector writes, in UTF-16 code
// units. It is Twilio's limit (error 21617), so that a configuration tried out on the console
// behaves as it will on Twilio: a template that renders too long fails here first.
const MaxBodyLength = 1600

// MaxSenderNameLength bounds Config.SenderName, in characters.
const MaxSenderNameLength = 64

// Config is the console connector's configuration: Logto's template list, the same as the
// Twilio connector's, and an optional sender name to show in each line.
type Config struct {
	// Templates are the message templates, Logto's shape, optionally per locale. A Generic
	// template serves every usage type without its own.
	Templates []connector.Template `json:"templates"`
	// SenderName, when set, is written as the "sender" of each line and reported as the
	// receipt's Sender, standing in for a vendor's sender id.
	SenderName string `json:"senderName,omitempty"`
}

// knownFields lists the configuration's fields in the order they are checked.
var knownFields = []string{"templates", "senderName"}

// ParseConfig decodes and validates a console configuration. It returns the configuration
// when it is valid; otherwise nil and every problem found, each with its JSON path
// ("templates[2].content"). A wrong JSON type is a violation of its field, not a parse error.
//
// The template rules are the Twilio connector's, so a configuration that passes here passes
// there: at least one template, each carrying {{code}} and at most MaxBodyLength long, no two
// sharing a usage type and locale, and unknown fields reported to catch typos. As in Logto and
// on Twilio, templates need not cover every usage type: a Send whose usage type has neither its
// own template nor a Generic one fails with TEMPLATE_NOT_FOUND.
func ParseConfig(raw json.RawMessage) (*Config, []connector.Violation) {
	return connector.ReadConfig(raw, parse)
}

// parse does the work of ParseConfig on valid JSON, reporting through p.
func parse(p *connector.ConfigReader, raw json.RawMessage) *Config {
	fields, ok := p.Object(raw, "", "a JSON object")
	if !ok {
		return nil
	}
	cfg := &Config{Templates: p.TemplateList(fields, "templates", templateRules)}
	if sf := p.String(fields, "senderName", "senderName"); sf.Set {
		switch s := sf.Value; {
		case !utf8.ValidString(s):
			p.Add("senderName", "must be valid UTF-8")
		case utf8.RuneCountInString(s) > MaxSenderNameLength:
			p.Add("senderName", "must be at most %d characters", MaxSenderNameLength)
		case strings.ContainsFunc(s, unicode.IsControl):
			p.Add("senderName", "must not contain control characters (line breaks, tabs)")
		default:
			cfg.SenderName = s
		}
	}
	p.Unknown(fields, knownFields, "", "is not a field of the console configuration (known fields: "+strings.Join(knownFields, ", ")+")")
	return cfg
}

// templateRules are the template list's rules with the console's limit, Twilio's.
var templateRules = connector.TemplateRules{
	MaxLength: MaxBodyLength,
	TooLong:   "is %d characters long; at most %d are accepted (Twilio's limit)",
}

// defaultTemplates is one English template per usage type, the connector package's defaults.
var defaultTemplates = connector.DefaultTemplates()

// templatesJSON returns defaultTemplates as JSON-like values (a fresh copy on every call).
func templatesJSON() []any {
	return connector.TemplatesJSON(defaultTemplates)
}

// configTemplate is DefaultConfig as JSON-like values (a fresh copy on every call).
func configTemplate() map[string]any {
	return map[string]any{"templates": templatesJSON()}
}

// DefaultConfig returns a valid configuration with an English template for every usage type,
// so that a server running the console connector works without any configuration
// (sms-connector --connector console). A fresh copy on every call.
func DefaultConfig() json.RawMessage {
	b, err := json.Marshal(configTemplate())
	if err != nil { // cannot happen: the template is strings, maps and slices
		panic("console: marshalling the default configuration: " + err.Error())
	}
	return b
}
