package twilio

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/sms-connector/sms-connector/connector"
)

const (
	hexSID      = "0123456789abcdef0123456789ABCDEF"
	testAccount = "AC" + hexSID
	testService = "MG" + hexSID
	testKeySID  = "SK" + hexSID
)

// logtoConfig is a Logto Twilio SMS connector configuration, as a user would paste it.
func logtoConfig() map[string]any {
	return map[string]any{
		"accountSID":              testAccount,
		"authToken":               "abcdef0123456789abcdef0123456789",
		"fromMessagingServiceSID": testService,
		"templates": []any{
			map[string]any{"usageType": "Register", "content": "Your code is {{code}}"},
			map[string]any{"usageType": "SignIn", "content": "Your code is {{code}}"},
			map[string]any{"usageType": "ForgotPassword", "content": "Your code is {{code}}"},
			map[string]any{"usageType": "Generic", "content": "Your code is {{code}}"},
		},
	}
}

// rawJSON marshals v, failing the test on error.
func rawJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tpl is a template item as JSON-like values.
func tpl(usage, content string, locale ...string) map[string]any {
	m := map[string]any{"usageType": usage, "content": content}
	if len(locale) > 0 {
		m["locale"] = locale[0]
	}
	return m
}

// fields returns the field paths of vs.
func fields(vs []connector.Violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Field
	}
	return out
}

func TestParseConfigLogto(t *testing.T) {
	cfg, vs := ParseConfig(rawJSON(t, logtoConfig()))
	if len(vs) > 0 {
		t.Fatalf("Logto config: violations %v", vs)
	}
	if cfg.AccountSID != testAccount || cfg.FromMessagingServiceSID != testService || len(cfg.Templates) != 4 {
		t.Errorf("config = %+v", cfg)
	}
	if user, pass := cfg.credentials(); user != testAccount || pass != cfg.AuthToken {
		t.Errorf("credentials = %q, %q", user, "<redacted>")
	}

	// Logto's own default form value: every usage type, in Logto's order.
	m := logtoConfig()
	var all []any
	for _, u := range connector.UsageTypes() {
		all = append(all, tpl(string(u), "Your Logto code is {{code}}. The code will remain active for 10 minutes."))
	}
	m["templates"] = all
	m["host"] = "api.dublin.ie1.twilio.com"
	m["disableRiskCheck"] = false
	if _, vs := ParseConfig(rawJSON(t, m)); len(vs) > 0 {
		t.Fatalf("Logto config with host and nine templates: %v", vs)
	}
}

func TestParseConfigReportsEveryProblem(t *testing.T) {
	m := logtoConfig()
	m["accountSID"] = "AC123"
	ts := m["templates"].([]any)
	ts[0].(map[string]any)["usageType"] = "Test"
	ts[2].(map[string]any)["content"] = "Your code is ready"
	cfg, vs := ParseConfig(rawJSON(t, m))
	if cfg != nil {
		t.Errorf("invalid config returned %+v", cfg)
	}
	want := []string{"accountSID", "templates[0].usageType", "templates[2].content"}
	if got := fields(vs); !slices.Equal(got, want) {
		t.Fatalf("fields = %q, want %q (%v)", got, want, vs)
	}
	for _, v := range vs {
		if v.Description == "" {
			t.Errorf("%s: empty description", v.Field)
		}
	}
}

func TestParseConfigNotAnObject(t *testing.T) {
	for _, raw := range []string{``, `  `, `null`, `[]`, `"config"`, `42`, `true`, `{`, `{"accountSID":}`} {
		cfg, vs := ParseConfig(json.RawMessage(raw))
		if cfg != nil || len(vs) != 1 || vs[0].Field != "" {
			t.Errorf("ParseConfig(%q) = %v, %v; want one violation with field \"\"", raw, cfg, vs)
		}
	}
}

func TestParseConfigRules(t *testing.T) {
	set := func(kv ...any) func(map[string]any) {
		return func(m map[string]any) {
			for i := 0; i < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(m, kv[i].(string))
				} else {
					m[kv[i].(string)] = kv[i+1]
				}
			}
		}
	}
	templates := func(ts ...any) func(map[string]any) {
		return func(m map[string]any) { m["templates"] = ts }
	}
	var nine []any
	for _, u := range connector.UsageTypes() {
		if u != connector.UsageGeneric {
			nine = append(nine, tpl(string(u), "code {{code}}"))
		}
	}
	generic := tpl("Generic", "code {{code}}")
	tests := []struct {
		name   string
		mutate func(map[string]any)
		want   []string // violation fields; nil: valid
		check  func(*testing.T, *Config)
	}{
		// accountSID
		{"accountSID missing", set("accountSID", nil), []string{"accountSID"}, nil},
		{"accountSID empty", set("accountSID", ""), []string{"accountSID"}, nil},
		{"accountSID not hex", set("accountSID", "AC"+strings.Repeat("g", 32)), []string{"accountSID"}, nil},
		{"accountSID wrong prefix", set("accountSID", "SK"+hexSID), []string{"accountSID"}, nil},
		{"accountSID a number", set("accountSID", 42), []string{"accountSID"}, nil},

		// authToken and API keys
		{"authToken missing", set("authToken", nil), []string{"authToken"}, nil},
		{"authToken empty", set("authToken", ""), []string{"authToken"}, nil},
		{"authToken not alphanumeric", set("authToken", "abc def"), []string{"authToken"}, nil},
		{"authToken wrong type", set("authToken", []any{"x"}), []string{"authToken"}, nil},
		{"API key instead of authToken", set("authToken", nil, "apiKeySID", testKeySID, "apiKeySecret", "s3cr3t"), nil,
			func(t *testing.T, c *Config) {
				if u, p := c.credentials(); u != testKeySID || p != "s3cr3t" {
					t.Errorf("credentials: user %q", u)
				}
			}},
		{"API key wins over authToken", set("apiKeySID", testKeySID, "apiKeySecret", "s3cr3t"), nil,
			func(t *testing.T, c *Config) {
				if u, _ := c.credentials(); u != testKeySID {
					t.Errorf("credentials: user %q, want the API key", u)
				}
			}},
		{"empty authToken with API key", set("authToken", "", "apiKeySID", testKeySID, "apiKeySecret", "s3cr3t"), nil, nil},
		{"API key without secret", set("authToken", nil, "apiKeySID", testKeySID), []string{"apiKeySecret"}, nil},
		{"API secret without key", set("authToken", nil, "apiKeySecret", "s3cr3t"), []string{"apiKeySID"}, nil},
		{"API key malformed", set("apiKeySID", "SK123", "apiKeySecret", "s3cr3t"), []string{"apiKeySID"}, nil},
		{"API secret not alphanumeric", set("apiKeySID", testKeySID, "apiKeySecret", "s3cr3t!"), []string{"apiKeySecret"}, nil},
		{"empty API fields are absent", set("apiKeySID", "", "apiKeySecret", ""), nil, nil},

		// sender
		{"no sender", set("fromMessagingServiceSID", nil), []string{"fromMessagingServiceSID"}, nil},
		{"two senders", set("from", "+15005550006"), []string{"from"}, nil},
		{"empty from with service", set("from", ""), nil, nil},
		{"service malformed", set("fromMessagingServiceSID", "MG12"), []string{"fromMessagingServiceSID"}, nil},
		{"service wrong type", set("fromMessagingServiceSID", 1), []string{"fromMessagingServiceSID"}, nil},
		{"from E.164", set("fromMessagingServiceSID", nil, "from", "+15005550006"), nil,
			func(t *testing.T, c *Config) {
				if c.sender() != "+15005550006" {
					t.Errorf("sender %q", c.sender())
				}
			}},
		{"from alphanumeric", set("fromMessagingServiceSID", "", "from", "Acme Inc"), nil, nil},
		{"from alphanumeric 11", set("fromMessagingServiceSID", nil, "from", "ABCDEFGHIJK"), nil, nil},
		{"from alphanumeric 12", set("fromMessagingServiceSID", nil, "from", "ABCDEFGHIJKL"), []string{"from"}, nil},
		{"from alphanumeric punctuation", set("fromMessagingServiceSID", nil, "from", "Acme-Inc"), []string{"from"}, nil},
		{"from digits only", set("fromMessagingServiceSID", nil, "from", "15005550006"), []string{"from"}, nil},
		{"from leading zero", set("fromMessagingServiceSID", nil, "from", "+05005550006"), []string{"from"}, nil},
		{"from too short", set("fromMessagingServiceSID", nil, "from", "+123456"), []string{"from"}, nil},

		// host
		{"host default", set("host", "api.twilio.com"), nil, func(t *testing.T, c *Config) {
			if e, r := c.edgeRegion(); e != "" || r != "" {
				t.Errorf("edge, region = %q, %q", e, r)
			}
		}},
		{"host regional", set("host", "api.dublin.ie1.twilio.com"), nil, func(t *testing.T, c *Config) {
			if e, r := c.edgeRegion(); e != "dublin" || r != "ie1" {
				t.Errorf("edge, region = %q, %q", e, r)
			}
		}},
		{"host with dash", set("host", "api.sao-paulo.br1.twilio.com"), nil, nil},
		{"host empty", set("host", ""), nil, nil},
		{"host URL", set("host", "https://api.twilio.com"), []string{"host"}, nil},
		{"host port", set("host", "api.twilio.com:443"), []string{"host"}, nil},
		{"host path", set("host", "api.twilio.com/2010-04-01"), []string{"host"}, nil},
		{"host foreign", set("host", "api.example.com"), []string{"host"}, nil},
		{"host suffix trick", set("host", "api.twilio.com.example.com"), []string{"host"}, nil},
		{"host region only", set("host", "api.ie1.twilio.com"), []string{"host"}, nil},
		{"host other product", set("host", "verify.twilio.com"), []string{"host"}, nil},
		{"host uppercase", set("host", "API.TWILIO.COM"), []string{"host"}, nil},
		{"host userinfo", set("host", "user@api.twilio.com"), []string{"host"}, nil},
		{"host wrong type", set("host", true), []string{"host"}, nil},

		// templates
		{"templates missing", set("templates", nil), []string{"templates"}, nil},
		{"templates object", set("templates", map[string]any{}), []string{"templates"}, nil},
		{"templates empty", templates(), []string{"templates"}, nil},
		{"template not an object", templates(generic, "Your code is {{code}}"), []string{"templates[1]"}, nil},
		{"template usageType missing", templates(generic, map[string]any{"content": "{{code}}"}), []string{"templates[1].usageType"}, nil},
		{"template usageType unknown", templates(generic, tpl("Test", "{{code}}")), []string{"templates[1].usageType"}, nil},
		{"template usageType wrong case", templates(generic, tpl("signin", "{{code}}")), []string{"templates[1].usageType"}, nil},
		{"template usageType number", templates(generic, map[string]any{"usageType": 1, "content": "{{code}}"}), []string{"templates[1].usageType"}, nil},
		{"template content missing", templates(generic, map[string]any{"usageType": "SignIn"}), []string{"templates[1].content"}, nil},
		{"template content blank", templates(generic, tpl("SignIn", "  ")), []string{"templates[1].content"}, nil},
		{"template content 1600", templates(generic, tpl("SignIn", strings.Repeat("a", 1592)+"{{code}}")), nil, nil},
		{"template content 1601", templates(generic, tpl("SignIn", strings.Repeat("a", 1593)+"{{code}}")), []string{"templates[1].content"}, nil},
		{"template content 1601 in UTF-16", templates(generic, tpl("SignIn", strings.Repeat("😀", 797)+"{{code}}a")), []string{"templates[1].content"}, nil},
		{"template without code", templates(generic, tpl("SignIn", "Welcome!")), []string{"templates[1].content"}, nil},
		{"template code with spaces", templates(tpl("Generic", "code: {{ code }}")), nil, nil},
		{"template locale", templates(generic, tpl("Generic", "{{code}}", "zh-Hant-TW"), tpl("Generic", "{{code}}", "fr-CA"), tpl("Generic", "{{code}}", "es-419")), nil, nil},
		{"template locale empty is absent", templates(tpl("Generic", "{{code}}", "")), nil, nil},
		{"template locale word", templates(generic, tpl("SignIn", "{{code}}", "english")), []string{"templates[1].locale"}, nil},
		{"template locale underscore", templates(generic, tpl("SignIn", "{{code}}", "en_US")), []string{"templates[1].locale"}, nil},
		{"template locale wrong type", templates(generic, map[string]any{"usageType": "SignIn", "content": "{{code}}", "locale": 7}), []string{"templates[1].locale"}, nil},
		{"template unknown field", templates(generic, map[string]any{"usageType": "SignIn", "content": "{{code}}", "contnet": "x"}), []string{"templates[1].contnet"}, nil},
		{"duplicate template", templates(generic, tpl("SignIn", "a {{code}}"), tpl("SignIn", "b {{code}}")), []string{"templates[2]"}, nil},
		{"duplicate locale, other case", templates(generic, tpl("SignIn", "a {{code}}", "fr"), tpl("SignIn", "b {{code}}", "FR")), []string{"templates[2]"}, nil},
		{"same usage, different locales", templates(generic, tpl("SignIn", "a {{code}}", "fr"), tpl("SignIn", "b {{code}}")), nil, nil},
		{"no Generic is valid: a send without a template is TEMPLATE_NOT_FOUND", templates(tpl("SignIn", "{{code}}")), nil, nil},
		{"localised Generic only: no default for other locales", templates(tpl("Generic", "{{code}}", "fr")), []string{"templates"}, nil},
		{"localised SignIn only: no default for other locales", templates(tpl("SignIn", "{{code}}", "de"), tpl("SignIn", "{{code}}", "fr")), []string{"templates"}, nil},
		{"localised SignIn with a Generic default", templates(generic, tpl("SignIn", "{{code}}", "de"), tpl("Generic", "{{code}}", "es")), nil, nil},
		{"every usage type without Generic", templates(nine...), nil, nil},
		{"every usage type", templates(append(slices.Clone(nine), generic)...), nil, nil},

		// disableRiskCheck, validityPeriod
		{"disableRiskCheck", set("disableRiskCheck", true), nil, func(t *testing.T, c *Config) {
			if !c.DisableRiskCheck {
				t.Error("DisableRiskCheck false")
			}
		}},
		{"disableRiskCheck string", set("disableRiskCheck", "true"), []string{"disableRiskCheck"}, nil},
		{"validityPeriod", set("validityPeriod", 600), nil, func(t *testing.T, c *Config) {
			if c.ValidityPeriod != 600 {
				t.Errorf("ValidityPeriod %d", c.ValidityPeriod)
			}
		}},
		{"validityPeriod 600.0", set("validityPeriod", json.RawMessage("600.0")), nil, nil},
		{"validityPeriod bounds", set("validityPeriod", 36000), nil, nil},
		{"validityPeriod 0", set("validityPeriod", 0), []string{"validityPeriod"}, nil},
		{"validityPeriod too big", set("validityPeriod", 36001), []string{"validityPeriod"}, nil},
		{"validityPeriod fraction", set("validityPeriod", 1.5), []string{"validityPeriod"}, nil},
		{"validityPeriod string", set("validityPeriod", "600"), []string{"validityPeriod"}, nil},

		// unknown fields
		{"typo", set("acountSID", testAccount), []string{"acountSID"}, nil},
		{"typo replaces the field", set("accountSID", nil, "acountSID", testAccount), []string{"accountSID", "acountSID"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := logtoConfig()
			tt.mutate(m)
			cfg, vs := ParseConfig(rawJSON(t, m))
			if got := fields(vs); !slices.Equal(got, tt.want) {
				t.Fatalf("violations %v, want fields %q", vs, tt.want)
			}
			if tt.want == nil && cfg == nil {
				t.Fatal("valid config returned nil")
			}
			if tt.want != nil && cfg != nil {
				t.Fatal("invalid config returned a Config")
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

func TestParseConfigNeverEchoesSecrets(t *testing.T) {
	const token = "tok en-SECRETVALUE-1"
	const secret = "sec ret-SECRETVALUE-2"
	m := logtoConfig()
	m["authToken"] = token
	m["apiKeySID"] = testKeySID
	m["apiKeySecret"] = secret
	_, vs := ParseConfig(rawJSON(t, m))
	if len(vs) != 2 {
		t.Fatalf("violations %v, want authToken and apiKeySecret", vs)
	}
	for _, v := range vs {
		if strings.Contains(v.Description, "SECRETVALUE") || strings.Contains(v.Field, "SECRETVALUE") {
			t.Errorf("violation %q echoes a secret", v.Field)
		}
	}
}
