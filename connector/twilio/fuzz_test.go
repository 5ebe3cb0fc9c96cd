package twilio

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sms-connector/sms-connector/connector"
)

// FuzzParseConfig: ParseConfig never panics; it returns a configuration exactly when it finds
// no violation; a valid configuration, written out again, parses to itself; and no violation
// depends on the value of a secret field (authToken, apiKeySecret) beyond its character
// classes, so none can carry it.
//
// Seeds are here (f.Add) and in testdata/fuzz/FuzzParseConfig; explore with
// `go test -run '^$' -fuzz '^FuzzParseConfig$' -fuzztime 10s ./connector/twilio`.
func FuzzParseConfig(f *testing.F) {
	valid := `{"accountSID":"AC0123456789abcdef0123456789ABCDEF","authToken":"abcdef0123456789abcdef0123456789",` +
		`"fromMessagingServiceSID":"MG0123456789abcdef0123456789ABCDEF","templates":[{"usageType":"Generic","content":"Your code is {{code}}"}]}`
	for _, s := range []string{
		valid,
		`{"accountSID":"AC0123456789abcdef0123456789ABCDEF","apiKeySID":"SK0123456789abcdef0123456789ABCDEF","apiKeySecret":"s3cr3tS3CR3Ts3cr3tS3CR3T",` +
			`"from":"Acme","host":"api.dublin.ie1.twilio.com","disableRiskCheck":true,"validityPeriod":600,` +
			`"templates":[{"usageType":"SignIn","content":"{{ code }} for {{app}}","locale":"fr-CA"},{"usageType":"Generic","content":"{{code}}"}]}`,
		`{"accountSID":"AC0123456789abcdef0123456789ABCDEF","authToken":"has a space s3cr3tS3CR3T","from":"+14155550123","templates":[]}`,
		`{"accountSID":"AC0123456789abcdef0123456789ABCDEF","authToken":"s3cr3tS3CR3Ts3cr3t","apiKeySID":"SK0","apiKeySecret":"not\u00e9letters s3cr3t","from":"+0","host":"https://evil.example","templates":[{"usageType":"Nope","content":"no code","locale":"x_1"},{"usageType":"Nope","content":"no code","locale":"x_1"}],"acountSID":1}`,
		`{"authToken":7,"apiKeySecret":null,"templates":{},"validityPeriod":"600","disableRiskCheck":"yes"}`,
		`{"validityPeriod":6e2,"templates":[1,"x",null,{"usageType":"Generic","content":"{{code}}","extra":true}]}`,
		`{"validityPeriod":36001.5}`, `{"authToken":"a","authToken":"b"}`, `[]`, `"string"`, `null`, ``, ` `, `{`, `{"a":}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, vs := ParseConfig(raw)
		if (cfg == nil) == (len(vs) == 0) {
			t.Fatalf("ParseConfig(%q) = %v with %d violations", raw, cfg, len(vs))
		}
		for _, v := range vs {
			if v.Description == "" {
				t.Fatalf("violation of %q without a description", v.Field)
			}
		}
		if cfg != nil {
			again, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			cfg2, vs2 := ParseConfig(again)
			if len(vs2) > 0 || !reflect.DeepEqual(cfg, cfg2) {
				t.Fatalf("valid %q written out as %s parses to %+v, %v", raw, again, cfg2, vs2)
			}
		}
		checkSecretsNotInViolations(t, raw)
	})
}

// checkSecretsNotInViolations parses raw (a JSON object) once as is and once with each secret
// field's string value changed, letter for letter and digit for digit, and fails the test if
// the violations differ: then some violation depends on the secret's value.
func checkSecretsNotInViolations(t *testing.T, raw []byte) {
	t.Helper()
	// Text that is not UTF-8 is refused as a whole before any field is read; rewriting a
	// secret through encoding/json (which replaces bad bytes) would make it UTF-8 and change
	// that answer without telling anything about the secret.
	if !utf8.Valid(raw) {
		return
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		return
	}
	for _, name := range []string{"authToken", "apiKeySecret"} {
		var secret string
		if json.Unmarshal(fields[name], &secret) != nil || secret == "" {
			continue
		}
		orig, err := json.Marshal(fields)
		if err != nil {
			return
		}
		fields[name], _ = json.Marshal(rotate(secret))
		changed, err := json.Marshal(fields)
		fields[name], _ = json.Marshal(secret)
		if err != nil {
			return
		}
		_, vsOrig := ParseConfig(orig)
		_, vsChanged := ParseConfig(changed)
		if !reflect.DeepEqual(vsOrig, vsChanged) {
			t.Fatalf("the violations depend on %s's value:\n%v\n%v", name, vsOrig, vsChanged)
		}
		if len(secret) >= 8 && !strings.Contains(violationText(vsChanged), secret) && strings.Contains(violationText(vsOrig), secret) {
			t.Fatalf("a violation carries %s", name)
		}
	}
}

// rotate changes each ASCII letter and digit of s to the next one of its class (z to a, 9 to
// 0), keeping everything else: a different secret of the same shape.
func rotate(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r < 'z', r >= 'A' && r < 'Z', r >= '0' && r < '9':
			return r + 1
		case r == 'z':
			return 'a'
		case r == 'Z':
			return 'A'
		case r == '9':
			return '0'
		}
		return r
	}, s)
}

// violationText joins every field and description of vs.
func violationText(vs []connector.Violation) string {
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(v.Field + "\x00" + v.Description + "\x00")
	}
	return b.String()
}
