package connector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// PatternCodeOrLinkInBody matches a {{code}} or a {{link}} placeholder, so that a template
// carries the code or the link. It is shared by every connector's JSON Schema of its templates,
// and valid in Go's RE2 and in ECMA-262 (the dialect JSON Schema uses).
const PatternCodeOrLinkInBody = `\{\{\s*(code|link)\s*\}\}`

// templateFields lists the fields of one template, in the order they are checked.
var templateFields = []string{"usageType", "content", "locale"}

// TemplateFields returns the fields of one template in a configuration's template list, in the
// order TemplateList checks them, so that a connector's schema and tests can be held to them.
// A fresh copy on every call.
func TemplateFields() []string {
	return slices.Clone(templateFields)
}

// ConfigReader collects the violations found while reading a connector's JSON configuration,
// so that every driver reports every problem (never just the first), each at its JSON path, in
// the same words. A wrong JSON type is a violation of its field, not a parse error. The zero
// value is ready to use.
type ConfigReader struct {
	// Violations are the problems found so far, in the order found.
	Violations []Violation
}

// ReadConfig decodes a connector's JSON configuration with read and returns the result when no
// violation was found; otherwise nil and every violation. Empty input and invalid JSON are
// reported here, at the path "" (the configuration itself), and so is text that is not UTF-8
// (encoding/json would quietly turn each bad byte into U+FFFD, changing a credential or a
// template); read gets valid JSON, checks that it is an object, and reports everything else
// through r.
func ReadConfig[T any](raw json.RawMessage, read func(r *ConfigReader, raw json.RawMessage) *T) (*T, []Violation) {
	r := &ConfigReader{}
	var v *T
	switch {
	case len(bytes.TrimSpace(raw)) == 0:
		r.Add("", "is empty: the configuration must be a JSON object")
	case !utf8.Valid(raw):
		r.Add("", "is not valid UTF-8: the configuration must be JSON text in UTF-8")
	case !json.Valid(raw):
		r.Add("", "is not valid JSON: the configuration must be a JSON object")
	default:
		v = read(r, raw)
	}
	if len(r.Violations) > 0 {
		return nil, r.Violations
	}
	return v, nil
}

// Add records one violation of field, its description formatted as fmt.Sprintf does.
func (r *ConfigReader) Add(field, format string, args ...any) {
	r.Violations = append(r.Violations, Violation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// JSONKind returns the JSON type of a raw value by its first byte: "string", "number",
// "boolean", "null", "object" or "array", and "nothing" for empty input. It is meant for
// values already known to be valid JSON, to name a wrong type in a violation.
func JSONKind(raw json.RawMessage) string {
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

// Object decodes raw as a JSON object. Anything else is reported at path as "must be what, not
// a JSON kind", and ok is false.
func (r *ConfigReader) Object(raw json.RawMessage, path, what string) (fields map[string]json.RawMessage, ok bool) {
	if k := JSONKind(raw); k != "object" {
		r.Add(path, "must be %s, not a JSON %s", what, k)
		return nil, false
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		r.Add(path, "must be %s", what)
		return nil, false
	}
	return fields, true
}

// StringField is a string field as found in a configuration.
type StringField struct {
	// Value is the field's value; empty when it is absent or of the wrong type.
	Value string
	// Set is true when the field is present, a string, and not empty: configuration consoles
	// often save blank form fields as "", which then counts as absent.
	Set bool
	// Wrong is true when the field is present but not a string; that is already reported.
	Wrong bool
}

// String reads fields[name] as a string, reporting a wrong JSON type at path.
func (r *ConfigReader) String(fields map[string]json.RawMessage, name, path string) StringField {
	raw, present := fields[name]
	if !present {
		return StringField{}
	}
	if k := JSONKind(raw); k != "string" {
		r.Add(path, "must be a string, not a JSON %s", k)
		return StringField{Wrong: true}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		r.Add(path, "must be a string")
		return StringField{Wrong: true}
	}
	return StringField{Value: s, Set: s != ""}
}

// Unknown reports every key of fields that is not in known, sorted, at prefix+key with the
// description desc, so that a typo in a field name is caught rather than silently dropped.
func (r *ConfigReader) Unknown(fields map[string]json.RawMessage, known []string, prefix, desc string) {
	var keys []string
	for k := range fields {
		if !slices.Contains(known, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		r.Add(prefix+k, "%s", desc)
	}
}

// UTF16Len returns the length of s in UTF-16 code units, the way SMS vendors such as Twilio
// count a message's characters.
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		n += max(utf16.RuneLen(r), 1)
	}
	return n
}

// TemplateRules are a connector's parameters of the template list rules that TemplateList
// applies: what its vendor's limit is, and how a template over it is described.
type TemplateRules struct {
	// MaxLength is the longest template content accepted, in UTF-16 code units.
	MaxLength int
	// TooLong describes a content over MaxLength: a format given the content's length and
	// MaxLength, in that order ("is %d characters long; at most %d are accepted").
	TooLong string
}

// TemplateList reads the list of Logto-style templates ({usageType, content, locale?}) at
// fields[name] and returns the templates that passed; every problem is reported at its path
// under name ("templates[2].content"). These are the rules every connector shares, so that a
// configuration valid for one is valid for another:
//   - the list is required and holds at least one template (a Generic one serves every usage
//     type without its own; one with neither fails at send time with TEMPLATE_NOT_FOUND);
//   - usageType is a known UsageType;
//   - content is not blank, at most rules.MaxLength UTF-16 code units, and carries {{code}} or
//     {{link}} (or both: see TemplateSet.Render for a send that lacks one);
//   - locale, when given and not empty, is a BCP 47 tag (ValidLocale, at most MaxLocaleLength);
//   - no two templates share a usage type and a locale (compared case-insensitively), since
//     only one of them would ever be used;
//   - a usage type whose templates all carry a locale has a template without one to fall back
//     to, of its own or Generic, so that a send in another locale or none gets a default
//     rather than TEMPLATE_NOT_FOUND (see SelectTemplate for the order);
//   - fields other than TemplateFields are reported, to catch typos.
func (r *ConfigReader) TemplateList(fields map[string]json.RawMessage, name string, rules TemplateRules) []Template {
	raw, ok := fields[name]
	if !ok {
		r.Add(name, "is required: a list of {usageType, content, locale?}; a Generic template serves every usage type without its own")
		return nil
	}
	if k := JSONKind(raw); k != "array" {
		r.Add(name, "must be a JSON array of {usageType, content, locale?}, not a JSON %s", k)
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		r.Add(name, "must be a JSON array")
		return nil
	}
	if len(items) == 0 {
		r.Add(name, "must list at least one template; a Generic one serves every usage type without its own")
		return nil
	}
	type key struct{ usage, locale string }
	seen := make(map[key]int, len(items))
	out := make([]Template, 0, len(items))
	for i, item := range items {
		path := fmt.Sprintf("%s[%d]", name, i)
		tf, ok := r.Object(item, path, "an object {usageType, content, locale?}")
		if !ok {
			continue
		}
		var t Template
		usage := r.String(tf, "usageType", path+".usageType")
		okUsage := false
		switch {
		case usage.Wrong:
		case !usage.Set:
			r.Add(path+".usageType", "is required: one of %s", usageList())
		case !UsageType(usage.Value).Valid():
			r.Add(path+".usageType", "is not a known usage type: use one of %s", usageList())
		default:
			t.UsageType, okUsage = UsageType(usage.Value), true
		}

		content := r.String(tf, "content", path+".content")
		switch {
		case content.Wrong:
		case strings.TrimSpace(content.Value) == "":
			r.Add(path+".content", "is required: the message text, with {{code}} where the code goes or {{link}} where the link goes")
		case UTF16Len(content.Value) > rules.MaxLength:
			r.Add(path+".content", rules.TooLong, UTF16Len(content.Value), rules.MaxLength)
		case !HasCodeOrLinkPlaceholder(content.Value):
			r.Add(path+".content", "contains neither {{code}} nor {{link}}: the message would carry neither the verification code nor the link")
		default:
			t.Content = content.Value
		}

		locale := r.String(tf, "locale", path+".locale")
		okLocale := !locale.Wrong
		if locale.Set {
			if len(locale.Value) <= MaxLocaleLength && ValidLocale(locale.Value) {
				t.Locale = locale.Value
			} else {
				r.Add(path+".locale", "must be a BCP 47 language tag like en, fr-CA or zh-Hant-TW, or absent for the default template")
				okLocale = false
			}
		}

		r.Unknown(tf, templateFields, path+".", "is not a field of a template (known fields: "+strings.Join(templateFields, ", ")+")")

		if okUsage && okLocale {
			k := key{string(t.UsageType), strings.ToLower(t.Locale)}
			if j, dup := seen[k]; dup {
				what := "no locale"
				if t.Locale != "" {
					what = "locale " + t.Locale
				}
				r.Add(path, "repeats %s[%d]: both are for usageType %s with %s; only one of them would ever be used", name, j, t.UsageType, what)
			} else {
				seen[k] = i
			}
		}
		out = append(out, t)
	}
	for _, u := range usagesWithoutDefault(out) {
		if u == UsageGeneric {
			r.Add(name, "has Generic templates only with a locale: a Generic send, or one of a usage type without templates of its own, in any other locale or without one would fail with TEMPLATE_NOT_FOUND; add a Generic template without locale")
			continue
		}
		r.Add(name, "has %s templates only with a locale, and no %s or Generic template without one: a %s send in any other locale or without one would fail with TEMPLATE_NOT_FOUND; add a template without locale for %s or Generic",
			u, u, u, u)
	}
	return out
}

// usageList returns the known usage types as a comma-separated list.
func usageList() string {
	names := make([]string, 0, 9)
	for _, u := range UsageTypes() {
		names = append(names, string(u))
	}
	return strings.Join(names, ", ")
}
