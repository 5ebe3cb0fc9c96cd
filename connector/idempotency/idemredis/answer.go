package idemredis

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/idempotency"
)

// storedAnswer is an answer as kept in Redis: what a caller over the wire sees of it.
type storedAnswer struct {
	Receipt *storedReceipt `json:"r,omitempty"`
	Err     *storedError   `json:"e,omitempty"`
}

// storedReceipt is a receipt without its recipient: a phone number has no place in Redis, and
// every request that reads the answer carries the same recipient (the fingerprint covers it),
// so package idempotency fills it back in (Answer's documentation).
type storedReceipt struct {
	MessageID string             `json:"id,omitempty"`
	Status    string             `json:"st,omitempty"`
	Segments  int                `json:"n,omitempty"`
	Encoding  connector.Encoding `json:"enc,omitempty"`
	Sender    string             `json:"from,omitempty"`
}

// storedError is a connector.Error without its cause, which is for logs and may hold what a
// caller must not see.
type storedError struct {
	Reason       connector.Reason `json:"r"`
	Message      string           `json:"m,omitempty"`
	Provider     string           `json:"p,omitempty"`
	ProviderCode string           `json:"c,omitempty"`
	MoreInfo     string           `json:"i,omitempty"`
	RetryAfterMS int64            `json:"ra,omitempty"`
	Violations   [][2]string      `json:"v,omitempty"`
}

// internalMessage is the message kept for an error that is not a *connector.Error, the one
// a caller over the wire gets for it.
const internalMessage = "internal error in the connector"

// encodeAnswer serialises a for Redis.
func encodeAnswer(a idempotency.Answer) ([]byte, error) {
	var s storedAnswer
	if r := a.Receipt; r != nil {
		s.Receipt = &storedReceipt{MessageID: r.MessageID, Status: r.Status, Segments: r.Segments, Encoding: r.Encoding, Sender: r.Sender}
	}
	if a.Err != nil {
		var ce *connector.Error
		if !errors.As(a.Err, &ce) {
			ce = &connector.Error{Reason: connector.ReasonInternal, Message: internalMessage}
		}
		e := &storedError{Reason: ce.Reason, Message: ce.Message, Provider: ce.Provider, ProviderCode: ce.ProviderCode,
			MoreInfo: ce.MoreInfo, RetryAfterMS: ce.RetryAfter.Milliseconds()}
		for _, v := range ce.Violations {
			e.Violations = append(e.Violations, [2]string{v.Field, v.Description})
		}
		s.Err = e
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("idemredis: encode answer: %w", err)
	}
	return b, nil
}

// decodeReply is the answer of a claimScript reply {answer, json} or {unknown}.
func decodeReply(reply []string) (idempotency.Answer, error) {
	if reply[0] == "unknown" {
		return idempotency.Answer{Err: &connector.Error{
			Reason:  connector.ReasonProviderOutcomeUnknown,
			Message: "the first send with this idempotency key was interrupted (its replica stopped or lost the store) before its answer was stored; the SMS may or may not have been sent; send with a new key to try again",
		}}, nil
	}
	if len(reply) < 2 {
		return idempotency.Answer{}, fmt.Errorf("idemredis: answer missing from reply %q", reply)
	}
	var s storedAnswer
	if err := json.Unmarshal([]byte(reply[1]), &s); err != nil {
		return idempotency.Answer{}, fmt.Errorf("idemredis: decode answer: %w", err)
	}
	var a idempotency.Answer
	if r := s.Receipt; r != nil {
		a.Receipt = &connector.Receipt{MessageID: r.MessageID, Status: r.Status, Segments: r.Segments, Encoding: r.Encoding, Sender: r.Sender}
	}
	if e := s.Err; e != nil {
		ce := &connector.Error{Reason: e.Reason, Message: e.Message, Provider: e.Provider, ProviderCode: e.ProviderCode,
			MoreInfo: e.MoreInfo, RetryAfter: time.Duration(e.RetryAfterMS) * time.Millisecond}
		for _, v := range e.Violations {
			ce.Violations = append(ce.Violations, connector.Violation{Field: v[0], Description: v[1]})
		}
		a.Err = ce
	}
	return a, nil
}
