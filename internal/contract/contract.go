// Package contract states the rules of the SmsConnector contract that hold on both sides of the
// wire, over connector types, once. connector/connectortest runs them against a Go connector in
// process; conformance runs them over gRPC after converting the answers back with protoconv.
// Each rule returns Problems: sentences that say what the contract requires and what was found,
// naming the Go field and, in parentheses, its proto field ("Metadata.UsageTypes
// (supported_usage_types)"), so that one message serves a Go author and a platform engineer.
package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/sms-connector/sms-connector/connector"
)

// Problems is what a rule found wrong, one sentence each; empty when the rule holds.
type Problems []string

// Addf adds one problem.
func (p *Problems) Addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// MetadataRule is one rule about the shape of a connector's Metadata: what a platform needs to
// list the connector, render its configuration form and offer a starting configuration.
type MetadataRule struct {
	// Name names the rule under "Metadata/" in both suites ("FormItems").
	Name string
	// Check returns what is wrong with md.
	Check func(md *connector.Metadata) Problems
}

// MetadataRules returns the metadata rules, in the order both suites run them.
func MetadataRules() []MetadataRule {
	return []MetadataRule{
		{"ID", metadataID},
		{"Name", func(md *connector.Metadata) Problems { return localized("Name (name)", md.Name) }},
		{"Description", func(md *connector.Metadata) Problems { return localized("Description (description)", md.Description) }},
		{"FormItems", metadataFormItems},
		{"ConfigSchema", metadataConfigSchema},
		{"ConfigTemplate", metadataConfigTemplate},
		{"UsageTypes", metadataUsageTypes},
	}
}

func metadataID(md *connector.Metadata) Problems {
	var p Problems
	if md.ID == "" || strings.ContainsFunc(md.ID, unicode.IsSpace) {
		p.Addf("Metadata.ID (id) must be a non-empty id without spaces (platforms key stored configurations by it), got %q", md.ID)
	}
	return p
}

// localized checks a map from BCP 47 tag to text, the field field of the metadata.
func localized(field string, m map[string]string) Problems {
	var p Problems
	tags := slices.Sorted(maps.Keys(m))
	if strings.TrimSpace(m["en"]) == "" {
		p.Addf("Metadata.%s must have a non-empty \"en\" entry (the language platforms fall back to), got the languages %q", field, tags)
	}
	for _, tag := range tags {
		if !connector.ValidLocale(tag) {
			p.Addf("every key of Metadata.%s must be a BCP 47 language tag like en, fr-CA or zh-Hant-TW, got %q", field, tag)
		} else if tag != "en" && strings.TrimSpace(m[tag]) == "" {
			p.Addf("every entry of Metadata.%s must be non-empty, the %q entry is empty", field, tag)
		}
	}
	return p
}

// formItemTypes are the form item types a platform knows how to render.
var formItemTypes = []connector.FormItemType{
	connector.FormItemText, connector.FormItemNumber, connector.FormItemMultilineText,
	connector.FormItemSwitch, connector.FormItemJSON, connector.FormItemSelect,
}

func metadataFormItems(md *connector.Metadata) Problems {
	var p Problems
	seen := make(map[string]int)
	for i, it := range md.FormItems {
		if it.Key == "" {
			p.Addf("every Metadata.FormItems (form_items) entry must have a Key (the config field it edits), entry %d has none", i)
			continue
		}
		if j, dup := seen[it.Key]; dup {
			p.Addf("Metadata.FormItems (form_items) keys must be unique, entries %d and %d both have the key %q", j, i, it.Key)
		} else {
			seen[it.Key] = i
		}
		if strings.TrimSpace(it.Label) == "" {
			p.Addf("every Metadata.FormItems (form_items) entry must have a Label, %q has none", it.Key)
		}
		if !slices.Contains(formItemTypes, it.Type) {
			p.Addf("every Metadata.FormItems (form_items) entry must have one of the types %q, %q has %q", formItemTypes, it.Key, it.Type)
		}
		if it.Type == connector.FormItemSelect && len(it.SelectItems) == 0 {
			p.Addf("a Select form item must list its SelectItems (select_items), %q lists none", it.Key)
		}
		if _, err := json.Marshal(it.Default); err != nil {
			p.Addf("a form item's Default must be JSON-like (it crosses the wire as JSON), the Default of %q is not: %v", it.Key, err)
		}
	}
	return p
}

func metadataConfigSchema(md *connector.Metadata) Problems {
	var p Problems
	if md.ConfigSchema == nil {
		p.Addf("Metadata.ConfigSchema (config_schema) must be the JSON Schema of the configuration, it is absent")
		return p
	}
	if typ, _ := md.ConfigSchema["type"].(string); typ != "object" {
		p.Addf("Metadata.ConfigSchema (config_schema) must be a JSON Schema with \"type\": \"object\" (configurations are JSON objects), got \"type\": %s",
			jsonText(md.ConfigSchema["type"]))
	}
	if _, err := json.Marshal(md.ConfigSchema); err != nil {
		p.Addf("Metadata.ConfigSchema (config_schema) must be JSON-like (it crosses the wire as JSON): %v", err)
	}
	return p
}

func metadataConfigTemplate(md *connector.Metadata) Problems {
	var p Problems
	if md.ConfigTemplate == nil {
		p.Addf("Metadata.ConfigTemplate (config_template) must be a ready-to-edit configuration, it is absent")
	} else if _, err := json.Marshal(md.ConfigTemplate); err != nil {
		p.Addf("Metadata.ConfigTemplate (config_template) must be JSON-like (it crosses the wire as JSON): %v", err)
	}
	return p
}

func metadataUsageTypes(md *connector.Metadata) Problems {
	var p Problems
	if len(md.UsageTypes) == 0 {
		p.Addf("Metadata.UsageTypes (supported_usage_types) must list the usage types the connector sends, it is empty")
	}
	seen := make(map[connector.UsageType]bool)
	for _, u := range md.UsageTypes {
		switch {
		case u == "":
			p.Addf("Metadata.UsageTypes (supported_usage_types) must not hold an unspecified usage type (USAGE_TYPE_UNSPECIFIED)")
		case !u.Valid():
			p.Addf("Metadata.UsageTypes (supported_usage_types) must hold only the contract's usage types (%q), it holds %q", connector.UsageTypes(), u)
		case seen[u]:
			p.Addf("Metadata.UsageTypes (supported_usage_types) must not repeat a usage type, %s is listed twice", u)
		}
		seen[u] = true
	}
	return p
}

// The names of the ValidateConfig rules both suites run.
const (
	// RuleConfigTemplate: ValidateConfig accepts Metadata.ConfigTemplate (Accepted).
	RuleConfigTemplate = "ValidateConfig/ConfigTemplate"
	// RuleEmptyObject: ValidateConfig rejects {} with violations naming fields (Rejected).
	RuleEmptyObject = "ValidateConfig/EmptyObject"
	// RuleMissingCode: ValidateConfig flags a template with neither {{code}} nor {{link}} at its
	// path (MissingCode).
	RuleMissingCode = "ValidateConfig/MissingCode"
)

// Accepted checks ValidateConfig's violations vs for what, a valid configuration: none.
func Accepted(what string, vs []connector.Violation) Problems {
	var p Problems
	if len(vs) > 0 {
		p.Addf("ValidateConfig must accept %s with no violations, it reports %s", what, ShowViolations(vs))
	}
	return p
}

// Rejected checks ValidateConfig's violations vs for what, an invalid configuration: at least
// one violation, one of field when field is not "", and a description for each. named asks
// that some violation name a field (a path in the configuration) rather than the whole of it.
func Rejected(what string, vs []connector.Violation, field string, named bool) Problems {
	var p Problems
	switch {
	case len(vs) == 0:
		p.Addf("ValidateConfig must report %s as invalid, with a violation for each problem, it reports no violation", what)
		return p
	case field != "" && !hasField(vs, field):
		p.Addf("ValidateConfig must report a violation of the field %q for %s, it reports %s", field, what, ShowViolations(vs))
	case named && !slices.ContainsFunc(vs, func(v connector.Violation) bool { return v.Field != "" }):
		p.Addf("ValidateConfig must name the fields at fault in %s, its violations name none: %s", what, ShowViolations(vs))
	}
	return append(p, descriptions(what, vs)...)
}

// MissingCode checks ValidateConfig's violations vs for what, a configuration with a template
// that has neither {{code}} nor {{link}}: at least one violation, and the template named by its field path, which
// is under the path under when under is not "" ("templates" gives "templates[0].content").
func MissingCode(what string, vs []connector.Violation, under string) Problems {
	var p Problems
	if len(vs) == 0 {
		p.Addf("ValidateConfig must flag a template with neither {{code}} nor {{link}}, it reports no violation for %s", what)
		return p
	}
	atPath := func(v connector.Violation) bool {
		return v.Field != "" && (under == "" || UnderPath(v.Field, under))
	}
	if !slices.ContainsFunc(vs, atPath) {
		p.Addf("ValidateConfig must report a template with neither {{code}} nor {{link}} with the field path of the template (\"templates[0].content\"); for %s it reports %s",
			what, ShowViolations(vs))
	}
	return append(p, descriptions(what, vs)...)
}

// descriptions requires a description of every violation.
func descriptions(what string, vs []connector.Violation) Problems {
	var p Problems
	for _, v := range vs {
		if strings.TrimSpace(v.Description) == "" {
			p.Addf("every violation must have a Description (description) an operator can act on; the violation of the field %q for %s has none", v.Field, what)
		}
	}
	return p
}

// hasField reports whether some violation of vs is about field.
func hasField(vs []connector.Violation, field string) bool {
	return slices.ContainsFunc(vs, func(v connector.Violation) bool { return v.Field == field })
}

// UnderPath reports whether the field path field is path itself or a path under it
// ("templates[0].content" is under "templates").
func UnderPath(field, path string) bool {
	return field == path || strings.HasPrefix(field, path+".") || strings.HasPrefix(field, path+"[")
}

// ShowViolations renders violations for a message, the first few only.
func ShowViolations(vs []connector.Violation) string {
	const maxShown = 5
	parts := make([]string, 0, min(len(vs), maxShown)+1)
	for i, v := range vs {
		if i == maxShown {
			parts = append(parts, fmt.Sprintf("and %d more", len(vs)-maxShown))
			break
		}
		parts = append(parts, fmt.Sprintf("%q: %s", v.Field, Cut(v.Description)))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// Receipt checks the receipt r of what, a send to the E.164 number to that succeeded: the
// vendor's message id, the recipient echoed, at least one segment and a known encoding.
func Receipt(what string, r *connector.Receipt, to string) Problems {
	var p Problems
	if r == nil {
		p.Addf("%s must return a receipt, got none and no error", what)
		return p
	}
	if r.MessageID == "" {
		p.Addf("%s: Receipt.MessageID (message_id) must carry the vendor's message id, it is empty", what)
	}
	if r.To != to {
		p.Addf("%s: Receipt.To (to) must echo the recipient in E.164, %q, got %q", what, to, r.To)
	}
	if r.Segments < 1 {
		p.Addf("%s: Receipt.Segments (segments) must be at least 1, got %d", what, r.Segments)
	}
	if r.Encoding != connector.EncodingGSM7 && r.Encoding != connector.EncodingUCS2 {
		p.Addf("%s: Receipt.Encoding (encoding) must be %s (ENCODING_GSM7) or %s (ENCODING_UCS2), got %q", what, connector.EncodingGSM7, connector.EncodingUCS2, r.Encoding)
	}
	return p
}

// Failure checks err, the outcome of what, which must fail with reason want: a
// *connector.Error of that reason with a Message an operator can act on, and Violations when
// the reason is INVALID_CONFIG. It returns the error, or nil when err is no such error (then
// the first problem says what err is instead).
func Failure(what string, err error, want connector.Reason) (*connector.Error, Problems) {
	var p Problems
	var ce *connector.Error
	switch {
	case err == nil:
		p.Addf("%s must fail with reason %s, got success", what, want)
		return nil, p
	case !errors.As(err, &ce):
		p.Addf("%s must fail with a *connector.Error of reason %s, got a %T that is not a *connector.Error: %v", what, want, err, err)
		return nil, p
	case ce.Reason != want:
		p.Addf("%s must fail with reason %s, got reason %s: %v", what, want, ce.Reason, err)
		return nil, p
	}
	if strings.TrimSpace(ce.Message) == "" {
		p.Addf("%s: the error of reason %s must have a Message an operator can act on, it is empty", what, want)
	}
	if want == connector.ReasonInvalidConfig && len(ce.Violations) == 0 {
		p.Addf("%s must fail with INVALID_CONFIG carrying its Violations (each field at fault), it carries none", what)
	}
	return ce, p
}

// Describe says what an unexpected error is, naming its reason when it has one.
func Describe(err error) string {
	var ce *connector.Error
	if errors.As(err, &ce) {
		return fmt.Sprintf("reason %s: %v", ce.Reason, err)
	}
	return fmt.Sprintf("a %T that is not a *connector.Error: %v", err, err)
}

// jsonText renders a JSON-like value for a message; "nothing" when it is absent.
func jsonText(v any) string {
	if v == nil {
		return "nothing"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return Cut(string(b))
}

// Cut shortens a text for a one-line message.
func Cut(s string) string {
	const maxLen = 160
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxLen {
		return string(r[:maxLen]) + "..."
	}
	return s
}
