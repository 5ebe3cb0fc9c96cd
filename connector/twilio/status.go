package twilio

import (
	"github.com/sms-connector/sms-connector/connector"
)

// StateOf maps a Twilio message status word (the MessageStatus of a status callback, the
// status of a fetched Message) to the contract's delivery state. Of the words Twilio documents,
// "receiving" and "received" are inbound messages' (never one this connector sent) and are
// UNKNOWN, as is any word Twilio adds later.
func StateOf(status string) connector.DeliveryState {
	switch status {
	case "accepted", "scheduled", "queued": // "accepted": through a Messaging Service
		return connector.DeliveryQueued
	case "sending":
		return connector.DeliverySending
	case "sent":
		return connector.DeliverySent
	case "delivered", "read": // "read": delivered, and the recipient opened it
		return connector.DeliveryDelivered
	case "undelivered", "partially_delivered": // part of it only: the code may be in the rest
		return connector.DeliveryUndelivered
	case "failed", "canceled": // "canceled": a scheduled message cancelled, never sent
		return connector.DeliveryFailed
	}
	return connector.DeliveryUnknown
}

// deliveryReasons maps the error codes Twilio reports for an undelivered or failed message
// (they come from carriers, after the create call succeeded) to reasons.
var deliveryReasons = map[int]connector.Reason{
	30001: connector.ReasonProviderQueueFull,    // queue overflow
	30002: connector.ReasonProviderRejected,     // account suspended
	30003: connector.ReasonRecipientUnreachable, // unreachable handset: off, or out of coverage
	30004: connector.ReasonProviderRejected,     // message blocked
	30005: connector.ReasonInvalidPhoneNumber,   // unknown handset: no such or an inactive number
	30006: connector.ReasonRecipientNotMobile,   // landline, or a carrier that takes no SMS
	30007: connector.ReasonProviderRejected,     // filtered by the carrier as spam
	30008: connector.ReasonProviderRejected,     // unknown error from the carrier
	30032: connector.ReasonInvalidSender,        // toll-free number not verified
	30034: connector.ReasonInvalidSender,        // US A2P 10DLC: sender not registered
}

// ReasonOf maps the Twilio error code of an undelivered or failed message to the contract's
// error reason: "" for 0 (no error); a code not in the delivery table but known to the create
// call (codeReasons) has that reason; any other is PROVIDER_REJECTED (the message did not
// arrive, and Twilio said why in a code only its documentation explains).
func ReasonOf(code int) connector.Reason {
	if code == 0 {
		return ""
	}
	if r, ok := deliveryReasons[code]; ok {
		return r
	}
	if cr, ok := codeReasons[code]; ok && cr.reason != connector.ReasonInvalidConfig {
		return cr.reason
	}
	return connector.ReasonProviderRejected
}
