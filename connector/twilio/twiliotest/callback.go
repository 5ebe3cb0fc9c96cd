package twiliotest

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Recipients whose messages are accepted and then not delivered: the emulator's status
// callbacks end in "undelivered" or "failed" with the Twilio error code named. Twilio's test
// credentials have no such numbers (they never call back); these are the emulator's own.
const (
	// ToUndeliveredUnreachable: undelivered, 30003 (unreachable destination handset).
	ToUndeliveredUnreachable = "+15005550011"
	// ToUndeliveredUnknown: undelivered, 30005 (unknown destination handset).
	ToUndeliveredUnknown = "+15005550012"
	// ToUndeliveredLandline: undelivered, 30006 (landline or unreachable carrier).
	ToUndeliveredLandline = "+15005550013"
	// ToUndeliveredFiltered: undelivered, 30007 (message filtered by the carrier).
	ToUndeliveredFiltered = "+15005550014"
	// ToFailed: failed, 30008 (unknown error).
	ToFailed = "+15005550015"
)

// DefaultCallbackDelay is the wait before each status callback unless WithCallbackDelay says
// otherwise: short, so a sandbox user sees a message delivered at once, yet visible in order.
const DefaultCallbackDelay = 50 * time.Millisecond

// callbackTimeout bounds one callback request.
const callbackTimeout = 5 * time.Second

// Callback is one status callback the emulator posted.
type Callback struct {
	// MessageSid is the message it was about.
	MessageSid string
	// Status is the MessageStatus it carried; ErrorCode its ErrorCode (0: none sent).
	Status    string
	ErrorCode int
	// HTTPStatus is the status code the callback URL answered, 0 when the request failed.
	HTTPStatus int
	// Err is why the request failed, "" when it got an answer.
	Err string
}

// WithCallbackDelay sets the wait before each status callback (default DefaultCallbackDelay;
// 0: none, as tests want).
func WithCallbackDelay(d time.Duration) Option {
	return func(c *config) { c.callbackDelay = max(d, 0) }
}

// WithCallbackChaos makes every message's callbacks arrive as Twilio's may: out of order and
// more than once. The final status comes second, then the earlier ones, then the final one
// again: sent, <final>, queued, sent, <final>.
func WithCallbackChaos() Option {
	return func(c *config) { c.callbackChaos = true }
}

// step is one status of a message's life and its error code.
type step struct {
	status string
	code   int
}

// lifeOf returns the statuses a message to to goes through, in order.
func lifeOf(to string) []step {
	final := step{status: "delivered"}
	switch to {
	case ToUndeliveredUnreachable:
		final = step{"undelivered", 30003}
	case ToUndeliveredUnknown:
		final = step{"undelivered", 30005}
	case ToUndeliveredLandline:
		final = step{"undelivered", 30006}
	case ToUndeliveredFiltered:
		final = step{"undelivered", 30007}
	case ToFailed:
		final = step{"failed", 30008}
	}
	if final.status == "failed" {
		return []step{{status: "queued"}, final}
	}
	return []step{{status: "queued"}, {status: "sent"}, final}
}

// postOrder returns the callbacks to post for life: in order, or shuffled and repeated with
// chaos.
func postOrder(life []step, chaos bool) []step {
	if !chaos {
		return life
	}
	last := len(life) - 1
	out := []step{life[last-1], life[last]}
	out = append(out, life[:last]...)
	return append(out, life[last])
}

// startCallbacks posts m's status callbacks in the background when it has a StatusCallback.
func (s *Server) startCallbacks(m Message) {
	if m.StatusCallback == "" {
		return
	}
	s.callbacks.Add(1)
	go func() {
		defer s.callbacks.Done()
		life := lifeOf(m.To)
		rank := func(st step) int { return slices.Index(life, st) }
		reached := 0
		for _, st := range postOrder(life, s.cfg.callbackChaos) {
			if s.cfg.callbackDelay > 0 {
				t := time.NewTimer(s.cfg.callbackDelay)
				select {
				case <-t.C:
				case <-s.done:
					t.Stop()
					return
				}
			}
			if r := rank(st); r >= reached {
				reached = r
				s.setStatus(m.Sid, st)
			}
			s.post(m, st)
		}
	}()
}

// setStatus records st as message sid's current status.
func (s *Server) setStatus(sid string, st step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.messages {
		if s.messages[i].Sid == sid {
			s.messages[i].Status, s.messages[i].ErrorCode = st.status, st.code
			return
		}
	}
}

// post sends one signed callback about m and records the answer.
func (s *Server) post(m Message, st step) {
	form := url.Values{
		"AccountSid":    {m.AccountSid},
		"ApiVersion":    {"2010-04-01"},
		"MessageSid":    {m.Sid},
		"SmsSid":        {m.Sid},
		"MessageStatus": {st.status},
		"SmsStatus":     {st.status},
		"To":            {m.To},
	}
	if m.From != "" {
		form.Set("From", m.From)
	}
	if m.MessagingServiceSid != "" {
		form.Set("MessagingServiceSid", m.MessagingServiceSid)
	}
	if st.code != 0 {
		form.Set("ErrorCode", strconv.Itoa(st.code))
	}
	cb := Callback{MessageSid: m.Sid, Status: st.status, ErrorCode: st.code}
	ctx, cancel := context.WithTimeout(context.Background(), callbackTimeout)
	defer cancel()
	go func() { // Close aborts a callback in flight

		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.StatusCallback, strings.NewReader(form.Encode()))
	if err == nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", Sign(s.cfg.authToken, m.StatusCallback, form))
		var resp *http.Response
		if resp, err = s.callbackClient.Do(req); err == nil {
			cb.HTTPStatus = resp.StatusCode
			_ = resp.Body.Close()
		}
	}
	if err != nil {
		cb.Err = err.Error()
	}
	s.mu.Lock()
	s.posted = append(s.posted, cb)
	s.mu.Unlock()
}

// Sign returns the X-Twilio-Signature Twilio computes for a POST of form to callbackURL with the
// account's authToken: the base64 of the HMAC-SHA1 of the URL followed by each parameter's name
// and value, names sorted.
func Sign(authToken, callbackURL string, form url.Values) string {
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	slices.Sort(names)
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(callbackURL))
	for _, k := range names {
		for _, v := range form[k] {
			mac.Write([]byte(k + v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Callbacks returns every status callback posted so far, in the order they were answered.
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.posted)
}

// WaitCallbacks waits until every status callback of the messages accepted so far has been
// posted, or ctx ends.
func (s *Server) WaitCallbacks(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.callbacks.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
