package connector

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Limits of a message's payload, checked by Message.Check. A verification SMS needs little:
// anything far bigger is a mistake or an attempt to smuggle content into an SMS, or to make
// the connector work hard for nothing.
const (
	// MaxCodeLength bounds a verification code, in characters.
	MaxCodeLength = 64
	// MaxLocaleLength bounds a locale tag, in characters (BCP 47 tags in practice stay far
	// below it).
	MaxLocaleLength = 35
	// MaxVariablesSize bounds the payload variables, in bytes of their JSON encoding.
	MaxVariablesSize = 8 << 10
	// MaxVariableStringSize bounds each string of the payload variables, key or value, in bytes.
	MaxVariableStringSize = 1 << 10
	// MaxVariablesDepth bounds how deeply the payload variables nest: the variables object
	// itself is level 1, an object or list inside it level 2.
	MaxVariablesDepth = 8
)

// maxVariableViolations bounds how many problems of the variables Check lists one by one.
const maxVariableViolations = 5

// Check validates a message before any vendor sees it and normalises its recipient to E.164.
// It reports every problem at once as an INVALID_REQUEST (or INVALID_PHONE_NUMBER when the
// recipient is the only problem) *Error whose Violations name the fields: a missing or
// malformed recipient, a missing or unknown usage type, a missing, over-long, not UTF-8 or
// not printable code (control and formatting characters, line breaks), a locale that is too
// long or has characters other than letters, digits, "-" and "_", and variables beyond
// MaxVariablesSize, MaxVariableStringSize or MaxVariablesDepth.
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
	switch code := m.Payload.Code; {
	case code == "":
		bad("payload.code", "is required")
	case !utf8.ValidString(code):
		bad("payload.code", "is not valid UTF-8")
	case utf8.RuneCountInString(code) > MaxCodeLength:
		bad("payload.code", fmt.Sprintf("is longer than %d characters", MaxCodeLength))
	case !printable(code):
		bad("payload.code", "contains a control or formatting character (a line break, a tab, a zero-width character...): a code is printable characters only")
	}
	switch loc := m.Payload.Locale; {
	case loc == "":
	case len(loc) > MaxLocaleLength:
		bad("payload.locale", fmt.Sprintf("is longer than %d characters; use a BCP 47 language tag like fr-CA", MaxLocaleLength))
	case !localeChars(loc):
		bad("payload.locale", "may contain only letters, digits, - and _: use a BCP 47 language tag like fr-CA")
	}
	for _, v := range checkVariables(m.Payload.Variables) {
		bad(v.Field, v.Description)
	}
	if len(vs) == 0 {
		return nil
	}
	r := ReasonInvalidRequest
	if phoneOnly {
		r = ReasonInvalidPhoneNumber
	}
	return ViolationsError(r, RequestSubject, vs)
}

// RequestSubject is the subject of ViolationsError for the problems of a request.
const RequestSubject = "the request"

// ViolationsError returns the error of reason that carries every violation in vs, which must
// not be empty. Its message names the first problem, and how many there are when there are
// several, so that one log line says what to fix: "to is required", or "the request has 3
// problems; first: to is required". subject names what was checked (RequestSubject, "the
// Twilio configuration"); a violation without a field is one of the subject as a whole.
func ViolationsError(reason Reason, subject string, vs []Violation) *Error {
	first := vs[0].Field
	if first == "" {
		first = subject
	}
	msg := first + " " + vs[0].Description
	if len(vs) > 1 {
		msg = fmt.Sprintf("%s has %d problems; first: %s", subject, len(vs), msg)
	}
	return &Error{Reason: reason, Message: msg, Violations: vs}
}

// printable reports whether s has only printable characters (letters, marks, numbers,
// punctuation, symbols and the ASCII space).
func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// localeChars reports whether s has only ASCII letters, digits, "-" and "_".
func localeChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// variablesField is the request field the variables travel in.
const variablesField = "payload.variables"

// checkVariables returns the problems of payload variables: strings (keys and values) over
// MaxVariableStringSize or not UTF-8, nesting beyond MaxVariablesDepth, and a JSON encoding
// over MaxVariablesSize. String problems name the offending value's path where its keys are
// plain names; at most maxVariableViolations are listed one by one.
func checkVariables(vars map[string]any) []Violation {
	if len(vars) == 0 {
		return nil
	}
	w := &variablesWalk{}
	w.walk(vars, 1, variablesField, true)
	if w.more > 0 {
		w.vs = append(w.vs, Violation{variablesField, fmt.Sprintf("has %d more strings that are too long or not UTF-8", w.more)})
	}
	if w.tooDeep {
		return append(w.vs, Violation{variablesField, fmt.Sprintf("is nested more than %d levels deep", MaxVariablesDepth)})
	}
	b, err := json.Marshal(vars)
	switch {
	case err != nil:
		w.vs = append(w.vs, Violation{variablesField, "cannot be encoded as JSON: only objects, lists, strings, numbers, booleans and null are allowed"})
	case len(b) > MaxVariablesSize:
		w.vs = append(w.vs, Violation{variablesField, fmt.Sprintf("is %d bytes as JSON; at most %d are allowed", len(b), MaxVariablesSize)})
	}
	return w.vs
}

// variablesWalk collects the problems of the variables while it walks them.
type variablesWalk struct {
	vs      []Violation
	more    int  // string problems beyond maxVariableViolations
	tooDeep bool // a container is nested deeper than MaxVariablesDepth
}

// walk checks v, found at path in a container of the given level (1: the variables
// themselves). named says whether path names v exactly (every key on the way is plain).
func (w *variablesWalk) walk(v any, level int, path string, named bool) {
	switch x := v.(type) {
	case map[string]any:
		if level > MaxVariablesDepth {
			w.tooDeep = true
			return
		}
		for k, e := range x {
			if problem := checkString(k); problem != "" {
				w.add(path, "has a key that "+problem)
			}
			p, n := path, false
			if named && plainKey(k) {
				p, n = path+"."+k, true
			}
			w.walk(e, level+1, p, n)
		}
	case []any:
		if level > MaxVariablesDepth {
			w.tooDeep = true
			return
		}
		for i, e := range x {
			p := path
			if named {
				p = path + "[" + strconv.Itoa(i) + "]"
			}
			w.walk(e, level+1, p, named)
		}
	case string:
		if problem := checkString(x); problem != "" {
			if !named {
				problem = "has a string that " + problem
			}
			w.add(path, problem)
		}
	}
}

// add records one string problem, or counts it beyond maxVariableViolations.
func (w *variablesWalk) add(field, desc string) {
	if len(w.vs) >= maxVariableViolations {
		w.more++
		return
	}
	w.vs = append(w.vs, Violation{field, desc})
}

// checkString returns what is wrong with one string of the variables, or "".
func checkString(s string) string {
	switch {
	case len(s) > MaxVariableStringSize:
		return fmt.Sprintf("is %d bytes long; at most %d are allowed", len(s), MaxVariableStringSize)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	return ""
}

// plainKey reports whether a variables key can appear in a field path as it is: 1 to 64
// letters, digits, "_" and "-", as in a template placeholder.
func plainKey(k string) bool {
	return k != "" && len(k) <= 64 && localeChars(k)
}
