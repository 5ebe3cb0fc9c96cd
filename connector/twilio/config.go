package twilio

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"

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
	maxAlphaSenderLen  = 11
)

var (
	reAccountSID  = regexp.MustCompile(patternAccountSID)
	reAPIKeySID   = regexp.MustCompile(patternAPIKeySID)
	reServiceSID  = regexp.MustCompile(patternServiceSID)
	reE164        = regexp.MustCompile(patternE164)
	reAlphaSender = regexp.MustCompile(patternAlphaSender)
	reCredential  = regexp.MustCompile(patternCredential)
	reHost        = regexp.MustCompile(patternHost)
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

// knownTemplateFields lists the fields of one template, as connector.TemplateList reads them.
var knownTemplateFields = connector.TemplateFields()

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
	return connector.ReadConfig(raw, parse)
}

// parse does the work of ParseConfig on valid JSON, reporting through p.
func parse(p *connector.ConfigReader, raw json.RawMessage) *Config {
	if k := connector.JSONKind(raw); k != "object" {
		p.Add("", "is a JSON %s: the configuration must be a JSON object", k)
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		p.Add("", "cannot be decoded as a JSON object")
		return nil
	}
	str := func(name string) connector.StringField { return p.String(fields, name, name) }
	cfg := &Config{}

	// Credentials: the account, then an auth token or an API key.
	accountSID := str("accountSID")
	authToken := str("authToken")
	keySID := str("apiKeySID")
	keySecret := str("apiKeySecret")
	switch {
	case accountSID.Wrong:
	case !accountSID.Set:
		p.Add("accountSID", "is required: the Account SID from the Twilio Console, AC followed by 32 hex digits")
	case !reAccountSID.MatchString(accountSID.Value):
		p.Add("accountSID", "must be AC followed by 32 hex digits (the Account SID from the Twilio Console)")
	default:
		cfg.AccountSID = accountSID.Value
	}
	useKey := keySID.Set && keySecret.Set
	switch {
	case authToken.Wrong:
	case authToken.Set && !reCredential.MatchString(authToken.Value):
		p.Add("authToken", "must contain only letters and digits (check for pasted spaces or quotes)")
	case authToken.Set:
		cfg.AuthToken = authToken.Value
	case !useKey && !keySID.Set && !keySecret.Set && !keySID.Wrong && !keySecret.Wrong:
		p.Add("authToken", "is required unless apiKeySID and apiKeySecret are given: the account's Auth Token from the Twilio Console")
	}
	switch {
	case keySID.Wrong:
	case keySID.Set && !reAPIKeySID.MatchString(keySID.Value):
		p.Add("apiKeySID", "must be SK followed by 32 hex digits (the SID of a Twilio API key)")
	case keySID.Set:
		cfg.APIKeySID = keySID.Value
	case keySecret.Set:
		p.Add("apiKeySID", "is required with apiKeySecret: the SID of the API key, SK followed by 32 hex digits")
	}
	switch {
	case keySecret.Wrong:
	case keySecret.Set && !reCredential.MatchString(keySecret.Value):
		p.Add("apiKeySecret", "must contain only letters and digits (check for pasted spaces or quotes)")
	case keySecret.Set:
		cfg.APIKeySecret = keySecret.Value
	case keySID.Set:
		p.Add("apiKeySecret", "is required with apiKeySID: the secret shown once when the API key was created")
	}
	if !useKey {
		// An incomplete API key is reported above; the auth token, if any, is what is used.
		cfg.APIKeySID, cfg.APIKeySecret = "", ""
	}

	// Sender: exactly one of fromMessagingServiceSID and from.
	service := str("fromMessagingServiceSID")
	from := str("from")
	switch {
	case service.Set && from.Set:
		p.Add("from", "cannot be given with fromMessagingServiceSID: give exactly one sender")
	case !service.Set && !from.Set && !service.Wrong && !from.Wrong:
		p.Add("fromMessagingServiceSID", "is required unless from is given: the SID of a Messaging Service, MG followed by 32 hex digits")
	}
	if service.Set {
		if reServiceSID.MatchString(service.Value) {
			cfg.FromMessagingServiceSID = service.Value
		} else {
			p.Add("fromMessagingServiceSID", "must be MG followed by 32 hex digits (the SID of a Messaging Service)")
		}
	}
	if from.Set {
		v := from.Value
		switch {
		case reE164.MatchString(v):
			cfg.From = v
		case strings.HasPrefix(v, "+") || strings.Trim(v, "0123456789 ()-.") == "":
			p.Add("from", "must be a phone number in E.164 form (+ then 7 to 15 digits, like +14155550123) or an alphanumeric sender ID")
		case len(v) > maxAlphaSenderLen || !reAlphaSender.MatchString(v):
			p.Add("from", "must be an E.164 phone number or an alphanumeric sender ID: 1 to 11 of A-Z, a-z, 0-9 and space, with at least one letter")
		default:
			cfg.From = v
		}
	}

	if host := str("host"); host.Set {
		if reHost.MatchString(host.Value) {
			cfg.Host = host.Value
		} else {
			p.Add("host", "must be a Twilio API host name only: api.twilio.com or api.<edge>.<region>.twilio.com (like api.dublin.ie1.twilio.com), in lowercase, without scheme, port or path")
		}
	}

	cfg.Templates = p.TemplateList(fields, "templates", templateRules)

	if raw, ok := fields["disableRiskCheck"]; ok {
		if k := connector.JSONKind(raw); k != "boolean" {
			p.Add("disableRiskCheck", "must be true or false, not a JSON %s", k)
		} else {
			cfg.DisableRiskCheck = bytes.Equal(bytes.TrimSpace(raw), []byte("true"))
		}
	}

	if raw, ok := fields["validityPeriod"]; ok {
		if k := connector.JSONKind(raw); k != "number" {
			p.Add("validityPeriod", "must be a whole number of seconds from 1 to %d, not a JSON %s", MaxValidityPeriod, k)
		} else if n, ok := integer(raw); !ok || n < 1 || n > MaxValidityPeriod {
			p.Add("validityPeriod", "must be a whole number of seconds from 1 to %d", MaxValidityPeriod)
		} else {
			cfg.ValidityPeriod = int(n)
		}
	}

	p.Unknown(fields, knownFields, "", "is not a field of the Twilio configuration (known fields: "+strings.Join(knownFields, ", ")+")")
	return cfg
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

// templateRules are the template list's rules with Twilio's body limit.
var templateRules = connector.TemplateRules{
	MaxLength: MaxBodyLength,
	TooLong:   "is %d characters long; Twilio accepts at most %d",
}
