package connector

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// answering is a connector whose ValidateConfig and Metadata give fixed answers.
type answering struct {
	vs  []Violation
	md  *Metadata
	err error
}

func (a answering) Send(context.Context, *Message) (*Receipt, error) {
	return nil, errors.New("not used")
}
func (a answering) ValidateConfig(context.Context, json.RawMessage) ([]Violation, error) {
	return a.vs, a.err
}
func (a answering) Metadata(context.Context) (*Metadata, error) { return a.md, a.err }

func TestForward(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		next answering
	}{
		{"answers", answering{vs: []Violation{{Field: "from", Description: "is required"}}, md: &Metadata{ID: "x"}}},
		{"errors", answering{err: boom}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Forward{Next: tt.next}
			vs, err := f.ValidateConfig(context.Background(), json.RawMessage(`{}`))
			if len(vs) != len(tt.next.vs) || (len(vs) > 0 && vs[0] != tt.next.vs[0]) || !errors.Is(err, tt.next.err) {
				t.Errorf("ValidateConfig = %v, %v; want %v, %v", vs, err, tt.next.vs, tt.next.err)
			}
			md, err := f.Metadata(context.Background())
			if md != tt.next.md || !errors.Is(err, tt.next.err) {
				t.Errorf("Metadata = %v, %v; want %v, %v", md, err, tt.next.md, tt.next.err)
			}
		})
	}
}

// statusAnswering is an answering connector that can tell a message's status.
type statusAnswering struct {
	answering
	st *MessageStatus
}

func (s statusAnswering) MessageStatus(_ context.Context, id string, _ json.RawMessage) (*MessageStatus, error) {
	if id != s.st.MessageID {
		return nil, Errorf(ReasonMessageNotFound, "no such message")
	}
	return s.st, nil
}

// wrapper is a decorator that embeds Forward, as the SDK's defences do.
type wrapper struct{ Forward }

func (wrapper) Send(context.Context, *Message) (*Receipt, error) { return nil, errors.New("not used") }

// TestForwardMessageStatus: a wrapper passes a status through when the wrapped connector can
// tell one, and answers NOT_SUPPORTED when it cannot.
func TestForwardMessageStatus(t *testing.T) {
	st := &MessageStatus{MessageID: "SM1", State: DeliveryDelivered}
	tests := []struct {
		name   string
		next   SmsConnector
		id     string
		want   *MessageStatus
		reason Reason
	}{
		{"a reader", statusAnswering{st: st}, "SM1", st, ""},
		{"a reader, unknown id", statusAnswering{st: st}, "SM2", nil, ReasonMessageNotFound},
		{"not a reader", answering{}, "SM1", nil, ReasonNotSupported},
		{"a wrapper of a reader", wrapper{Forward{Next: statusAnswering{st: st}}}, "SM1", st, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Forward{Next: tt.next}.MessageStatus(context.Background(), tt.id, nil)
			if got != tt.want || (err == nil) != (tt.reason == "") || (err != nil && ReasonOf(err) != tt.reason) {
				t.Errorf("MessageStatus = %v, %v; want %v, reason %q", got, err, tt.want, tt.reason)
			}
		})
	}
}

func TestDeliveryStateOrder(t *testing.T) {
	order := []DeliveryState{DeliveryUnknown, DeliveryQueued, DeliverySending, DeliverySent, DeliveryDelivered}
	for i := 1; i < len(order); i++ {
		if order[i-1].Rank() >= order[i].Rank() {
			t.Errorf("%s ranks %d, not below %s's %d", order[i-1], order[i-1].Rank(), order[i], order[i].Rank())
		}
	}
	for _, s := range []DeliveryState{DeliveryDelivered, DeliveryUndelivered, DeliveryFailed} {
		if !s.Final() || s.Rank() != DeliveryDelivered.Rank() {
			t.Errorf("%s: Final %v, Rank %d", s, s.Final(), s.Rank())
		}
	}
	for _, s := range []DeliveryState{DeliveryUnknown, DeliveryQueued, DeliverySending, DeliverySent} {
		if s.Final() {
			t.Errorf("%s is final", s)
		}
	}
}
