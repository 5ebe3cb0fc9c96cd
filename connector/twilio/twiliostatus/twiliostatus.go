// Package twiliostatus receives Twilio's message status callbacks: Twilio POSTs a form
// (MessageSid, MessageStatus, ErrorCode, To, AccountSid, ...) to the StatusCallback URL a message
// was created with, each time the message's status changes. The Handler verifies each callback's
// X-Twilio-Signature with twilio-go's request validator, the account's auth token and the URL
// Twilio called (the public URL, as Twilio saw it: not the address this process listens on),
// maps it to a connector.MessageStatus (twilio.StateOf, twilio.ReasonOf) and hands it to a
// Recorder (a deliverystatus.Recorder), which merges it so that duplicates and callbacks out of
// order never move a message back.
//
// Answers: 204 once recorded; 403 for a callback without a valid signature (or from another
// account), recorded nowhere; 400 for a signed form without a message SID; 405 for another
// method; 413 for a body over MaxRequestBytes; 503 when the Recorder fails, so that the failure
// shows in Twilio's debugger.
package twiliostatus

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	"go.uber.org/zap"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio"
)

// Path is where the Handler is served, and what follows the public URL in a message's
// StatusCallback.
const Path = "/twilio/status"

// MaxRequestBytes bounds a callback's body: Twilio's forms are well under a KiB.
const MaxRequestBytes = 16 << 10

// SignatureHeader is the header Twilio signs its requests in.
const SignatureHeader = "X-Twilio-Signature"

// Recorder takes a verified callback's status (deliverystatus.Recorder is one).
type Recorder interface {
	Record(ctx context.Context, st *connector.MessageStatus) error
}

// Options configure New.
type Options struct {
	// AuthToken is the auth token of the account whose messages call back: Twilio signs every
	// callback with the account's auth token, even for messages created with an API key. Empty:
	// no callback can be verified, and every one is refused (403).
	AuthToken string
	// AccountSID, when set, must be the callback's AccountSid (a callback of another account
	// is refused, 403).
	AccountSID string
	// CallbackURL is the full URL Twilio calls, as given in StatusCallback (the public URL +
	// Path): the signature covers it. Required.
	CallbackURL string
	// Recorder receives each verified status. Required.
	Recorder Recorder
	// Logger receives one line per callback (never the recipient's number). Nil: no logging.
	Logger *zap.Logger
	// Now is the clock that dates each status (default time.Now); Twilio's callbacks carry no
	// time of their own.
	Now func() time.Time
}

// Handler serves Path.
type Handler struct {
	validator   *twclient.RequestValidator // nil without an auth token
	accountSID  string
	callbackURL string
	rec         Recorder
	log         *zap.Logger
	now         func() time.Time
}

// New returns the Handler o describes.
func New(o Options) (*Handler, error) {
	switch {
	case o.Recorder == nil:
		return nil, errors.New("twiliostatus: Options.Recorder is required")
	case !strings.HasPrefix(o.CallbackURL, "https://") && !strings.HasPrefix(o.CallbackURL, "http://"):
		return nil, errors.New("twiliostatus: Options.CallbackURL must be the absolute URL Twilio calls")
	}
	h := &Handler{accountSID: o.AccountSID, callbackURL: o.CallbackURL, rec: o.Recorder, log: o.Logger, now: o.Now}
	if o.AuthToken != "" {
		v := twclient.NewRequestValidator(o.AuthToken)
		h.validator = &v
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h, nil
}

// Verifies reports whether the Handler can verify callbacks (it has an auth token).
func (h *Handler) Verifies() bool { return h.validator != nil }

// reSID is a Twilio message SID: SM (or MM) and 32 hex digits.
var reSID = regexp.MustCompile(`^(SM|MM)[0-9a-fA-F]{32}$`)

// ServeHTTP answers one callback; see the package documentation.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	code, state, sid := h.serve(r)
	w.WriteHeader(code)
	h.log.Info("twilio status callback", zap.Int("http.status", code), zap.String("message_id", sid),
		zap.String("state", string(state)), zap.Duration("time", h.now().Sub(start)))
}

// serve handles r and returns the HTTP status to answer, and the message and state recorded.
func (h *Handler) serve(r *http.Request) (int, connector.DeliveryState, string) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, "", ""
	}
	r.Body = http.MaxBytesReader(nil, r.Body, MaxRequestBytes)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return http.StatusRequestEntityTooLarge, "", ""
		}
		return http.StatusBadRequest, "", ""
	}
	if h.validator == nil {
		return http.StatusForbidden, "", ""
	}
	params := make(map[string]string, len(r.PostForm))
	for k, v := range r.PostForm {
		params[k] = v[0]
	}
	sig := r.Header.Get(SignatureHeader)
	if sig == "" || !h.validator.Validate(h.callbackURL, params, sig) {
		return http.StatusForbidden, "", ""
	}
	if h.accountSID != "" && params["AccountSid"] != h.accountSID {
		return http.StatusForbidden, "", ""
	}
	sid := params["MessageSid"]
	if !reSID.MatchString(sid) {
		return http.StatusBadRequest, "", ""
	}
	st := &connector.MessageStatus{
		MessageID:    sid,
		To:           params["To"],
		VendorStatus: params["MessageStatus"],
		State:        twilio.StateOf(params["MessageStatus"]),
		UpdatedAt:    h.now(),
	}
	if c := params["ErrorCode"]; c != "" && c != "0" {
		n, err := strconv.Atoi(c)
		if err != nil {
			return http.StatusBadRequest, "", sid
		}
		st.Reason, st.VendorCode = twilio.ReasonOf(n), c
	}
	if err := h.rec.Record(r.Context(), st); err != nil {
		h.log.Warn("twilio status callback not recorded", zap.String("message_id", sid), zap.Error(err))
		return http.StatusServiceUnavailable, st.State, sid
	}
	return http.StatusNoContent, st.State, sid
}
