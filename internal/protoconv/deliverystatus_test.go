package protoconv

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// TestDeliveryStatesMatchProto fails when the proto DeliveryState enum gains a value the table
// lacks, or the table names a state twice.
func TestDeliveryStatesMatchProto(t *testing.T) {
	seen := map[connector.DeliveryState]bool{}
	for n := range smsv1.DeliveryState_name {
		p := smsv1.DeliveryState(n)
		if p == smsv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED {
			continue
		}
		s := DeliveryStateFromProto(p)
		if seen[s] {
			t.Errorf("%s maps to %s, which another value maps to too", p, s)
		}
		seen[s] = true
		if back := DeliveryStateToProto(s); back != p {
			t.Errorf("%s -> %s -> %s", p, s, back)
		}
		if want := strings.TrimPrefix(p.String(), "DELIVERY_STATE_"); string(s) != want {
			t.Errorf("%s maps to %q, want %q", p, s, want)
		}
	}
	if len(seen) != len(deliveryStates) {
		t.Errorf("the proto has %d states, the table %d", len(seen), len(deliveryStates))
	}
}

func TestDeliveryStateEdges(t *testing.T) {
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"empty state is UNKNOWN on the wire", DeliveryStateToProto(""), smsv1.DeliveryState_DELIVERY_STATE_UNKNOWN},
		{"unknown word is UNKNOWN on the wire", DeliveryStateToProto("LOST"), smsv1.DeliveryState_DELIVERY_STATE_UNKNOWN},
		{"UNSPECIFIED reads as unknown", DeliveryStateFromProto(smsv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED), connector.DeliveryUnknown},
		{"a newer number reads as unknown", DeliveryStateFromProto(99), connector.DeliveryUnknown},
		{"no reason", ReasonToProto(""), smsv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
		{"a reason the contract lacks", ReasonToProto("NO_SUCH_REASON"), smsv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
		{"a reason", ReasonToProto(connector.ReasonRecipientUnreachable), smsv1.ErrorReason_ERROR_REASON_RECIPIENT_UNREACHABLE},
		{"UNSPECIFIED reads as no reason", ReasonFromProto(smsv1.ErrorReason_ERROR_REASON_UNSPECIFIED), connector.Reason("")},
		{"a newer reason number reads as no reason", ReasonFromProto(999), connector.Reason("")},
		{"a reason back", ReasonFromProto(smsv1.ErrorReason_ERROR_REASON_MESSAGE_NOT_FOUND), connector.ReasonMessageNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestMessageStatusRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   connector.MessageStatus
	}{
		{"undelivered with everything", connector.MessageStatus{
			MessageID: "SM0123456789abcdef0123456789abcdef", State: connector.DeliveryUndelivered,
			VendorStatus: "undelivered", Reason: connector.ReasonRecipientUnreachable, VendorCode: "30003",
			UpdatedAt: time.Date(2025, 3, 4, 5, 6, 7, 8000, time.UTC), Segments: 2, Price: "-0.01500", PriceUnit: "USD"}},
		{"queued, nothing reported yet", connector.MessageStatus{MessageID: "SMx", State: connector.DeliveryQueued, VendorStatus: "queued"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MessageStatusToProto(&tt.in)
			if p.GetState() == smsv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED {
				t.Errorf("state on the wire is UNSPECIFIED")
			}
			if tt.in.UpdatedAt.IsZero() != (p.GetUpdateTime() == nil) {
				t.Errorf("update_time %v for UpdatedAt %v", p.GetUpdateTime(), tt.in.UpdatedAt)
			}
			got := MessageStatusFromProto(p)
			if !reflect.DeepEqual(*got, tt.in) {
				t.Errorf("round trip:\n got %+v\nwant %+v", *got, tt.in)
			}
		})
	}
}

func TestMessageStatusToProtoDropsRecipientAndClampsSegments(t *testing.T) {
	p := MessageStatusToProto(&connector.MessageStatus{MessageID: "SMx", To: "+14155550123", State: connector.DeliverySent, Segments: -3})
	if strings.Contains(p.String(), "4155550123") {
		t.Errorf("the recipient crossed the wire: %v", p)
	}
	if p.GetSegments() != 0 {
		t.Errorf("segments %d, want 0", p.GetSegments())
	}
}

func TestCheckMessageID(t *testing.T) {
	tests := []struct {
		id   string
		want string // substring of the violation's description; "" for valid
	}{
		{"SM0123456789abcdef0123456789abcdef", ""},
		{strings.Repeat("a", MaxMessageIDLength), ""},
		{"", "is required"},
		{strings.Repeat("a", MaxMessageIDLength+1), "at most 128"},
		{"SM 1", "visible ASCII"},
		{"SM\n1", "visible ASCII"},
		{"SMé", "visible ASCII"},
		{"SM\u200b", "visible ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := CheckMessageID(tt.id)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckMessageID: %v", err)
				}
				return
			}
			var ce *connector.Error
			if !errors.As(err, &ce) {
				t.Fatalf("CheckMessageID = %v, want a *connector.Error", err)
			}
			if ce.Reason != connector.ReasonInvalidRequest || len(ce.Violations) != 1 || ce.Violations[0].Field != "message_id" ||
				!strings.Contains(ce.Violations[0].Description, tt.want) {
				t.Errorf("CheckMessageID = %+v, want INVALID_REQUEST on message_id with %q", ce, tt.want)
			}
		})
	}
}
