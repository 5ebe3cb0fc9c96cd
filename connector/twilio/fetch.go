package twilio

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/httpvendor"
)

var _ connector.StatusReader = (*Connector)(nil)

// MessageStatus fetches the Message resource messageID from Twilio with twilio-go's
// FetchMessage (GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json), with the account
// and credentials of config, and maps it: the status word with StateOf, the error code of an
// undelivered or failed message with ReasonOf, num_segments, price,
// price_unit and date_updated as Twilio reports them.
//
// Failures are *connector.Error: CONFIG_MISSING and INVALID_CONFIG as for Send,
// MESSAGE_NOT_FOUND for an id that is not a Twilio message SID ("SM" or "MM" and 32 hex
// digits; nothing is asked) and for Twilio's 20404, and Twilio's other answers as Send maps
// them. Reading changes nothing at Twilio, so every transient failure (throttling, a failed
// connection, a 5xx, an attempt that timed out) is retried, within the caller's deadline and
// Options.MaxAttempts, as Send retries the failures it may.
func (c *Connector) MessageStatus(ctx context.Context, messageID string, config json.RawMessage) (*connector.MessageStatus, error) {
	pc, err := c.configs.LoadForSend(config, "Twilio", c.prepare)
	if err != nil {
		return nil, err
	}
	if !isMessageSID(messageID) {
		return nil, &connector.Error{Reason: connector.ReasonMessageNotFound, Provider: Provider,
			Message: "the id is not a Twilio message SID (\"SM\" or \"MM\" followed by 32 hex digits)"}
	}
	var m *openapi.ApiV2010Message
	ferr := c.retry(ctx, func(e *connector.Error) bool { return fetchRetryable(ctx, e) }, "nothing was read",
		func() (time.Duration, *connector.Error) {
			var retryAfter time.Duration
			var err *connector.Error
			m, retryAfter, err = c.fetchAttempt(ctx, pc, messageID)
			return retryAfter, err
		})
	if ferr != nil {
		return nil, ferr
	}
	return messageStatus(m), nil
}

// fetchAttempt makes one attempt at fetching the message sid, bounded by ctx and the attempt
// timeout, and returns it, or the failure with the delay its Retry-After asks for.
func (c *Connector) fetchAttempt(ctx context.Context, pc *prepared, sid string) (*openapi.ApiV2010Message, time.Duration, *connector.Error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	rt := &httpvendor.Transport{Base: c.transport, Context: actx, BaseURL: c.baseURL}
	defer rt.Close() // twilio-go leaves the body of an error answer open

	m, err := c.api(pc, rt).FetchMessage(sid, nil)
	if err != nil {
		return nil, httpvendor.RetryAfter(rt.Header.Get("Retry-After")), classifyFetch(ctx, actx, rt, fmt.Errorf("twilio: fetch message: %w", err))
	}
	// twilio-go returns any 2xx or 3xx answer as a message; without a SID and status it is none.
	if m.Sid == nil || *m.Sid == "" || m.Status == nil {
		return nil, 0, &connector.Error{
			Reason:   connector.ReasonProviderInvalidResponse,
			Message:  fmt.Sprintf("Twilio answered HTTP %d without a message while its status was read", rt.Status),
			Provider: Provider,
			Err:      fmt.Errorf("twilio: fetch message: HTTP %d response has no sid or status", rt.Status),
		}
	}
	return m, 0, nil
}

// classifyFetch is classify for a read of a message: Twilio's 20404 is MESSAGE_NOT_FOUND,
// and what classify says of a message that "may or may not have been created" does not apply
// to a read, which creates nothing.
func classifyFetch(ctx, actx context.Context, rt *httpvendor.Transport, err error) *connector.Error {
	e := classify(ctx, actx, rt, err)
	var rest *twclient.TwilioRestError
	if errors.As(err, &rest) && rest.Code == 20404 {
		e.Reason = connector.ReasonMessageNotFound
		e.Message = "Twilio knows no message with this SID in the configured account"
		return e
	}
	if before, _, cut := strings.Cut(e.Message, "; the message "); cut {
		e.Message = before
	}
	e.Message += " (while reading the message's status; reading again is safe)"
	return e
}

// fetchRetryable reports whether another attempt at reading may succeed: throttling and failed
// connections (httpvendor.Retryable), and, since a read changes nothing, a 5xx or a connection
// lost mid-call, and an attempt that timed out while the caller's context still runs.
func fetchRetryable(ctx context.Context, e *connector.Error) bool {
	switch e.Reason {
	case connector.ReasonProviderOutcomeUnknown:
		return true
	case connector.ReasonProviderTimeout:
		return ctx.Err() == nil
	}
	return httpvendor.Retryable(e)
}

// isMessageSID reports whether id is a Twilio message SID: "SM" (SMS) or "MM" (MMS) and 32
// hex digits. Any other id names no message, and must not reach the request path.
func isMessageSID(id string) bool {
	if len(id) != 34 || (id[:2] != "SM" && id[:2] != "MM") {
		return false
	}
	_, err := hex.DecodeString(id[2:])
	return err == nil
}

// messageStatus maps Twilio's Message resource to a status.
func messageStatus(m *openapi.ApiV2010Message) *connector.MessageStatus {
	word := *m.Status
	st := &connector.MessageStatus{MessageID: *m.Sid, VendorStatus: word, State: StateOf(word)}
	if m.To != nil {
		st.To = *m.To
	}
	if (st.State == connector.DeliveryUndelivered || st.State == connector.DeliveryFailed) && m.ErrorCode != nil && *m.ErrorCode != 0 {
		st.Reason = ReasonOf(*m.ErrorCode)
		st.VendorCode = strconv.Itoa(*m.ErrorCode)
	}
	if m.DateUpdated != nil {
		if t, err := time.Parse(time.RFC1123Z, *m.DateUpdated); err == nil {
			st.UpdatedAt = t.UTC()
		}
	}
	if m.NumSegments != nil {
		if n, err := strconv.Atoi(*m.NumSegments); err == nil && n > 0 {
			st.Segments = n
		}
	}
	if m.Price != nil && *m.Price != "" {
		st.Price = *m.Price
		if m.PriceUnit != nil {
			st.PriceUnit = strings.ToUpper(*m.PriceUnit)
		}
	}
	return st
}
