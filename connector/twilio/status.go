package twilio

import (
	"github.com/sms-connector/sms-connector/connector"
)

// StateOf maps a Twilio message status word (the MessageStatus of a status callback, the
// status of a fetched Message) to the contract's delivery state. A word it does not know, or
// one of an inbound message, is DeliveryUnknown.
func StateOf(status string) connector.DeliveryState {
	switch status {
	case "accepted", "scheduled", "queued":
		return connector.DeliveryQueued
	case "sending":
		return connector.DeliverySending
	case "sent", "partially_delivered":
		return connector.DeliverySent
	case "delivered", "read":
		return connector.DeliveryDelivered
	case "undelivered":
		return connector.DeliveryUndelivered
	case "failed", "canceled":
		return connector.DeliveryFailed
	}
	return connector.DeliveryUnknown
}

// deliveryReasons maps the Twilio error codes of undelivered and failed messages (the 30xxx
// family) to reasons.
var deliveryReasons = map[int]connector.Reason{
	30001: connector.ReasonProviderQueueFull,    // queue overflow
	30002: connector.ReasonProviderAuthFailed,   // account suspended
	30003: connector.ReasonRecipientUnreachable, // unreachable destination handset
	30004: connector.ReasonProviderRejected,     // message blocked
	30005: connector.ReasonInvalidPhoneNumber,   // unknown destination handset
	30006: connector.ReasonRecipientNotMobile,   // landline or unreachable carrier
	30007: connector.ReasonProviderRejected,     // message filtered by the carrier
	30008: connector.ReasonRecipientUnreachable, // unknown error from the carrier
	30009: connector.ReasonRecipientUnreachable, // missing segment
	30010: connector.ReasonProviderRejected,     // message price exceeds the max price
	30034: connector.ReasonProviderRejected,     // US A2P 10DLC: sender not registered
	30410: connector.ReasonProviderTimeout,      // the carrier timed out
	30450: connector.ReasonProviderRejected,     // blocked by Twilio's SMS pumping protection
	21610: connector.ReasonRecipientOptedOut,    // the recipient replied STOP
	21408: connector.ReasonCountryNotPermitted,  // Geo Permissions
	21612: connector.ReasonRecipientUnreachable, // not reachable from this sender
	21614: connector.ReasonRecipientNotMobile,   // not a mobile number
	21635: connector.ReasonRecipientNotMobile,   // a landline
	21211: connector.ReasonInvalidPhoneNumber,   // invalid To
	20003: connector.ReasonProviderAuthFailed,   // credentials
	20429: connector.ReasonProviderRateLimited,  // throttled
}

// ReasonOf maps the Twilio error code of an undelivered or failed message to the contract's
// error reason: "" for 0 (no error), PROVIDER_REJECTED for a code it does not know (the message
// did not arrive and Twilio said why in a code only its documentation explains).
func ReasonOf(code int) connector.Reason {
	if code == 0 {
		return ""
	}
	if r, ok := deliveryReasons[code]; ok {
		return r
	}
	return connector.ReasonProviderRejected
}
