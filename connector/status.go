package connector

import (
	"context"
	"encoding/json"
	"time"
)

// DeliveryState is how far a sent message got on its way to the phone, in words every vendor's
// statuses map onto, so that a platform can tell "queued" from "delivered" from "never
// arrived" whatever the vendor.
type DeliveryState string

// Delivery states, in the order a message goes through them.
const (
	// DeliveryUnknown: the vendor reported nothing this contract can name.
	DeliveryUnknown DeliveryState = "UNKNOWN"
	// DeliveryQueued: the vendor accepted the message and has not sent it yet.
	DeliveryQueued DeliveryState = "QUEUED"
	// DeliverySending: the vendor is handing the message to a carrier.
	DeliverySending DeliveryState = "SENDING"
	// DeliverySent: a carrier took the message; no receipt from the phone yet.
	DeliverySent DeliveryState = "SENT"
	// DeliveryDelivered: the carrier reported the message delivered to the phone. Final.
	DeliveryDelivered DeliveryState = "DELIVERED"
	// DeliveryUndelivered: the carrier could not deliver the message. Final.
	DeliveryUndelivered DeliveryState = "UNDELIVERED"
	// DeliveryFailed: the vendor could not send the message at all. Final.
	DeliveryFailed DeliveryState = "FAILED"
)

// Final reports whether no later state follows s: delivered, undelivered or failed.
func (s DeliveryState) Final() bool {
	return s == DeliveryDelivered || s == DeliveryUndelivered || s == DeliveryFailed
}

// Rank orders the states along a message's life: unknown, queued, sending, sent, then the
// final ones. Status reports arrive out of order and more than once; one whose state ranks
// below the state already known is old news, and a known state never goes back.
func (s DeliveryState) Rank() int {
	switch s {
	case DeliveryQueued:
		return 1
	case DeliverySending:
		return 2
	case DeliverySent:
		return 3
	case DeliveryDelivered, DeliveryUndelivered, DeliveryFailed:
		return 4
	}
	return 0
}

// MessageStatus is what is known of a sent message's delivery.
type MessageStatus struct {
	// MessageID is the vendor's id of the message, as SendMessage's Receipt gave it.
	MessageID string
	// To is the recipient in E.164 form, when the vendor reports it (for the abuse guard's
	// delivery feedback); like every phone number, it is never logged unmasked.
	To string
	// State is where the message is, in the contract's words.
	State DeliveryState
	// VendorStatus is the vendor's own status word ("delivered", "undelivered").
	VendorStatus string
	// Reason says why, for UNDELIVERED and FAILED, in the contract's error vocabulary
	// (RECIPIENT_UNREACHABLE, RECIPIENT_OPTED_OUT, ...); empty otherwise.
	Reason Reason
	// VendorCode is the vendor's error code for UNDELIVERED and FAILED (Twilio "30003").
	VendorCode string
	// UpdatedAt is when the state last changed, as the vendor reported it.
	UpdatedAt time.Time
	// Segments is how many SMS segments the vendor billed, 0 when not reported.
	Segments int
	// Price is what the vendor charged, as the decimal text it reports ("-0.0075"), and
	// PriceUnit its currency ("USD"); both empty when not reported.
	Price, PriceUnit string
}

// StatusReader is implemented by a connector that can tell a sent message's delivery status.
// A connector that cannot does not implement it; callers then answer NOT_SUPPORTED.
type StatusReader interface {
	// MessageStatus returns what is known of the message messageID, sent with config (empty
	// for the connector's default), or a *Error: MESSAGE_NOT_FOUND for an id the vendor does
	// not know, and the vendor's failures as for Send.
	MessageStatus(ctx context.Context, messageID string, config json.RawMessage) (*MessageStatus, error)
}

// ReadStatus asks c for a message's status when c is a StatusReader, and answers NOT_SUPPORTED
// otherwise.
func ReadStatus(ctx context.Context, c SmsConnector, messageID string, config json.RawMessage) (*MessageStatus, error) {
	r, ok := c.(StatusReader)
	if !ok {
		return nil, Errorf(ReasonNotSupported, "this connector cannot tell a message's delivery status")
	}
	return r.MessageStatus(ctx, messageID, config)
}
