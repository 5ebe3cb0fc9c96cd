package twilio

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

func TestMetadata(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	md, err := c.Metadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if md.ID != "twilio-short-message-service" || md.Target != "twilio" || md.Version != "0.1.0" {
		t.Errorf("ID %q, Target %q, Version %q", md.ID, md.Target, md.Version)
	}
	for _, tag := range []string{"en", "fr"} {
		if md.Name[tag] == "" || md.Description[tag] == "" {
			t.Errorf("no name or description in %q", tag)
		}
	}
	svg, ok := strings.CutPrefix(md.Logo, "data:image/svg+xml;base64,")
	if !ok {
		t.Fatalf("logo %.40q is not an SVG data URI", md.Logo)
	}
	if b, err := base64.StdEncoding.DecodeString(svg); err != nil || !strings.HasPrefix(string(b), "<svg") {
		t.Errorf("logo does not decode to SVG: %v", err)
	}
	for _, s := range []string{"accountSID", "apiKeySID", "fromMessagingServiceSID", "validityPeriod", "api.dublin.ie1.twilio.com", "locale", "{{code}}"} {
		if !strings.Contains(md.Readme, s) {
			t.Errorf("readme does not mention %s", s)
		}
	}
	if !slices.Equal(md.UsageTypes, connector.UsageTypes()) {
		t.Errorf("UsageTypes %v", md.UsageTypes)
	}

	var keys []string
	for _, f := range md.FormItems {
		keys = append(keys, f.Key)
		if f.Label == "" || f.Type == "" || f.Description == "" {
			t.Errorf("form item %s incomplete: %+v", f.Key, f)
		}
		wantSecret := f.Key == "authToken" || f.Key == "apiKeySecret"
		if f.Confidential != wantSecret {
			t.Errorf("form item %s: Confidential %v", f.Key, f.Confidential)
		}
	}
	if want := []string{"accountSID", "authToken", "fromMessagingServiceSID", "from", "apiKeySID", "apiKeySecret", "host", "disableRiskCheck", "validityPeriod", "templates"}; !slices.Equal(keys, want) {
		t.Errorf("form keys %q, want %q", keys, want)
	}
	slices.Sort(keys)
	known := slices.Sorted(slices.Values(knownFields))
	if !slices.Equal(keys, known) {
		t.Errorf("form keys %q differ from the configuration's fields %q", keys, known)
	}

	// The form's default templates and the configuration template are valid as they are.
	tmpl := rawJSON(t, md.ConfigTemplate)
	cfg, vs := ParseConfig(tmpl)
	if len(vs) > 0 {
		t.Fatalf("ConfigTemplate is invalid: %v", vs)
	}
	if len(cfg.Templates) != len(connector.UsageTypes()) {
		t.Errorf("ConfigTemplate has %d templates, want one per usage type", len(cfg.Templates))
	}
	if cfg.AccountSID != twiliotest.SandboxAccountSID || cfg.AuthToken != twiliotest.SandboxAuthToken {
		t.Error("ConfigTemplate's credentials are not the sandbox's")
	}
	formDefault := md.FormItems[len(md.FormItems)-1].Default
	if got, want := string(rawJSON(t, formDefault)), string(rawJSON(t, md.ConfigTemplate["templates"])); got != want {
		t.Errorf("templates form default %s differs from the config template's %s", got, want)
	}

	// Each call returns a fresh value.
	md.Name["en"] = "changed"
	md.ConfigSchema["type"] = "changed"
	md.ConfigTemplate["templates"].([]any)[0].(map[string]any)["content"] = "changed"
	md2, _ := c.Metadata(context.Background())
	if md2.Name["en"] == "changed" || md2.ConfigSchema["type"] == "changed" ||
		md2.ConfigTemplate["templates"].([]any)[0].(map[string]any)["content"] == "changed" {
		t.Error("Metadata shares state between calls")
	}
}

func TestConfigSchema(t *testing.T) {
	s := ConfigSchema()
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" || s["additionalProperties"] != false || s["type"] != "object" {
		t.Errorf("schema header: %v %v %v", s["$schema"], s["type"], s["additionalProperties"])
	}
	props := s["properties"].(map[string]any)
	var names []string
	for k := range props {
		names = append(names, k)
	}
	if slices.Sort(names); !slices.Equal(names, slices.Sorted(slices.Values(knownFields))) {
		t.Errorf("schema properties %q, want the configuration's fields", names)
	}
	items := props["templates"].(map[string]any)["items"].(map[string]any)
	var tnames []string
	for k := range items["properties"].(map[string]any) {
		tnames = append(tnames, k)
	}
	if slices.Sort(tnames); !slices.Equal(tnames, slices.Sorted(slices.Values(knownTemplateFields))) || items["additionalProperties"] != false {
		t.Errorf("template properties %q", tnames)
	}

	// Every pattern is valid, and accepts what ParseConfig accepts: a sample of valid values.
	samples := map[string][]string{
		"accountSID":              {testAccount},
		"authToken":               {"", "abc123"},
		"fromMessagingServiceSID": {"", testService},
		"apiKeySID":               {"", testKeySID},
		"apiKeySecret":            {"", "abc123"},
		"host":                    {"", "api.twilio.com", "api.dublin.ie1.twilio.com"},
	}
	for field, values := range samples {
		re := regexp.MustCompile(props[field].(map[string]any)["pattern"].(string))
		for _, v := range values {
			if !re.MatchString(v) {
				t.Errorf("schema pattern of %s rejects %q", field, v)
			}
		}
		if field != "authToken" && field != "apiKeySecret" && re.MatchString("x") {
			t.Errorf("schema pattern of %s accepts %q", field, "x")
		}
	}
	for _, alt := range props["from"].(map[string]any)["anyOf"].([]any) {
		if p, ok := alt.(map[string]any)["pattern"].(string); ok {
			regexp.MustCompile(p)
		}
	}
	regexp.MustCompile(items["properties"].(map[string]any)["locale"].(map[string]any)["pattern"].(string))
	if re := regexp.MustCompile(items["properties"].(map[string]any)["content"].(map[string]any)["pattern"].(string)); !re.MatchString("a {{ code }} b") {
		t.Error("content pattern rejects {{ code }}")
	}
	if _, err := json.Marshal(s); err != nil {
		t.Errorf("schema does not marshal: %v", err)
	}
}
