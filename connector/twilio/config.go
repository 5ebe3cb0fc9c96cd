package twilio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/sms-connector/sms-connector/connector"
)

// MaxBodyLength is the longest message body Twilio accepts, in UTF-16 code units (Twilio error
// 21617). Templates and rendered messages are held to it before anything is sent.
const MaxBodyLength = 1600

// MaxValidityPeriod is the largest ValidityPeriod Twilio accepts, in seconds (10 hours).
const MaxValidityPeriod = 36000

// The patterns of the configuration's string fields. They are written once here and used both
// by ParseConfig and in the JSON Schema of Metadata, so the two cannot drift apart. Each is
// valid in Go's RE2 and in ECMA-262 (the dialect JSON Schema uses).
const (
	patternAccountSID  = `^AC[0-9a-fA-F]{32}$`
	patternAPIKeySID   = `^SK[0-9a-fA-F]{32}$`
	patternServiceSID  = `^MG[0-9a-fA-F]{32}$`
	patternE164        = `^\+[1-9][0-9]{6,14}$`
	patternAlphaSender = `^[A-Za-z0-9 ]*[A-Za-z][A-Za-z0-9 ]*$` // and at most 11 characters
	patternCredential  = `^[A-Za-z0-9]+$`
	patternHost        = `^api(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?\.twilio\.com$`
	patternLocale      = `^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$`
	patternCodeInBody  = `\{\{\s*code\s*\}\}`
	maxAlphaSenderLen  = 11
	maxLocaleLen       = 35
)

var (
	reAccountSID  = regexp.MustCompile(patternAccountSID)
	reAPIKeySID   = regexp.MustCompile(patternAPIKeySID)
	reServiceSID  = regexp.MustCompile(patternServiceSID)
	reE164        = regexp.MustCompile(patternE164)
	reAlphaSender = regexp.MustCompile(patternAlphaSender)
	reCredential  = regexp.MustCompile(patternCredential)
	reHost        = regexp.MustCompile(patternHost)
	reLocale      = regexp.MustCompile(patternLocale)
)

// Config is the Twilio connector's configuration: Logto's Twilio SMS connector configuration
// (accountSID, authToken, fromMessagingServiceSID, templates, host, disableRiskCheck) plus
// fields Logto lacks (from, apiKeySID, apiKeySecret, validityPeriod, template locales). A Logto
// configuration pasted as is parses unchanged.
type Config struct {
	// AccountSID is the Twilio account ("AC" + 32 hex digits); messages are created under it.
	AccountSID string `json:"accountSID"`
	// AuthToken is the account's auth token. Secret. Unused when APIKeySID is set.
	AuthToken string `json:"authToken,omitempty"`
	// FromMessagingServiceSID is the Messaging Service ("MG" + 32 hex digits) that picks the
	// sender. Exactly one of it and From is set.
	FromMessagingServiceSID string `json:"fromMessagingServiceSID,omitempty"`
	// From is the sender: an E.164 number of the account or an alphanumeric sender ID.
	From string `json:"from,omitempty"`
	// APIKeySID is a Twilio API key ("SK" + 32 hex digits). With APIKeySecret it authenticates
	// instead of AuthToken, so the account's master token need not be handed out.
	APIKeySID string `json:"apiKeySID,omitempty"`
	// APIKeySecret is the API key's secret. Secret.
	APIKeySecret string `json:"apiKeySecret,omitempty"`
	// Host is Twilio's regional API host ("api.dublin.ie1.twilio.com"); empty means
	// api.twilio.com. Only Twilio's own hosts are accepted, never an arbitrary URL.
	Host string `json:"host,omitempty"`
	// Templates are the message templates, Logto's shape, optionally per locale.
	Templates []connector.Template `json:"templates"`
	// DisableRiskCheck sends RiskCheck=disable, turning off Twilio's SMS pumping protection
	// for these messages. Leave it off unless Twilio support asks otherwise.
	DisableRiskCheck bool `json:"disableRiskCheck,omitempty"`
	// ValidityPeriod, when positive, is how many seconds Twilio keeps trying to deliver a
	// message (1 to 36000); it should equal the code's lifetime, so a late SMS is dropped.
	ValidityPeriod int `json:"validityPeriod,omitempty"`
}

// usesAPIKey reports whether c authenticates with an API key rather than the auth token.
func (c *Config) usesAPIKey() bool { return c.APIKeySID != "" }

// credentials returns the Basic-auth user and password for c.
func (c *Config) credentials() (user, pass string) {
	if c.usesAPIKey() {
		return c.APIKeySID, c.APIKeySecret
	}
	return c.AccountSID, c.AuthToken
}

// sender returns the sender c uses: the messaging service or the From value.
func (c *Config) sender() string {
	if c.FromMessagingServiceSID != "" {
		return c.FromMessagingServiceSID
	}
	return c.From
}

// edgeRegion returns the edge and region of c.Host, both empty for api.twilio.com.
func (c *Config) edgeRegion() (edge, region string) {
	labels := strings.Split(c.Host, ".")
	if len(labels) == 5 {
		return labels[1], labels[2]
	}
	return "", ""
}

// knownFields lists the configuration's fields in the order they are checked and reported.
var knownFields = []string{
	"accountSID", "authToken", "fromMessagingServiceSID", "from", "apiKeySID", "apiKeySecret",
	"host", "templates", "disableRiskCheck", "validityPeriod",
}

// knownTemplateFields lists the fields of one template.
var knownTemplateFields = []string{"usageType", "content", "locale"}

// ParseConfig decodes and validates a Twilio configuration. It returns the configuration when
// it is valid; otherwise nil and every problem found (never just the first), each with its JSON
// path ("accountSID", "templates[2].content"). A wrong JSON type is a violation of its field,
// not a parse error. Descriptions never contain the value of a secret field.
//
// Choices beyond Logto's guard, and why:
//   - An empty string in an optional field (from, fromMessagingServiceSID, host, apiKeySID,
//     apiKeySecret, and authToken when an API key is given) counts as absent, since consoles
//     often save blank form fields as "".
//   - Templates need not cover every usage type. Logto's guard asks for Register, SignIn,
//     ForgotPassword and Generic, but a Generic template covers the others, and a platform may
//     never send some types; a send whose usage type has no template and no Generic fails
//     then with TEMPLATE_NOT_FOUND, as in Logto. An empty list is a violation.
//   - Unknown fields are violations, at the top level and in templates, to catch typos
//     ("acountSID") that would otherwise silently drop a setting. Logto's configurations carry
//     no other keys.
//   - When both an auth token and an API key are given, the API key is used.
//   - Credentials must be letters and digits only: twilio-go refuses anything else locally.
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

// jsonKind returns the JSON type of a raw value by its first byte: "string", "number",
// "boolean", "null", "object" or "array".
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
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

// strField is a string field as found in a configuration.
type strField struct {
	val   string // the value, when set
	set   bool   // present, a string, and not empty
	wrong bool   // present but not a string (already reported)
}

// str reads fields[name] as a string, reporting a wrong JSON type at path.
func (p *parser) str(fields map[string]json.RawMessage, name, path string) strField {
	raw, present := fields[name]
	if !present {
		return strField{}
	}
	if k := jsonKind(raw); k != "string" {
		p.bad(path, "must be a string, not a JSON %s", k)
		return strField{wrong: true}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.bad(path, "must be a string")
		return strField{wrong: true}
	}
	return strField{val: s, set: s != ""}
}

// parse does the work of ParseConfig.
func (p *parser) parse(raw json.RawMessage) *Config {
	if len(bytes.TrimSpace(raw)) == 0 {
		p.bad("", "is empty: the configuration must be a JSON object")
		return nil
	}
	if !json.Valid(raw) {
		p.bad("", "is not valid JSON: the configuration must be a JSON object")
		return nil
	}
	if k := jsonKind(raw); k != "object" {
		p.bad("", "is a JSON %s: the configuration must be a JSON object", k)
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		p.bad("", "cannot be decoded as a JSON object")
		return nil
	}
	str := func(name string) strField { return p.str(fields, name, name) }
	cfg := &Config{}

	// Credentials: the account, then an auth token or an API key.
	accountSID := str("accountSID")
	authToken := str("authToken")
	keySID := str("apiKeySID")
	keySecret := str("apiKeySecret")
	switch {
	case accountSID.wrong:
	case !accountSID.set:
		p.bad("accountSID", "is required: the Account SID from the Twilio Console, AC followed by 32 hex digits")
	case !reAccountSID.MatchString(accountSID.val):
		p.bad("accountSID", "must be AC followed by 32 hex digits (the Account SID from the Twilio Console)")
	default:
		cfg.AccountSID = accountSID.val
	}
	useKey := keySID.set && keySecret.set
	switch {
	case authToken.wrong:
	case authToken.set && !reCredential.MatchString(authToken.val):
		p.bad("authToken", "must contain only letters and digits (check for pasted spaces or quotes)")
	case authToken.set:
		cfg.AuthToken = authToken.val
	case !useKey && !keySID.set && !keySecret.set && !keySID.wrong && !keySecret.wrong:
		p.bad("authToken", "is required unless apiKeySID and apiKeySecret are given: the account's Auth Token from the Twilio Console")
	}
	switch {
	case keySID.wrong:
	case keySID.set && !reAPIKeySID.MatchString(keySID.val):
		p.bad("apiKeySID", "must be SK followed by 32 hex digits (the SID of a Twilio API key)")
	case keySID.set:
		cfg.APIKeySID = keySID.val
	case keySecret.set:
		p.bad("apiKeySID", "is required with apiKeySecret: the SID of the API key, SK followed by 32 hex digits")
	}
	switch {
	case keySecret.wrong:
	case keySecret.set && !reCredential.MatchString(keySecret.val):
		p.bad("apiKeySecret", "must contain only letters and digits (check for pasted spaces or quotes)")
	case keySecret.set:
		cfg.APIKeySecret = keySecret.val
	case keySID.set:
		p.bad("apiKeySecret", "is required with apiKeySID: the secret shown once when the API key was created")
	}
	if !useKey {
		// An incomplete API key is reported above; the auth token, if any, is what is used.
		cfg.APIKeySID, cfg.APIKeySecret = "", ""
	}

	// Sender: exactly one of fromMessagingServiceSID and from.
	service := str("fromMessagingServiceSID")
	from := str("from")
	switch {
	case service.set && from.set:
		p.bad("from", "cannot be given with fromMessagingServiceSID: give exactly one sender")
	case !service.set && !from.set && !service.wrong && !from.wrong:
		p.bad("fromMessagingServiceSID", "is required unless from is given: the SID of a Messaging Service, MG followed by 32 hex digits")
	}
	if service.set {
		if reServiceSID.MatchString(service.val) {
			cfg.FromMessagingServiceSID = service.val
		} else {
			p.bad("fromMessagingServiceSID", "must be MG followed by 32 hex digits (the SID of a Messaging Service)")
		}
	}
	if from.set {
		v := from.val
		switch {
		case reE164.MatchString(v):
			cfg.From = v
		case strings.HasPrefix(v, "+") || strings.Trim(v, "0123456789 ()-.") == "":
			p.bad("from", "must be a phone number in E.164 form (+ then 7 to 15 digits, like +14155550123) or an alphanumeric sender ID")
		case len(v) > maxAlphaSenderLen || !reAlphaSender.MatchString(v):
			p.bad("from", "must be an E.164 phone number or an alphanumeric sender ID: 1 to 11 of A-Z, a-z, 0-9 and space, with at least one letter")
		default:
			cfg.From = v
		}
	}

	if host := str("host"); host.set {
		if reHost.MatchString(host.val) {
			cfg.Host = host.val
		} else {
			p.bad("host", "must be a Twilio API host name only: api.twilio.com or api.<edge>.<region>.twilio.com (like api.dublin.ie1.twilio.com), in lowercase, without scheme, port or path")
		}
	}

	cfg.Templates = p.templates(fields)

	if raw, ok := fields["disableRiskCheck"]; ok {
		if k := jsonKind(raw); k != "boolean" {
			p.bad("disableRiskCheck", "must be true or false, not a JSON %s", k)
		} else {
			cfg.DisableRiskCheck = bytes.Equal(bytes.TrimSpace(raw), []byte("true"))
		}
	}

	if raw, ok := fields["validityPeriod"]; ok {
		if k := jsonKind(raw); k != "number" {
			p.bad("validityPeriod", "must be a whole number of seconds from 1 to %d, not a JSON %s", MaxValidityPeriod, k)
		} else if n, ok := integer(raw); !ok || n < 1 || n > MaxValidityPeriod {
			p.bad("validityPeriod", "must be a whole number of seconds from 1 to %d", MaxValidityPeriod)
		} else {
			cfg.ValidityPeriod = int(n)
		}
	}

	p.unknown(fields, knownFields, "", "is not a field of the Twilio configuration (known fields: "+strings.Join(knownFields, ", ")+")")
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

// integer returns a JSON number as an integer when it has no fractional part (60, 60.0, 6e1).
func integer(raw json.RawMessage) (int64, bool) {
	s := string(bytes.TrimSpace(raw))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// utf16Len returns the length of s in UTF-16 code units, the way Twilio counts characters.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
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
		if k := jsonKind(item); k != "object" {
			p.bad(path, "must be an object {usageType, content, locale?}, not a JSON %s", k)
			continue
		}
		var tf map[string]json.RawMessage
		if err := json.Unmarshal(item, &tf); err != nil {
			p.bad(path, "must be an object")
			continue
		}
		var t connector.Template
		usage := p.str(tf, "usageType", path+".usageType")
		okUsage := false
		switch {
		case usage.wrong:
		case !usage.set:
			p.bad(path+".usageType", "is required: one of %s", usageList())
		case !connector.UsageType(usage.val).Valid():
			p.bad(path+".usageType", "is not a known usage type: use one of %s", usageList())
		default:
			t.UsageType, okUsage = connector.UsageType(usage.val), true
		}

		content := p.str(tf, "content", path+".content")
		switch {
		case content.wrong:
		case strings.TrimSpace(content.val) == "":
			p.bad(path+".content", "is required: the message text, with {{code}} where the code goes")
		case utf16Len(content.val) > MaxBodyLength:
			p.bad(path+".content", "is %d characters long; Twilio accepts at most %d", utf16Len(content.val), MaxBodyLength)
		case !connector.HasCodePlaceholder(content.val):
			p.bad(path+".content", "does not contain {{code}}: the message would not carry the verification code")
		default:
			t.Content = content.val
		}

		locale := p.str(tf, "locale", path+".locale")
		okLocale := !locale.wrong
		if locale.set {
			if len(locale.val) <= maxLocaleLen && reLocale.MatchString(locale.val) {
				t.Locale = locale.val
			} else {
				p.bad(path+".locale", "must be a BCP 47 language tag like en, fr-CA or zh-Hant-TW, or absent for the default template")
				okLocale = false
			}
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

// usageList returns the known usage types as a comma-separated list.
func usageList() string {
	names := make([]string, 0, 9)
	for _, u := range connector.UsageTypes() {
		names = append(names, string(u))
	}
	return strings.Join(names, ", ")
}
