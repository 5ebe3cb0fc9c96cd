package twiliotest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

const (
	// messagesPattern is the route that creates messages.
	messagesPattern = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
	// messagePattern is the route of one message, {Sid}.json (a pattern's wildcard is a whole
	// path segment, so the handler takes the ".json" off).
	messagePattern = "/2010-04-01/Accounts/{AccountSid}/Messages/{SidJSON}"
	// maxBodyBytes bounds a request body; Twilio's own limit on Body (1600 characters) is far
	// below it, so only garbage reaches it.
	maxBodyBytes = 64 << 10
	// maxBodyChars is Twilio's limit on Body, in UTF-16 code units.
	maxBodyChars = 1600
	// twilioDate is the layout of Twilio's date fields: RFC 1123 with a numeric zone, in UTC.
	twilioDate = time.RFC1123Z
)

// apiError is Twilio's error JSON, as twilio-go's client.TwilioRestError decodes it.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// writeError answers with Twilio's error JSON. Code 0 marks errors Twilio defines no code for;
// they carry no more_info link.
func writeError(w http.ResponseWriter, status, code int, msg string) {
	e := apiError{Code: code, Message: msg, Status: status}
	if code != 0 {
		e.MoreInfo = "https://www.twilio.com/docs/errors/" + strconv.Itoa(code)
	}
	writeJSON(w, status, e)
}

// writeJSON answers with v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen: v is one of this package's plain structs
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// serveNotFound answers every path but the Messages.json route.
func (s *Server) serveNotFound(w http.ResponseWriter, r *http.Request) {
	if !s.wait(r, s.currentLatency()) {
		return
	}
	writeError(w, http.StatusNotFound, 20404, notFoundMessage(r.URL.Path))
}

// notFoundMessage is Twilio's message for error 20404.
func notFoundMessage(path string) string {
	return "The requested resource " + path + " was not found"
}

// admit runs the steps every route starts with: the configured latency (abandoned when the
// client goes away), an injected fault, then Basic auth. It reports whether the request goes
// on; when not, the answer is written.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	fault, faulted, latency := s.arrive()
	if !s.wait(r, latency) {
		return false
	}
	if faulted {
		writeFault(w, fault)
		return false
	}
	if !s.authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return false
	}
	return true
}

// serveMessages handles the Messages.json route; the package documentation lists its steps.
func (s *Server) serveMessages(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r) {
		return
	}
	if r.PathValue("AccountSid") != s.cfg.accountSID {
		writeError(w, http.StatusNotFound, 20404, notFoundMessage(r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, 0,
				fmt.Sprintf("The request body is larger than %d bytes.", maxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, 0, "The request body is not a valid form.")
		return
	}
	m, verr := s.validate(r)
	if verr != nil {
		writeJSON(w, verr.Status, verr)
		return
	}
	s.record(m)
	writeJSON(w, http.StatusCreated, resource(m))
}

// serveMessage handles GET of one message: the steps of serveMessages up to the account, then
// GET only, then the message resource as the create call returned it, with the message's
// current Status; 404 (20404) for a SID the emulator did not accept for this account.
func (s *Server) serveMessage(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r) {
		return
	}
	account := r.PathValue("AccountSid")
	sid, ok := strings.CutSuffix(r.PathValue("SidJSON"), ".json")
	if account != s.cfg.accountSID || !ok {
		writeError(w, http.StatusNotFound, 20404, notFoundMessage(r.URL.Path))
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	m, ok := s.message(account, sid)
	if !ok {
		writeError(w, http.StatusNotFound, 20404, notFoundMessage(r.URL.Path))
		return
	}
	writeJSON(w, http.StatusOK, resource(m))
}

// authenticated reports whether r carries the account's or one of its API keys' credentials.
func (s *Server) authenticated(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	want, known := s.cfg.apiKeys[user]
	if user == s.cfg.accountSID {
		want, known = s.cfg.authToken, true
	}
	return known && subtle.ConstantTimeCompare([]byte(pass), []byte(want)) == 1
}

// badRequest is a 400 with Twilio's error JSON.
func badRequest(code int, format string, args ...any) *apiError {
	return &apiError{
		Code:     code,
		Message:  fmt.Sprintf(format, args...),
		MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
		Status:   http.StatusBadRequest,
	}
}

// validate checks the parsed form in Twilio's order and returns the message to accept or the
// first error.
func (s *Server) validate(r *http.Request) (Message, *apiError) {
	f := r.PostForm
	to, from, body := f.Get("To"), f.Get("From"), f.Get("Body")
	service := f.Get("MessagingServiceSid")

	switch {
	case to == "":
		return Message{}, badRequest(21604, "A 'To' phone number is required.")
	case body == "" && len(f["MediaUrl"]) == 0:
		return Message{}, badRequest(21602, "Message body is required.")
	case from == "" && service == "":
		return Message{}, badRequest(21603, "A 'From' phone number is required.")
	case !isE164(to):
		return Message{}, badRequest(21211, "The 'To' number %s is not a valid phone number.", to)
	case service != "" && !s.validService(service):
		return Message{}, badRequest(21705, "The Messaging Service Sid %s is invalid.", service)
	case from != "" && !s.owns(from) && !isE164(from):
		return Message{}, badRequest(21212, "The 'From' number %s is not a valid phone number, "+
			"shortcode, or alphanumeric sender ID.", from)
	case from != "" && !s.owns(from):
		return Message{}, badRequest(21606, "The 'From' phone number provided (%s) is not a valid "+
			"message-capable Twilio phone number for this destination/account.", from)
	case connector.UTF16Len(body) > maxBodyChars:
		return Message{}, badRequest(21617, "The concatenated message body exceeds the %d "+
			"character limit.", maxBodyChars)
	}
	validity := 0
	if v := f.Get("ValidityPeriod"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 36000 {
			return Message{}, badRequest(21624, "Invalid validity period value: %q is not an "+
				"integer from 1 to 36000.", v)
		}
		validity = n
	}
	if err := magic(from, to); err != nil {
		return Message{}, err
	}

	segments, _ := connector.CountSegments(body)
	m := Message{
		Sid:                 newSID("SM"),
		AccountSid:          s.cfg.accountSID,
		To:                  to,
		From:                from,
		MessagingServiceSid: service,
		Body:                body,
		Status:              "queued",
		StatusCallback:      f.Get("StatusCallback"),
		RiskCheck:           f.Get("RiskCheck"),
		ValidityPeriod:      validity,
		NumMedia:            len(f["MediaUrl"]),
		NumSegments:         segments,
		DateCreated:         time.Now().UTC().Truncate(time.Second),
	}
	if service != "" {
		m.Status = "accepted"
	}
	return m, nil
}

// magic returns the error of Twilio's magic test numbers, or nil.
func magic(from, to string) *apiError {
	switch from {
	case FromInvalid:
		return badRequest(21212, "The 'From' number %s is not a valid phone number, shortcode, "+
			"or alphanumeric sender ID.", from)
	case FromNotOwned:
		return badRequest(21606, "The 'From' phone number provided (%s) is not a valid "+
			"message-capable Twilio phone number for this destination/account.", from)
	case FromQueueFull:
		return badRequest(21611, "This 'From' number has exceeded the maximum number of queued "+
			"messages.")
	}
	switch to {
	case ToInvalid:
		return badRequest(21211, "The 'To' number %s is not a valid phone number.", to)
	case ToUnreachable:
		return badRequest(21612, "The 'To' phone number: %s, is not currently reachable using "+
			"the 'From' phone number: %s via SMS.", to, from)
	case ToNoGeoPermission:
		return badRequest(21408, "Permission to send an SMS has not been enabled for the region "+
			"indicated by the 'To' number: %s.", to)
	case ToOptedOut:
		return badRequest(21610, "Attempt to send to unsubscribed recipient")
	case ToNotMobile:
		return badRequest(21614, "'To' number is not a valid mobile number")
	case ToLandline:
		return badRequest(21635, "'To' number cannot be a Landline")
	}
	return nil
}

// owns reports whether the account may send from from: the magic senders (whose errors come
// later, as Twilio's do), the configured senders, and alphanumeric sender IDs.
func (s *Server) owns(from string) bool {
	switch from {
	case FromValid, FromInvalid, FromNotOwned, FromQueueFull:
		return true
	}
	if _, ok := s.cfg.senders[from]; ok {
		return true
	}
	return isAlphanumericSender(from)
}

// validService reports whether sid is a Messaging Service of the account.
func (s *Server) validService(sid string) bool {
	if !isSID(sid, "MG") {
		return false
	}
	if s.cfg.services == nil {
		return true
	}
	_, ok := s.cfg.services[sid]
	return ok
}

// isE164 reports whether n is "+" then 7 to 15 digits, the first not 0.
func isE164(n string) bool {
	if len(n) < 8 || len(n) > 16 || n[0] != '+' || n[1] == '0' {
		return false
	}
	for _, c := range []byte(n[1:]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isAlphanumericSender reports whether id is an alphanumeric sender ID: 1 to 11 characters of
// A-Z, a-z, 0-9 and space, at least one of them a letter.
func isAlphanumericSender(id string) bool {
	if len(id) < 1 || len(id) > 11 {
		return false
	}
	letter := false
	for _, c := range []byte(id) {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
			letter = true
		case c >= '0' && c <= '9', c == ' ':
		default:
			return false
		}
	}
	return letter
}

// isSID reports whether sid is prefix followed by 32 hex digits.
func isSID(sid, prefix string) bool {
	if len(sid) != len(prefix)+32 || sid[:len(prefix)] != prefix {
		return false
	}
	_, err := hex.DecodeString(sid[len(prefix):])
	return err == nil
}

// newSID returns prefix followed by 32 random lowercase hex digits, as Twilio's SIDs are.
func newSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return prefix + hex.EncodeToString(b[:])
}

// messageResource is Twilio's message resource, as the create call and a GET return it.
type messageResource struct {
	AccountSid          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                *string           `json:"from"`
	MessagingServiceSid *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	Sid                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

// resource is the body of an accepted message's resource: 201 for the create call, 200 for a
// GET.
func resource(m Message) messageResource {
	base := "/2010-04-01/Accounts/" + m.AccountSid + "/Messages/" + m.Sid
	date := m.DateCreated.Format(twilioDate)
	res := messageResource{
		AccountSid:  m.AccountSid,
		APIVersion:  "2010-04-01",
		Body:        m.Body,
		DateCreated: date,
		DateUpdated: date,
		Direction:   "outbound-api",
		NumMedia:    strconv.Itoa(m.NumMedia),
		NumSegments: strconv.Itoa(m.NumSegments),
		PriceUnit:   "USD",
		Sid:         m.Sid,
		Status:      m.Status,
		SubresourceURIs: map[string]string{
			"media":    base + "/Media.json",
			"feedback": base + "/Feedback.json",
		},
		To:  m.To,
		URI: base + ".json",
	}
	if m.From != "" {
		res.From = &m.From
	}
	if m.ErrorCode != 0 {
		res.ErrorCode = &m.ErrorCode
	}
	if m.MessagingServiceSid != "" {
		res.MessagingServiceSid = &m.MessagingServiceSid
		res.NumSegments = "0" // Twilio counts segments once the service has picked a sender
	}
	return res
}
