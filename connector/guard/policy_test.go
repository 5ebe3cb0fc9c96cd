package guard

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
)

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Policy{
		DenyCountries:        []string{"+870", "+881", "+882", "+883", "+979"},
		DenyNumberTypes:      []NumberType{PremiumRate, SharedCost, FixedLine},
		RefuseInvalidNumbers: true,
		Recipient:            []Limit{{1, 30 * time.Second}, {5, time.Hour}},
		ClientIP:             []Limit{{10, time.Minute}, {50, time.Hour}},
		Prefix:               []Limit{{10, time.Hour}, {50, 24 * time.Hour}},
		PrefixDigits:         4,
		IPv6PrefixBits:       64,
		Global:               Limit{1000, time.Hour},
		DeliveryFeedback: DeliveryFeedback{PerRange: true, Window: 24 * time.Hour, MinOutcomes: 20,
			MaxUndeliveredShare: 0.8, Cooldown: time.Hour},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("DefaultPolicy() = %+v", p)
	}
	// The denied calling codes are ones libphonenumber knows as non-geographic.
	for _, c := range p.DenyCountries {
		_, cc, err := parseCountry(c)
		if err != nil || phonenumbers.GetRegionCodeForCountryCode(cc) != "001" {
			t.Errorf("%s: %v, region %q", c, err, phonenumbers.GetRegionCodeForCountryCode(cc))
		}
	}
	// Each call returns a fresh policy: changing one does not change the next.
	p.DenyCountries[0] = "US"
	if DefaultPolicy().DenyCountries[0] != "+870" {
		t.Error("DefaultPolicy shares its slices")
	}
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		check   func(Policy) bool
		wantErr string
	}{
		{"empty object keeps the defaults", `{}`, func(p Policy) bool { return reflect.DeepEqual(p, DefaultPolicy()) }, ""},
		{"a field overrides its default", `{"allowCountries": ["US", "+44"], "global": {"max": 50, "window": "10m"}}`,
			func(p Policy) bool {
				return reflect.DeepEqual(p.AllowCountries, []string{"US", "+44"}) && p.Global == Limit{50, 10 * time.Minute} &&
					reflect.DeepEqual(p.Recipient, DefaultPolicy().Recipient)
			}, ""},
		{"invalid numbers refused unless turned off", `{"refuseInvalidNumbers": false}`,
			func(p Policy) bool { return !p.RefuseInvalidNumbers && DefaultPolicy().RefuseInvalidNumbers }, ""},
		{"null and [] clear a list", `{"recipient": null, "denyNumberTypes": [], "clientIP": []}`,
			func(p Policy) bool { return p.Recipient == nil && len(p.DenyNumberTypes) == 0 && len(p.ClientIP) == 0 }, ""},
		{"global max 0 disables the budget", `{"global": {"max": 0, "window": "0s"}}`, func(p Policy) bool { return p.Global == Limit{} }, ""},
		{"windows in Go syntax", `{"recipient": [{"max": 2, "window": "1m30s"}]}`,
			func(p Policy) bool { return reflect.DeepEqual(p.Recipient, []Limit{{2, 90 * time.Second}}) }, ""},
		{"unknown field", `{"recipients": []}`, nil, `unknown field "recipients"`},
		{"unknown limit field", `{"recipient": [{"max": 1, "window": "1m", "burst": 2}]}`, nil, `unknown field "burst"`},
		{"window not a duration", `{"recipient": [{"max": 1, "window": 30}]}`, nil, "limit"},
		{"window without a unit", `{"recipient": [{"max": 1, "window": "30"}]}`, nil, `want a duration`},
		{"two values", `{} {}`, nil, "more than one JSON value"},
		{"not JSON", `recipient: 1`, nil, "invalid character"},
		{"invalid after parsing", `{"prefixDigits": 0}`, nil, "prefixDigits: 0"},
		{"delivery feedback field overrides its default", `{"deliveryFeedback": {"perCountry": true, "cooldown": "30m"}}`,
			func(p Policy) bool {
				want := DefaultDeliveryFeedback()
				want.PerCountry, want.Cooldown = true, 30*time.Minute
				return p.DeliveryFeedback == want
			}, ""},
		{"delivery feedback off", `{"deliveryFeedback": {"perRange": false}, "prefix": [], "prefixDigits": 0}`,
			func(p Policy) bool { return !p.DeliveryFeedback.on() }, ""},
		{"delivery feedback null", `{"deliveryFeedback": null}`, nil, `set "perRange" and "perCountry" to false`},
		{"delivery feedback unknown field", `{"deliveryFeedback": {"minOutcome": 5}}`, nil, `unknown field "minOutcome"`},
		{"delivery feedback window not a duration", `{"deliveryFeedback": {"window": "1 day"}}`, nil, `window "1 day"`},
		{"delivery feedback cooldown not a duration", `{"deliveryFeedback": {"cooldown": 60}}`, nil, "deliveryFeedback"},
		{"delivery feedback share as a percentage", `{"deliveryFeedback": {"maxUndeliveredShare": 80}}`, nil, "maxUndeliveredShare 80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(p) {
				t.Errorf("policy %+v", p)
			}
		})
	}
}

func TestPolicyJSONRoundTrip(t *testing.T) {
	p := DefaultPolicy()
	p.AllowCountries = []string{"US", "+44"}
	p.Recipient = nil
	p.RefuseInvalidNumbers = false // not the default: an explicit false must survive
	p.DeliveryFeedback.PerCountry, p.DeliveryFeedback.Window = true, 90*time.Minute
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"recipient":null`) || !strings.Contains(string(b), `{"max":1000,"window":"1h"}`) ||
		!strings.Contains(string(b), `"deliveryFeedback":{"perRange":true,"perCountry":true,"window":"1h30m","minOutcomes":20,"maxUndeliveredShare":0.8,"cooldown":"1h"}`) {
		t.Errorf("JSON %s", b)
	}
	got, err := ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, p)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Policy)
		want   []string // parts of the error; none: valid
	}{
		{"default", func(*Policy) {}, nil},
		{"lowercase region", func(p *Policy) { p.AllowCountries = []string{"us", "gb"} }, nil},
		{"every number type", func(p *Policy) {
			for t := range numberTypes {
				p.DenyNumberTypes = append(p.DenyNumberTypes, t)
			}
		}, nil},
		{"no limits at all", func(p *Policy) { *p = Policy{} }, nil},
		{"unknown region", func(p *Policy) { p.AllowCountries = []string{"XX"} }, []string{`allowCountries[0]: "XX" is neither`}},
		{"three-letter region", func(p *Policy) { p.DenyCountries = []string{"USA"} }, []string{`denyCountries[0]`}},
		{"unknown calling code", func(p *Policy) { p.DenyCountries = []string{"+999"} }, []string{`"+999" is not a country calling code`}},
		{"calling code with leading zero", func(p *Policy) { p.DenyCountries = []string{"+044"} }, []string{`"+044"`}},
		{"calling code not a number", func(p *Policy) { p.DenyCountries = []string{"+4a"} }, []string{`"+4a"`}},
		{"bare plus", func(p *Policy) { p.DenyCountries = []string{"+"} }, []string{`"+"`}},
		{"unknown number type", func(p *Policy) { p.DenyNumberTypes = []NumberType{"PREMIUM"} }, []string{`"PREMIUM" is not a number type`}},
		{"zero max", func(p *Policy) { p.Recipient = []Limit{{0, time.Minute}} }, []string{"recipient[0]: max 0"}},
		{"zero window", func(p *Policy) { p.ClientIP = []Limit{{1, 0}} }, []string{"clientIP[0]: window 0s"}},
		{"huge window", func(p *Policy) { p.Prefix = []Limit{{1, 365 * 24 * time.Hour}} }, []string{"prefix[0]: window"}},
		{"huge max", func(p *Policy) { p.Recipient = []Limit{{2_000_000, time.Hour}} }, []string{"max 2000000"}},
		{"too many limits", func(p *Policy) { p.Recipient = make([]Limit, 9) }, []string{"recipient: 9 limits"}},
		{"global without window", func(p *Policy) { p.Global = Limit{Max: 10} }, []string{"global: window 0s"}},
		{"global negative", func(p *Policy) { p.Global = Limit{Max: -1, Window: time.Hour} }, []string{"global: max -1"}},
		{"prefix digits", func(p *Policy) { p.PrefixDigits = 9 }, []string{"prefixDigits: 9"}},
		{"prefix digits unused", func(p *Policy) { p.PrefixDigits, p.Prefix, p.DeliveryFeedback.PerRange = 0, nil, false }, nil},
		{"prefix digits needed by delivery feedback", func(p *Policy) { p.PrefixDigits, p.Prefix = 0, nil },
			[]string{"prefixDigits: 0; must be 1 to 8 when deliveryFeedback.perRange is on"}},
		{"delivery feedback off ignores its numbers", func(p *Policy) {
			p.DeliveryFeedback = DeliveryFeedback{MinOutcomes: -1, MaxUndeliveredShare: 7}
		}, nil},
		{"delivery feedback per country only", func(p *Policy) {
			p.DeliveryFeedback.PerRange, p.DeliveryFeedback.PerCountry = false, true
		}, nil},
		{"delivery feedback zero window and cooldown", func(p *Policy) {
			p.DeliveryFeedback.Window, p.DeliveryFeedback.Cooldown = 0, -time.Second
		}, []string{"deliveryFeedback.window 0s", "deliveryFeedback.cooldown -1s"}},
		{"delivery feedback huge window", func(p *Policy) { p.DeliveryFeedback.Window = 365 * 24 * time.Hour },
			[]string{"deliveryFeedback.window"}},
		{"delivery feedback min outcomes", func(p *Policy) { p.DeliveryFeedback.MinOutcomes = 0 }, []string{"deliveryFeedback.minOutcomes 0"}},
		{"delivery feedback min outcomes over what a window keeps", func(p *Policy) { p.DeliveryFeedback.MinOutcomes = MaxOutcomesPerWindow + 1 },
			[]string{"deliveryFeedback.minOutcomes 10001"}},
		{"delivery feedback share 1", func(p *Policy) { p.DeliveryFeedback.MaxUndeliveredShare = 1 }, []string{"deliveryFeedback.maxUndeliveredShare 1"}},
		{"delivery feedback share 0", func(p *Policy) { p.DeliveryFeedback.MaxUndeliveredShare = 0 }, []string{"maxUndeliveredShare 0"}},
		{"delivery feedback share rounds to 1", func(p *Policy) { p.DeliveryFeedback.MaxUndeliveredShare = 0.9999999 }, []string{"maxUndeliveredShare"}},
		{"ipv6 bits", func(p *Policy) { p.IPv6PrefixBits = 0 }, []string{"ipv6PrefixBits: 0"}},
		{"every problem at once", func(p *Policy) {
			p.AllowCountries = []string{"XX"}
			p.PrefixDigits = 0
			p.Global = Limit{Max: 1}
		}, []string{"allowCountries[0]", "prefixDigits", "global"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPolicy()
			tt.mutate(&p)
			err := p.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("valid, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Hour, "1h"}, {24 * time.Hour, "24h"}, {90 * time.Minute, "1h30m"}, {time.Minute, "1m"},
		{30 * time.Second, "30s"}, {90 * time.Second, "1m30s"}, {time.Hour + time.Second, "1h0m1s"},
		{1500 * time.Millisecond, "1.5s"}, {0, "0s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if back, err := time.ParseDuration(formatDuration(tt.d)); err != nil || back != tt.d {
			t.Errorf("%q does not parse back to %v", formatDuration(tt.d), tt.d)
		}
	}
}
