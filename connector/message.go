package connector

import (
	"fmt"
	"unicode/utf8"
)

// MaxCodeLength bounds a verification code; codes are short, and a long one is a mistake or an
// attempt to smuggle content into an SMS.
const MaxCodeLength = 64

// Check validates a message before any vendor sees it and normalises its recipient to E.164.
// It reports every problem at once as an INVALID_REQUEST (or INVALID_PHONE_NUMBER when the
// recipient is the only problem) *Error whose Violations name the fields.
func (m *Message) Check() error {
	var vs []Violation
	phoneOnly := true
	if m.To == "" {
		vs = append(vs, Violation{"to", "is required: the recipient's phone number in E.164 form (+14155550123)"})
	} else if to, err := NormalizePhone(m.To); err != nil {
		vs = append(vs, Violation{"to", err.(*Error).Message})
	} else {
		m.To = to
	}
	bad := func(field, desc string) {
		phoneOnly = false
		vs = append(vs, Violation{field, desc})
	}
	if m.UsageType == "" {
		bad("usage_type", "is required")
	} else if !m.UsageType.Valid() {
		bad("usage_type", "is not a known usage type")
	}
	switch {
	case m.Payload.Code == "":
		bad("payload.code", "is required")
	case !utf8.ValidString(m.Payload.Code):
		bad("payload.code", "is not valid UTF-8")
	case utf8.RuneCountInString(m.Payload.Code) > MaxCodeLength:
		bad("payload.code", fmt.Sprintf("is longer than %d characters", MaxCodeLength))
	}
	if len(vs) == 0 {
		return nil
	}
	r := ReasonInvalidRequest
	if phoneOnly {
		r = ReasonInvalidPhoneNumber
	}
	msg := vs[0].Field + " " + vs[0].Description
	if len(vs) > 1 {
		msg = fmt.Sprintf("the request has %d problems; first: %s", len(vs), msg)
	}
	return &Error{Reason: r, Message: msg, Violations: vs}
}
