package guard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// Policy is what a Guard enforces. Its JSON form (camelCase keys, windows as Go durations like
// "30s" or "1h") is what an operator writes in a policy file; see ParsePolicy. DefaultPolicy
// returns the defaults.
type Policy struct {
	// AllowCountries, when not empty, lists the only destinations SMS may go to, each a region
	// ("US", "GB"; ISO 3166-1 alpha-2 as libphonenumber knows them) or a country calling code
	// ("+44"). A "+1" entry allows every NANP country (US, CA and the Caribbean); "US" allows
	// only numbers libphonenumber places in the US, so a number whose region cannot be told (an
	// invalid number in a shared calling code) is refused by a region-only allow list. Empty
	// allows every destination not denied.
	AllowCountries []string `json:"allowCountries"`
	// DenyCountries lists destinations SMS never goes to, in the same forms. Deny wins over
	// allow.
	DenyCountries []string `json:"denyCountries"`
	// DenyNumberTypes lists the number types (libphonenumber's classification, see NumberType)
	// SMS never goes to. A number whose type libphonenumber cannot tell apart, such as US
	// numbers (FIXED_LINE_OR_MOBILE), is not refused by a FIXED_LINE entry.
	DenyNumberTypes []NumberType `json:"denyNumberTypes"`
	// RefuseInvalidNumbers refuses, with INVALID_PHONE_NUMBER, numbers libphonenumber's
	// numbering plan says cannot exist: an unassigned range, or a length the range does not
	// have. On by default, because DenyNumberTypes sees only valid numbers: a premium-rate
	// prefix with a digit too many (+1 900 234 567 890, +49 900 12345678, +44 901 23456789)
	// has no type at all, and networks that route by prefix may still deliver it at the
	// premium rate. Turning it off lets such numbers through to the vendor, limited only by
	// the rate windows; do so only with an allow list of countries, and only when users of
	// number ranges newer than the library's metadata are refused (the cure is a newer
	// github.com/nyaruka/phonenumbers). Twilio's test numbers (+1 500 555 0xxx) are valid.
	RefuseInvalidNumbers bool `json:"refuseInvalidNumbers"`
	// Recipient limits the sends to one phone number.
	Recipient []Limit `json:"recipient"`
	// ClientIP limits the sends requested from one client IP address (Message.ClientIP; IPv6
	// addresses are counted per IPv6PrefixBits network). A message without a ClientIP is not
	// counted here.
	ClientIP []Limit `json:"clientIP"`
	// Prefix limits the sends to one number range: the E.164 number without its last
	// PrefixDigits digits. It catches pumping of sequential numbers, which no per-recipient
	// limit sees.
	Prefix []Limit `json:"prefix"`
	// PrefixDigits is how many trailing digits a number range leaves out (1 to 8): 4 groups
	// +447400123456 with the 9,999 other numbers starting +44740012.
	PrefixDigits int `json:"prefixDigits"`
	// IPv6PrefixBits is the network size one IPv6 client is counted by (1 to 128): a single
	// host usually holds a whole /64.
	IPv6PrefixBits int `json:"ipv6PrefixBits"`
	// Global is the send budget of the whole connector (Max sends in any Window); zero Max
	// disables it. When a send finds it spent, the breaker trips: every send is refused for one
	// Window, and the budget is whole again when it closes.
	Global Limit `json:"global"`
	// DeliveryFeedback refuses, for a cool-down, SMS to number ranges (and, when asked, to
	// countries) whose recent messages mostly came back undelivered, as Guard.ObserveDelivery
	// is told.
	DeliveryFeedback DeliveryFeedback `json:"deliveryFeedback"`
}

// Limit allows at most Max sends in any sliding Window. Its JSON form is
// {"max": 5, "window": "1h"}.
type Limit struct {
	// Max is how many sends the window holds.
	Max int
	// Window is how long a send counts against the limit.
	Window time.Duration
}

// limitJSON is the JSON form of a Limit.
type limitJSON struct {
	Max    int    `json:"max"`
	Window string `json:"window"`
}

// MarshalJSON writes l as {"max": 5, "window": "1h"}.
func (l Limit) MarshalJSON() ([]byte, error) {
	return json.Marshal(limitJSON{Max: l.Max, Window: formatDuration(l.Window)})
}

// UnmarshalJSON reads {"max": 5, "window": "1h"}; the window is a Go duration string.
func (l *Limit) UnmarshalJSON(b []byte) error {
	var j limitJSON
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return fmt.Errorf("limit: %w", err)
	}
	w, err := time.ParseDuration(j.Window)
	if err != nil {
		return fmt.Errorf("limit window %q: want a duration like \"30s\" or \"1h\"", j.Window)
	}
	*l = Limit{Max: j.Max, Window: w}
	return nil
}

// String describes l for messages: "5 per 1h".
func (l Limit) String() string { return strconv.Itoa(l.Max) + " per " + formatDuration(l.Window) }

// formatDuration writes d as time.Duration.String does, without its zero minutes and seconds:
// "1h", "1h30m", "30s", "24h".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// NumberType is a kind of phone number as libphonenumber classifies it, by the names of its
// PhoneNumberType.
type NumberType string

// The number types a policy can deny.
const (
	FixedLine         NumberType = "FIXED_LINE"
	Mobile            NumberType = "MOBILE"
	FixedLineOrMobile NumberType = "FIXED_LINE_OR_MOBILE"
	TollFree          NumberType = "TOLL_FREE"
	PremiumRate       NumberType = "PREMIUM_RATE"
	SharedCost        NumberType = "SHARED_COST"
	VoIP              NumberType = "VOIP"
	PersonalNumber    NumberType = "PERSONAL_NUMBER"
	Pager             NumberType = "PAGER"
	UAN               NumberType = "UAN"
	Voicemail         NumberType = "VOICEMAIL"
)

// numberTypes maps each NumberType to libphonenumber's constant.
var numberTypes = map[NumberType]phonenumbers.PhoneNumberType{
	FixedLine:         phonenumbers.FIXED_LINE,
	Mobile:            phonenumbers.MOBILE,
	FixedLineOrMobile: phonenumbers.FIXED_LINE_OR_MOBILE,
	TollFree:          phonenumbers.TOLL_FREE,
	PremiumRate:       phonenumbers.PREMIUM_RATE,
	SharedCost:        phonenumbers.SHARED_COST,
	VoIP:              phonenumbers.VOIP,
	PersonalNumber:    phonenumbers.PERSONAL_NUMBER,
	Pager:             phonenumbers.PAGER,
	UAN:               phonenumbers.UAN,
	Voicemail:         phonenumbers.VOICEMAIL,
}

// words returns t for messages: "premium-rate".
func (t NumberType) words() string {
	return strings.ReplaceAll(strings.ToLower(string(t)), "_", "-")
}

// DefaultPolicy returns the defaults, chosen for a sign-in code sender:
//   - no allow list (narrow it, and Twilio's Geo Permissions, to your users' countries);
//   - deny the non-geographic calling codes of satellite and international networks (+870,
//     +881, +882, +883) and international premium rate (+979), the classic toll-fraud
//     destinations, where no ordinary user has a phone;
//   - deny PREMIUM_RATE, SHARED_COST and FIXED_LINE numbers (where libphonenumber can tell);
//   - refuse numbers libphonenumber says cannot exist (RefuseInvalidNumbers), so that an
//     over-long premium-rate number cannot dodge the number-type policy;
//   - per recipient 1 per 30s and 5 per hour;
//   - per client IP 10 per minute and 50 per hour (raise them where many users share an
//     address, such as carrier-grade NAT);
//   - per number range (last 4 digits left out) 10 per hour and 50 per day;
//   - a global budget of 1,000 sends per hour (set it to a few times your busiest hour);
//   - delivery feedback per number range: a range with at least 20 outcomes in the last 24
//     hours, more than 80% of them undelivered, is refused for an hour (DefaultDeliveryFeedback).
func DefaultPolicy() Policy {
	return Policy{
		DenyCountries:        []string{"+870", "+881", "+882", "+883", "+979"},
		DenyNumberTypes:      []NumberType{PremiumRate, SharedCost, FixedLine},
		RefuseInvalidNumbers: true,
		Recipient:            []Limit{{1, 30 * time.Second}, {5, time.Hour}},
		ClientIP:             []Limit{{10, time.Minute}, {50, time.Hour}},
		Prefix:               []Limit{{10, time.Hour}, {50, 24 * time.Hour}},
		PrefixDigits:         4,
		IPv6PrefixBits:       64,
		Global:               Limit{1000, time.Hour},
		DeliveryFeedback:     DefaultDeliveryFeedback(),
	}
}

// ParsePolicy reads a policy file's JSON over DefaultPolicy: a field absent from the JSON keeps
// its default, and null or [] clears a list. Unknown fields are errors (a typo must not drop a
// limit silently), and the result is validated.
func ParsePolicy(data []byte) (Policy, error) {
	p := DefaultPolicy()
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("guard: policy: %w", err)
	}
	if d.More() {
		return Policy{}, errors.New("guard: policy: more than one JSON value")
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// Limits on a policy, so a typo cannot make a Guard hold unbounded state.
const (
	maxLimitsPerList = 8
	maxLimitMax      = 1_000_000
	maxLimitWindow   = 31 * 24 * time.Hour
)

// Validate reports every problem of p at once, or nil.
func (p Policy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, list := range []struct {
		name    string
		entries []string
	}{{"allowCountries", p.AllowCountries}, {"denyCountries", p.DenyCountries}} {
		for i, c := range list.entries {
			if _, _, err := parseCountry(c); err != nil {
				bad("%s[%d]: %w", list.name, i, err)
			}
		}
	}
	for i, t := range p.DenyNumberTypes {
		if _, ok := numberTypes[t]; !ok {
			bad("denyNumberTypes[%d]: %q is not a number type (use one of FIXED_LINE, MOBILE, FIXED_LINE_OR_MOBILE, TOLL_FREE, PREMIUM_RATE, SHARED_COST, VOIP, PERSONAL_NUMBER, PAGER, UAN, VOICEMAIL)", i, t)
		}
	}
	for _, list := range []struct {
		name   string
		limits []Limit
	}{{"recipient", p.Recipient}, {"clientIP", p.ClientIP}, {"prefix", p.Prefix}} {
		if len(list.limits) > maxLimitsPerList {
			bad("%s: %d limits; at most %d", list.name, len(list.limits), maxLimitsPerList)
		}
		for i, l := range list.limits {
			if err := l.validate(); err != nil {
				bad("%s[%d]: %w", list.name, i, err)
			}
		}
	}
	if p.Global != (Limit{}) {
		if err := p.Global.validate(); err != nil {
			bad("global: %w (or leave max 0 to disable the budget)", err)
		}
	}
	if len(p.Prefix) > 0 && (p.PrefixDigits < 1 || p.PrefixDigits > 8) {
		bad("prefixDigits: %d; must be 1 to 8 when prefix limits are set", p.PrefixDigits)
	}
	if p.DeliveryFeedback.PerRange && (p.PrefixDigits < 1 || p.PrefixDigits > 8) {
		bad("prefixDigits: %d; must be 1 to 8 when deliveryFeedback.perRange is on", p.PrefixDigits)
	}
	for _, err := range p.DeliveryFeedback.validate() {
		bad("deliveryFeedback.%w", err)
	}
	if len(p.ClientIP) > 0 && (p.IPv6PrefixBits < 1 || p.IPv6PrefixBits > 128) {
		bad("ipv6PrefixBits: %d; must be 1 to 128 when client IP limits are set", p.IPv6PrefixBits)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("guard: invalid policy: %w", errors.Join(errs...))
}

// validate checks one limit.
func (l Limit) validate() error {
	switch {
	case l.Max < 1 || l.Max > maxLimitMax:
		return fmt.Errorf("max %d; must be 1 to %d", l.Max, maxLimitMax)
	case l.Window <= 0 || l.Window > maxLimitWindow:
		return fmt.Errorf("window %v; must be positive and at most %v", l.Window, maxLimitWindow)
	}
	return nil
}

// parseCountry reads a country entry: a region ("US", any case) or a calling code ("+44").
// It returns the region in upper case, or the calling code.
func parseCountry(s string) (region string, callingCode int, err error) {
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		cc, err := strconv.Atoi(rest)
		if err != nil || cc <= 0 || rest[0] == '0' || phonenumbers.GetRegionCodeForCountryCode(cc) == "ZZ" {
			return "", 0, fmt.Errorf("%q is not a country calling code", s)
		}
		return "", cc, nil
	}
	r := strings.ToUpper(s)
	if len(r) != 2 || !phonenumbers.GetSupportedRegions()[r] {
		return "", 0, fmt.Errorf("%q is neither a region libphonenumber knows (like \"US\") nor a calling code (like \"+44\")", s)
	}
	return r, 0, nil
}
