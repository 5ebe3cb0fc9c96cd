package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sms-connector/sms-connector/connector"
)

// MaxBodyLength is the longest rendered body the console connector writes, in UTF-16 code
// units. It is Twilio's limit (error 21617), so that a configuration tried out on the console
// behaves as it will on Twilio: a template that renders too long fails here first.
const MaxBodyLength = 1600

// MaxSenderNameLength bounds Config.SenderName, in characters.
const MaxSenderNameLength = 64

// The patterns of the configuration, shared by ParseConfig and the JSON Schema so the two
// cannot drift apart. Each is valid in Go's RE2 and in ECMA-262 (JSON Schema's dialect).
const (
	patternLocale     = `^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$`
	patternCodeInBody = `\{\{\s*code\s*\}\}`
	maxLocaleLength   = 35
)

var reLocale = regexp.MustCompile(patternLocale)

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

// knownTemplateFields lists the fields of one template.
var knownTemplateFields = []string{"usageType", "content", "locale"}

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
	p := &parser{}
	cfg := p.parse(raw)
	if len(p.vs) > 0 {
		return nil, p.vs
	}
	return cfg, nil
}

// parser collects violations while it decodes a configuration.
type parser struct {
	vs []connector.Violation
}

// bad records one violation.
func (p *parser) bad(field, format string, args ...any) {
	p.vs = append(p.vs, connector.Violation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// jsonKind returns the JSON type of a raw value by its first byte.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// str reads fields[name] as a string, reporting a wrong JSON type at path. ok is false when
// the field is absent or of the wrong type.
func (p *parser) str(fields map[string]json.RawMessage, name, path string) (s string, ok bool) {
	raw, present := fields[name]
	if !present {
		return "", false
	}
	if k := jsonKind(raw); k != "string" {
		p.bad(path, "must be a string, not a JSON %s", k)
		return "", false
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		p.bad(path, "must be a string")
		return "", false
	}
	return s, true
}

// object decodes raw as a JSON object, reporting anything else at path.
func (p *parser) object(raw json.RawMessage, path, what string) (map[string]json.RawMessage, bool) {
	if k := jsonKind(raw); k != "object" {
		p.bad(path, "must be %s, not a JSON %s", what, k)
		return nil, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		p.bad(path, "must be %s", what)
		return nil, false
	}
	return fields, true
}

// parse does the work of ParseConfig.
func (p *parser) parse(raw json.RawMessage) *Config {
	switch {
	case len(bytes.TrimSpace(raw)) == 0:
		p.bad("", "is empty: the configuration must be a JSON object")
		return nil
	case !json.Valid(raw):
		p.bad("", "is not valid JSON: the configuration must be a JSON object")
		return nil
	}
	fields, ok := p.object(raw, "", "a JSON object")
	if !ok {
		return nil
	}
	cfg := &Config{Templates: p.templates(fields)}
	if s, ok := p.str(fields, "senderName", "senderName"); ok {
		switch {
		case !utf8.ValidString(s):
			p.bad("senderName", "must be valid UTF-8")
		case utf8.RuneCountInString(s) > MaxSenderNameLength:
			p.bad("senderName", "must be at most %d characters", MaxSenderNameLength)
		case strings.ContainsFunc(s, unicode.IsControl):
			p.bad("senderName", "must not contain control characters (line breaks, tabs)")
		default:
			cfg.SenderName = s
		}
	}
	p.unknown(fields, knownFields, "", "is not a field of the console configuration (known fields: "+strings.Join(knownFields, ", ")+")")
	return cfg
}

// unknown reports every key of fields not in known, sorted, as prefix+key.
func (p *parser) unknown(fields map[string]json.RawMessage, known []string, prefix, desc string) {
	var keys []string
	for k := range fields {
		if !slices.Contains(known, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		p.bad(prefix+k, "%s", desc)
	}
}

// utf16Len returns the length of s in UTF-16 code units, the way Twilio counts characters.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += max(utf16.RuneLen(r), 1)
	}
	return n
}

// usageList returns the known usage types as a comma-separated list.
func usageList() string {
	names := make([]string, 0, 9)
	for _, u := range connector.UsageTypes() {
		names = append(names, string(u))
	}
	return strings.Join(names, ", ")
}

// templates checks the templates field and returns the templates that passed.
func (p *parser) templates(fields map[string]json.RawMessage) []connector.Template {
	raw, ok := fields["templates"]
	if !ok {
		p.bad("templates", "is required: a list of {usageType, content, locale?}; a Generic template serves every usage type without its own")
		return nil
	}
	if k := jsonKind(raw); k != "array" {
		p.bad("templates", "must be a JSON array of {usageType, content, locale?}, not a JSON %s", k)
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		p.bad("templates", "must be a JSON array")
		return nil
	}
	if len(items) == 0 {
		p.bad("templates", "must list at least one template; a Generic one serves every usage type without its own")
		return nil
	}
	type key struct{ usage, locale string }
	seen := make(map[key]int, len(items))
	out := make([]connector.Template, 0, len(items))
	for i, item := range items {
		path := fmt.Sprintf("templates[%d]", i)
		tf, ok := p.object(item, path, "an object {usageType, content, locale?}")
		if !ok {
			continue
		}
		var t connector.Template
		okUsage := false
		if u, ok := p.str(tf, "usageType", path+".usageType"); ok || tf["usageType"] == nil {
			switch {
			case u == "":
				p.bad(path+".usageType", "is required: one of %s", usageList())
			case !connector.UsageType(u).Valid():
				p.bad(path+".usageType", "is not a known usage type: use one of %s", usageList())
			default:
				t.UsageType, okUsage = connector.UsageType(u), true
			}
		}

		if c, ok := p.str(tf, "content", path+".content"); ok || tf["content"] == nil {
			switch {
			case strings.TrimSpace(c) == "":
				p.bad(path+".content", "is required: the message text, with {{code}} where the code goes")
			case utf16Len(c) > MaxBodyLength:
				p.bad(path+".content", "is %d characters long; at most %d are accepted (Twilio's limit)", utf16Len(c), MaxBodyLength)
			case !connector.HasCodePlaceholder(c):
				p.bad(path+".content", "does not contain {{code}}: the message would not carry the verification code")
			default:
				t.Content = c
			}
		}

		okLocale := true
		if l, ok := p.str(tf, "locale", path+".locale"); ok && l != "" {
			if len(l) <= maxLocaleLength && reLocale.MatchString(l) {
				t.Locale = l
			} else {
				p.bad(path+".locale", "must be a BCP 47 language tag like en, fr-CA or zh-Hant-TW, or absent for the default template")
				okLocale = false
			}
		} else if !ok && tf["locale"] != nil {
			okLocale = false
		}

		p.unknown(tf, knownTemplateFields, path+".", "is not a field of a template (known fields: "+strings.Join(knownTemplateFields, ", ")+")")

		if okUsage && okLocale {
			k := key{string(t.UsageType), strings.ToLower(t.Locale)}
			if j, dup := seen[k]; dup {
				what := "no locale"
				if t.Locale != "" {
					what = "locale " + t.Locale
				}
				p.bad(path, "repeats templates[%d]: both are for usageType %s with %s; only one of them would ever be used", j, t.UsageType, what)
			} else {
				seen[k] = i
			}
		}
		out = append(out, t)
	}
	return out
}

// defaultTemplates is one English template per usage type, in connector.UsageTypes order.
var defaultTemplates = []connector.Template{
	{UsageType: connector.UsageRegister, Content: "Your sign-up verification code is {{code}}. It expires in 10 minutes."},
	{UsageType: connector.UsageSignIn, Content: "Your sign-in verification code is {{code}}. It expires in 10 minutes."},
	{UsageType: connector.UsageForgotPassword, Content: "Your password reset code is {{code}}. It expires in 10 minutes."},
	{UsageType: connector.UsageGeneric, Content: "Your verification code is {{code}}. It expires in 10 minutes."},
	{UsageType: connector.UsageOrganizationInvitation, Content: "Your organization invitation code is {{code}}. It expires in 10 minutes."},
	{UsageType: connector.UsageUserPermissionValidation, Content: "Your permission validation code is {{code}}. It expires in 10 minutes."},
	{UsageType: connector.UsageBindNewIdentifier, Content: "Your code to link this phone number is {{code}}. It expires in 10 minutes."},
	{UsageType: connector.UsageMfaVerification, Content: "Your two-step verification code is {{code}}. It expires in 10 minutes."},
	{UsageType: connector.UsageBindMfa, Content: "Your two-step verification setup code is {{code}}. It expires in 10 minutes."},
}

// templatesJSON returns defaultTemplates as JSON-like values (a fresh copy on every call).
func templatesJSON() []any {
	out := make([]any, len(defaultTemplates))
	for i, t := range defaultTemplates {
		out[i] = map[string]any{"usageType": string(t.UsageType), "content": t.Content}
	}
	return out
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
