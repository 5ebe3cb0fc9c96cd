package logtobridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/sms-connector/sms-connector/connector"
)

// testType is Logto's deprecated VerificationCodeType "Test", sent by older Logto versions'
// "test send"; it is sent as Generic.
const testType = "Test"

// logtoBody is Logto's SendMessageData, each member kept raw so that a member of the wrong
// JSON type is reported by its name. Members Logto may add later are ignored.
type logtoBody struct {
	To      json.RawMessage `json:"to"`
	Type    json.RawMessage `json:"type"`
	Payload json.RawMessage `json:"payload"`
	IP      json.RawMessage `json:"ip"`
}

// The payload members that are not template variables.
const (
	keyCode      = "code"
	keyLink      = "link"
	keyLocale    = "locale"
	keyUILocales = "uiLocales"
)

// fieldNames renames the request fields of protoconv.CheckMessage's violations to what Logto
// sends: its violations name proto fields.
var fieldNames = []struct{ proto, logto string }{
	{"usage_type", "type"},
	{"client_ip", "ip"},
	{"idempotency_key", "Idempotency-Key header"},
	{"payload.variables", "payload"},
	{"payload.ui_locales", "payload.uiLocales"},
}

// logtoField is the Logto name of a CheckMessage violation's field.
func logtoField(field string) string {
	for _, n := range fieldNames {
		if field == n.proto {
			return n.logto
		}
		if rest, ok := strings.CutPrefix(field, n.proto); ok && (rest[0] == '.' || rest[0] == '[') {
			return n.logto + rest
		}
	}
	return field
}

// errUnsupportedType is the refusal of a body that is not JSON.
var errUnsupportedType = connector.Errorf(connector.ReasonInvalidRequest, `the body must be JSON: send "Content-Type: application/json"`)

// checkContentType reports whether r's body is declared as JSON (application/json, in UTF-8
// when a charset is given).
func checkContentType(r *http.Request) bool {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// errTooLarge is the refusal of a body over the limit.
type errTooLarge struct{ limit int64 }

func (e errTooLarge) Error() string { return fmt.Sprintf("the body is larger than %d bytes", e.limit) }

// readMessage reads Logto's SendMessageData from r and converts it into a message: to, type
// (Logto's TemplateType, "Test" as Generic), payload.code, payload.link, payload.locale,
// payload.uiLocales (Logto sends the ui_locales parameter, tags separated by spaces; a JSON
// array of tags is accepted too) and every other payload member as a template variable; ip
// is the client IP and the Idempotency-Key header the idempotency key. It checks JSON types
// only; the message's rules are protoconv.CheckMessage's. Its errors are INVALID_REQUEST
// *connector.Errors, or errTooLarge.
func readMessage(r *http.Request, limit int64) (*connector.Message, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, connector.Errorf(connector.ReasonInvalidRequest, "the body could not be read")
	}
	if int64(len(raw)) > limit {
		return nil, errTooLarge{limit}
	}
	var b logtoBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&b); err != nil {
		return nil, connector.Errorf(connector.ReasonInvalidRequest, "the body is not a JSON object: %s", jsonProblem(err))
	}
	if dec.More() {
		return nil, connector.Errorf(connector.ReasonInvalidRequest, "the body has data after its JSON object")
	}
	var vs []connector.Violation
	str := func(field string, v json.RawMessage) string {
		s, ok := stringOf(v)
		if !ok {
			vs = append(vs, connector.Violation{Field: field, Description: "must be a string"})
		}
		return s
	}
	msg := &connector.Message{
		To:             str("to", b.To),
		UsageType:      connector.UsageType(str("type", b.Type)),
		ClientIP:       str("ip", b.IP),
		IdempotencyKey: idempotencyKey(r.Header.Get("Idempotency-Key")),
	}
	if msg.UsageType == testType {
		msg.UsageType = connector.UsageGeneric
	}
	var payload map[string]any
	if !isNull(b.Payload) {
		if err := json.Unmarshal(b.Payload, &payload); err != nil || payload == nil {
			vs = append(vs, connector.Violation{Field: "payload", Description: "must be a JSON object"})
		}
	}
	for k, v := range payload {
		switch k {
		case keyCode, keyLink, keyLocale:
			s, ok := v.(string)
			if !ok && v != nil {
				vs = append(vs, connector.Violation{Field: "payload." + k, Description: "must be a string"})
			}
			switch k {
			case keyCode:
				msg.Payload.Code = s
			case keyLink:
				msg.Payload.Link = s
			case keyLocale:
				msg.Payload.Locale = s
			}
		case keyUILocales:
			tags, ok := localesOf(v)
			if !ok {
				vs = append(vs, connector.Violation{Field: "payload.uiLocales", Description: "must be a string of language tags separated by spaces"})
			}
			msg.Payload.Locales = tags
		default:
			if msg.Payload.Variables == nil {
				msg.Payload.Variables = make(map[string]any, len(payload))
			}
			msg.Payload.Variables[k] = v
		}
	}
	if len(vs) > 0 {
		return nil, connector.ViolationsError(connector.ReasonInvalidRequest, connector.RequestSubject, vs)
	}
	return msg, nil
}

// jsonProblem says what is wrong with a body that does not decode, without quoting it.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "it is empty"
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return "it is a JSON " + typ.Value
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends early"
	}
	return "invalid JSON (nested too deeply, or malformed)"
}

// isNull reports whether a member is absent or null.
func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

// stringOf returns a member's string, "" when it is absent or null, and false when it is
// another JSON type.
func stringOf(v json.RawMessage) (string, bool) {
	if isNull(v) {
		return "", true
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// localesOf returns the tags of uiLocales: a string of tags separated by white space (the
// OIDC ui_locales parameter, as Logto sends it), or a JSON array of strings. A browser's list
// can be long: repeated tags are dropped and only the first connector.MaxLocales kept, rather
// than refusing the user's sign-in for it.
func localesOf(v any) ([]string, bool) {
	var tags []string
	switch x := v.(type) {
	case nil:
		return nil, true
	case string:
		tags = strings.Fields(x)
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			tags = append(tags, s)
		}
	default:
		return nil, false
	}
	var out []string
	for _, t := range tags {
		if len(out) == connector.MaxLocales {
			break
		}
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, t) }) {
			out = append(out, t)
		}
	}
	return out, true
}

// idempotencyKey is the key of an Idempotency-Key header: the IETF draft sends it as a
// structured-field string ("…" in double quotes); a bare token is taken as it is.
func idempotencyKey(h string) string {
	h = strings.TrimSpace(h)
	if len(h) >= 2 && h[0] == '"' && h[len(h)-1] == '"' {
		return h[1 : len(h)-1]
	}
	return h
}
