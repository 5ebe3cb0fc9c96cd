package protoconv

import (
	"fmt"
	"math"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// MaxMessageIDLength bounds GetMessageStatusRequest.message_id, as the proto documents.
const MaxMessageIDLength = 128

// deliveryStates pairs each proto DeliveryState with its connector twin; the one table both
// directions use.
var deliveryStates = []struct {
	proto smsv1.DeliveryState
	state connector.DeliveryState
}{
	{smsv1.DeliveryState_DELIVERY_STATE_UNKNOWN, connector.DeliveryUnknown},
	{smsv1.DeliveryState_DELIVERY_STATE_QUEUED, connector.DeliveryQueued},
	{smsv1.DeliveryState_DELIVERY_STATE_SENDING, connector.DeliverySending},
	{smsv1.DeliveryState_DELIVERY_STATE_SENT, connector.DeliverySent},
	{smsv1.DeliveryState_DELIVERY_STATE_DELIVERED, connector.DeliveryDelivered},
	{smsv1.DeliveryState_DELIVERY_STATE_UNDELIVERED, connector.DeliveryUndelivered},
	{smsv1.DeliveryState_DELIVERY_STATE_FAILED, connector.DeliveryFailed},
}

// DeliveryStateToProto returns the proto value of s; a state the table lacks (the empty one
// included) is UNKNOWN, so a response never carries UNSPECIFIED.
func DeliveryStateToProto(s connector.DeliveryState) smsv1.DeliveryState {
	for _, d := range deliveryStates {
		if d.state == s {
			return d.proto
		}
	}
	return smsv1.DeliveryState_DELIVERY_STATE_UNKNOWN
}

// DeliveryStateFromProto returns the connector state of s; UNSPECIFIED and numbers the table
// lacks (a newer server's) are DeliveryUnknown.
func DeliveryStateFromProto(s smsv1.DeliveryState) connector.DeliveryState {
	for _, d := range deliveryStates {
		if d.proto == s {
			return d.state
		}
	}
	return connector.DeliveryUnknown
}

// reasonPrefix is what the proto ErrorReason value names add to a connector.Reason.
const reasonPrefix = "ERROR_REASON_"

// ReasonToProto returns the proto ErrorReason of r: UNSPECIFIED for "" and for a reason the
// contract does not know.
func ReasonToProto(r connector.Reason) smsv1.ErrorReason {
	if r == "" {
		return smsv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
	return smsv1.ErrorReason(smsv1.ErrorReason_value[reasonPrefix+string(r)])
}

// ReasonFromProto returns the connector.Reason of r: "" for UNSPECIFIED and for a number this
// build does not know.
func ReasonFromProto(r smsv1.ErrorReason) connector.Reason {
	name, ok := smsv1.ErrorReason_name[int32(r)]
	if !ok || r == smsv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		return ""
	}
	return connector.Reason(strings.TrimPrefix(name, reasonPrefix))
}

// MessageStatusToProto converts a connector's status report. The recipient is not part of the
// contract's MessageStatus and is dropped; a zero UpdatedAt is sent as no update_time.
func MessageStatusToProto(s *connector.MessageStatus) *smsv1.MessageStatus {
	segments := s.Segments
	if segments > math.MaxInt32 {
		segments = math.MaxInt32
	}
	if segments < 0 {
		segments = 0
	}
	out := &smsv1.MessageStatus{
		MessageId:    s.MessageID,
		State:        DeliveryStateToProto(s.State),
		VendorStatus: s.VendorStatus,
		ErrorReason:  ReasonToProto(s.Reason),
		VendorCode:   s.VendorCode,
		Segments:     int32(segments),
		Price:        s.Price,
		PriceUnit:    s.PriceUnit,
	}
	if !s.UpdatedAt.IsZero() {
		out.UpdateTime = timestamppb.New(s.UpdatedAt)
	}
	return out
}

// MessageStatusFromProto converts a MessageStatus back into the connector's form; an absent
// update_time is a zero UpdatedAt.
func MessageStatusFromProto(m *smsv1.MessageStatus) *connector.MessageStatus {
	s := &connector.MessageStatus{
		MessageID:    m.GetMessageId(),
		State:        DeliveryStateFromProto(m.GetState()),
		VendorStatus: m.GetVendorStatus(),
		Reason:       ReasonFromProto(m.GetErrorReason()),
		VendorCode:   m.GetVendorCode(),
		Segments:     int(m.GetSegments()),
		Price:        m.GetPrice(),
		PriceUnit:    m.GetPriceUnit(),
	}
	if m.GetUpdateTime() != nil {
		s.UpdatedAt = m.GetUpdateTime().AsTime()
	}
	return s
}

// CheckMessageID validates a message id that came in a request: required, at most
// MaxMessageIDLength characters, each visible ASCII (a vendor's ids are; this also keeps the
// id safe to log). A problem is an INVALID_REQUEST *connector.Error naming message_id.
func CheckMessageID(id string) error {
	var desc string
	switch {
	case id == "":
		desc = "is required: the message_id SendMessage returned"
	case len(id) > MaxMessageIDLength:
		desc = fmt.Sprintf("is %d bytes long; at most %d are allowed", len(id), MaxMessageIDLength)
	case strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }):
		desc = "must be visible ASCII characters only (no spaces, control or non-ASCII characters)"
	default:
		return nil
	}
	return connector.ViolationsError(connector.ReasonInvalidRequest, connector.RequestSubject,
		[]connector.Violation{{Field: "message_id", Description: desc}})
}
