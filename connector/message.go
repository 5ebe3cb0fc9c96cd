package connector

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
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
	// MaxLocales bounds Payload.Locales, the preference list of further locale tags, each held
	// to the same rules as Payload.Locale.
	MaxLocales = 16
	// MaxLinkLength bounds Payload.Link, in bytes: more than any invitation or magic link
	// needs, and the length browsers and servers commonly accept in a URL.
	MaxLinkLength = 2048
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
// recipient is the only problem) *Error whose Violations name the fields (proto field names,
// "payload.link", "payload.ui_locales[2]"): a missing or malformed recipient, a missing or
// unknown usage type, neither a code nor a link (reported at payload.code), an over-long, not
// UTF-8 or not printable code (control and formatting characters, line breaks), a link that is
// not an absolute https URL of at most MaxLinkLength bytes (see checkLink), a locale, or an
// entry of Locales, that is empty (entries only), too long or has characters other than
// letters, digits, "-" and "_", more than MaxLocales Locales, and variables beyond
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
	case code == "" && m.Payload.Link == "":
		bad("payload.code", "is required, unless payload.link is set: a message carries a verification code, a link, or both")
	case code == "": // a message that carries a link only
	case !utf8.ValidString(code):
		bad("payload.code", "is not valid UTF-8")
	case utf8.RuneCountInString(code) > MaxCodeLength:
		bad("payload.code", fmt.Sprintf("is longer than %d characters", MaxCodeLength))
	case !printable(code):
		bad("payload.code", "contains a control or formatting character (a line break, a tab, a zero-width character...): a code is printable characters only")
	}
	if m.Payload.Link != "" {
		if problem := checkLink(m.Payload.Link); problem != "" {
			bad("payload.link", problem)
		}
	}
	if loc := m.Payload.Locale; loc != "" {
		if problem := checkLocale(loc); problem != "" {
			bad("payload.locale", problem)
		}
	}
	if n := len(m.Payload.Locales); n > MaxLocales {
		bad(localesField, fmt.Sprintf("lists %d language tags; at most %d are allowed: send the user's first preferences", n, MaxLocales))
	} else {
		for i, loc := range m.Payload.Locales {
			problem := "is empty: every entry is a BCP 47 language tag like fr-CA"
			if loc != "" {
				problem = checkLocale(loc)
			}
			if problem != "" {
				bad(localesField+"["+strconv.Itoa(i)+"]", problem)
			}
		}
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

// localesField is the request field Payload.Locales travels in.
const localesField = "payload.ui_locales"

// checkLocale returns what is wrong with a non-empty locale tag of the payload, or "". The
// check is of the characters and length only: a tag x/text cannot read selects no localised
// template, and the send falls back as SelectTemplate says, rather than failing.
func checkLocale(loc string) string {
	switch {
	case len(loc) > MaxLocaleLength:
		return fmt.Sprintf("is longer than %d characters; use a BCP 47 language tag like fr-CA", MaxLocaleLength)
	case !localeChars(loc):
		return "may contain only letters, digits, - and _: use a BCP 47 language tag like fr-CA"
	}
	return ""
}

// checkLink returns what is wrong with a non-empty link of the payload, or "". A link is sent
// to a phone as it is, so it must be an absolute https URL (a host, no user name or password,
// which would disguise the real host: https://bank.example@evil.example) of at most
// MaxLinkLength bytes, valid UTF-8 without spaces, control or formatting characters (a line
// break would smuggle text into the SMS).
func checkLink(link string) string {
	switch {
	case len(link) > MaxLinkLength:
		return fmt.Sprintf("is %d bytes long; at most %d are allowed", len(link), MaxLinkLength)
	case !utf8.ValidString(link):
		return "is not valid UTF-8"
	case strings.ContainsFunc(link, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return "contains a space, a control or a formatting character: a link is a URL without spaces (percent-encode them)"
	}
	u, err := url.Parse(link)
	switch {
	case err != nil, u.Scheme != "https", u.Opaque != "", u.Hostname() == "":
		return "must be an absolute https URL like https://example.com/invite?token=..."
	case u.User != nil:
		return "must not carry a user name or password before the host (https://name@host): it would disguise the link's real host"
	}
	return ""
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
