package contract

import (
	"errors"

	"github.com/sms-connector/sms-connector/connector"
)

// The names of the delivery-status rules both suites run.
const (
	// RuleStatusOfSent: the status of a message the connector just accepted has its MessageID
	// and a known State, or the connector answers NOT_SUPPORTED (StatusOfSent).
	RuleStatusOfSent = "MessageStatus/SentMessage"
	// RuleStatusUnknownID: an id no send returned is MESSAGE_NOT_FOUND, or NOT_SUPPORTED from a
	// connector that cannot tell statuses (StatusOfUnknown).
	RuleStatusUnknownID = "MessageStatus/UnknownID"
)

// UnknownMessageID is the id both suites ask the status of as one no send returned. It has the
// shape of a Twilio message SID, so that a connector that checks the shape of its vendor's ids
// still asks its vendor.
const UnknownMessageID = "SM00000000000000000000000000000000"

// deliveryStates are the states a status may report.
var deliveryStates = []connector.DeliveryState{
	connector.DeliveryUnknown, connector.DeliveryQueued, connector.DeliverySending, connector.DeliverySent,
	connector.DeliveryDelivered, connector.DeliveryUndelivered, connector.DeliveryFailed,
}

// StatusOfSent checks st and err, the outcome of what, reading the status of the message id
// that a send with the same configuration just accepted. A connector that tells statuses
// reports it with MessageID (message_id) id, a known State (state), its vendor's status word
// and a Reason (error_reason) only when the state is UNDELIVERED or FAILED; one that cannot
// tell answers NOT_SUPPORTED (UNIMPLEMENTED). It reports whether the connector tells statuses.
func StatusOfSent(what string, st *connector.MessageStatus, err error, id string) (supported bool, p Problems) {
	var ce *connector.Error
	if errors.As(err, &ce) && ce.Reason == connector.ReasonNotSupported {
		_, p = Failure(what, err, connector.ReasonNotSupported)
		return false, p
	}
	switch {
	case err != nil:
		p.Addf("%s must report the status of a message the connector accepted, or fail with NOT_SUPPORTED when it cannot tell statuses, got %s", what, Describe(err))
		return true, p
	case st == nil:
		p.Addf("%s must return a status, got none and no error", what)
		return true, p
	}
	if st.MessageID != id {
		p.Addf("%s: MessageStatus.MessageID (message_id) must be the id asked for, %q, got %q", what, id, st.MessageID)
	}
	known := false
	for _, s := range deliveryStates {
		known = known || st.State == s
	}
	if !known {
		p.Addf("%s: MessageStatus.State (state) must be one of %q, got %q", what, deliveryStates, st.State)
	}
	if st.VendorStatus == "" {
		p.Addf("%s: MessageStatus.VendorStatus (vendor_status) must carry the vendor's own status word, it is empty", what)
	}
	if st.Reason != "" && st.State != connector.DeliveryUndelivered && st.State != connector.DeliveryFailed {
		p.Addf("%s: MessageStatus.Reason (error_reason) is only for UNDELIVERED and FAILED, got %s with state %s", what, st.Reason, st.State)
	}
	if st.Segments < 0 {
		p.Addf("%s: MessageStatus.Segments (segments) must not be negative, got %d", what, st.Segments)
	}
	return true, p
}

// StatusOfUnknown checks st and err, the outcome of what, reading the status of an id no send
// returned (UnknownMessageID): MESSAGE_NOT_FOUND (NOT_FOUND) from a connector that tells
// statuses (supported, as StatusOfSent found), NOT_SUPPORTED (UNIMPLEMENTED) from one that
// cannot; never a status.
func StatusOfUnknown(what string, st *connector.MessageStatus, err error, supported bool) Problems {
	want := connector.ReasonMessageNotFound
	if !supported {
		want = connector.ReasonNotSupported
	}
	if err == nil && st != nil {
		var p Problems
		p.Addf("%s must fail with reason %s, got a status with state %s", what, want, st.State)
		return p
	}
	_, p := Failure(what, err, want)
	return p
}
