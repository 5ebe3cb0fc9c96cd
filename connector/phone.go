package connector

import (
	"strings"
)

// NormalizePhone turns a phone number as users type it into E.164: spaces, dashes, dots and
// parentheses are stripped, a leading "00" or a missing "+" becomes "+", and the result must be
// "+" followed by 7 to 15 digits, the first not 0. Anything else is INVALID_PHONE_NUMBER.
// It does not check that the number exists or can receive SMS; the vendor does.
func NormalizePhone(s string) (string, error) {
	const maxInput = 64
	if len(s) > maxInput {
		return "", Errorf(ReasonInvalidPhoneNumber, "phone number is longer than %d characters", maxInput)
	}
	var b strings.Builder
	b.Grow(16)
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '\u00a0':
		default:
			return "", Errorf(ReasonInvalidPhoneNumber, "phone number contains %q; use E.164 like +14155550123", r)
		}
	}
	digits := b.String()
	if !strings.HasPrefix(strings.TrimSpace(s), "+") {
		digits = strings.TrimPrefix(digits, "00")
	}
	switch {
	case digits == "":
		return "", Errorf(ReasonInvalidPhoneNumber, "phone number is empty")
	case digits[0] == '0':
		return "", Errorf(ReasonInvalidPhoneNumber, "phone number must start with a country calling code, not 0; use E.164 like +14155550123")
	case len(digits) < 7 || len(digits) > 15:
		return "", Errorf(ReasonInvalidPhoneNumber, "phone number must have 7 to 15 digits, has %d", len(digits))
	}
	return "+" + digits, nil
}

// MaskPhone hides all but the country-code-ish prefix and the last two digits of a number, for
// logs: "+14155550123" becomes "+141******23".
func MaskPhone(s string) string {
	n := len(s)
	switch {
	case n == 0:
		return ""
	case n <= 6:
		return strings.Repeat("*", n)
	}
	return s[:4] + strings.Repeat("*", n-6) + s[n-2:]
}
