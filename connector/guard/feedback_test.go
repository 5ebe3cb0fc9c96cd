package guard

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
)

// feedbackPolicy trips a range or a country after 2 outcomes over half undelivered, for 10
// minutes.
func feedbackPolicy(perRange, perCountry bool) Policy {
	p := open()
	p.DeliveryFeedback = DeliveryFeedback{PerRange: perRange, PerCountry: perCountry, Window: time.Hour,
		MinOutcomes: 2, MaxUndeliveredShare: 0.5, Cooldown: 10 * time.Minute}
	return p
}

// status is a final status of message id to to.
func status(id, to string, state connector.DeliveryState, reason connector.Reason) *connector.MessageStatus {
	return &connector.MessageStatus{MessageID: id, To: to, State: state, Reason: reason}
}

func TestObserveDeliveryCounts(t *testing.T) {
	const sameRange, otherRange = "+447400123999", "+447400990000"
	und, del := connector.DeliveryUndelivered, connector.DeliveryDelivered
	tests := []struct {
		name     string
		statuses []*connector.MessageStatus
		tripped  bool
	}{
		{"two undelivered trip", []*connector.MessageStatus{
			status("m1", ukMobile, und, connector.ReasonRecipientUnreachable),
			status("m2", sameRange, connector.DeliveryFailed, ""),
		}, true},
		{"formatting of the number does not matter", []*connector.MessageStatus{
			status("m1", "+44 7400 123456", und, ""),
			status("m2", ukMobile, und, ""),
		}, true},
		{"a replay counts once", []*connector.MessageStatus{
			status("m1", ukMobile, und, ""),
			status("m1", ukMobile, und, ""),
		}, false},
		{"not final: ignored", []*connector.MessageStatus{
			status("m1", ukMobile, und, ""),
			status("m2", ukMobile, connector.DeliverySent, ""),
			status("m3", ukMobile, connector.DeliveryQueued, ""),
			nil,
		}, false},
		{"the vendor's fault: ignored", []*connector.MessageStatus{
			status("m1", ukMobile, und, ""),
			status("m2", ukMobile, connector.DeliveryFailed, connector.ReasonProviderQueueFull),
			status("m3", ukMobile, connector.DeliveryFailed, connector.ReasonInvalidSender),
		}, false},
		{"a delivery keeps the share at the maximum", []*connector.MessageStatus{
			status("m1", ukMobile, und, ""),
			status("m2", sameRange, del, ""),
		}, false},
		{"another range counts apart", []*connector.MessageStatus{
			status("m1", ukMobile, und, ""),
			status("m2", otherRange, und, ""),
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var trips []DeliveryTrip
			g, next, clk := newGuard(t, Options{Policy: feedbackPolicy(true, false), OnTrip: func(tr DeliveryTrip) { trips = append(trips, tr) }})
			for _, st := range tt.statuses {
				if err := g.ObserveDelivery(context.Background(), st); err != nil {
					t.Fatal(err)
				}
			}
			_, err := g.Send(context.Background(), msg(ukMobile, ""))
			if !tt.tripped {
				if err != nil || len(trips) != 0 {
					t.Fatalf("send: %v, trips %+v; want it sent, no trip", err, trips)
				}
				return
			}
			e := refusal(t, err, ukMobile)
			if e.Reason != connector.ReasonRateLimited || e.RetryAfter != 10*time.Minute || next.Calls() != 0 ||
				!strings.Contains(e.Message, "range (+44…") || !strings.Contains(e.Message, "more than 50% of at least 2 messages there in the last 1h were not delivered") {
				t.Fatalf("send to a tripped range: %+v, %d sends; want RATE_LIMITED for 10m, nothing sent", e, next.Calls())
			}
			if len(trips) != 1 || trips[0] != (DeliveryTrip{Scope: ScopeRange, Country: "GB", Outcomes: 2, Undelivered: 2, Cooldown: 10 * time.Minute}) {
				t.Errorf("trips %+v", trips)
			}
			if _, err := g.Send(context.Background(), msg(otherRange, "")); err != nil {
				t.Errorf("another range: %v", err)
			}
			clk.Advance(4 * time.Minute)
			_, err = g.Send(context.Background(), msg(sameRange, ""))
			if e := refusal(t, err, sameRange); e.RetryAfter != 6*time.Minute {
				t.Errorf("4 minutes on: RetryAfter %v, want 6m", e.RetryAfter)
			}
			clk.Advance(6 * time.Minute)
			if _, err := g.Send(context.Background(), msg(ukMobile, "")); err != nil {
				t.Errorf("after the cool-down: %v", err)
			}
		})
	}
}

func TestObserveDeliveryPerCountry(t *testing.T) {
	g, _, _ := newGuard(t, Options{Policy: feedbackPolicy(false, true)})
	ctx := context.Background()
	for i, to := range []string{"+447400123456", "+447400550000"} { // two UK ranges
		if err := g.ObserveDelivery(ctx, status(string(rune('a'+i)), to, connector.DeliveryUndelivered, "")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := g.Send(ctx, msg("+447400990000", ""))
	if e := refusal(t, err, "+447400990000"); e.Reason != connector.ReasonRateLimited || !strings.Contains(e.Message, "SMS to region GB (+44) are paused") {
		t.Fatalf("a third UK range: %+v, want the country paused", e)
	}
	if _, err := g.Send(ctx, msg(usNumber, "")); err != nil {
		t.Errorf("another country: %v", err)
	}
}

func TestObserveDeliveryRefusesAndFails(t *testing.T) {
	ctx := context.Background()
	t.Run("off", func(t *testing.T) {
		g, _, _ := newGuard(t, Options{Policy: open()})
		if err := g.ObserveDelivery(ctx, status("", "", connector.DeliveryFailed, "")); err != nil {
			t.Errorf("feedback off: %v", err)
		}
	})
	g, _, _ := newGuard(t, Options{Policy: feedbackPolicy(true, true)})
	for _, st := range []*connector.MessageStatus{
		status("", ukMobile, connector.DeliveryDelivered, ""),
		status("m1", "", connector.DeliveryUndelivered, ""),
	} {
		if err := g.ObserveDelivery(ctx, st); err == nil || !strings.Contains(err.Error(), "needs its message id and recipient") {
			t.Errorf("%+v: %v", st, err)
		}
	}
	if err := g.ObserveDelivery(ctx, status("m1", "not a number", connector.DeliveryUndelivered, "")); err != nil {
		t.Errorf("an unparsable recipient has no scope to count in: %v", err)
	}
	storeErr := errors.New("redis: connection refused")
	s := &recordingStore{MemoryStore: NewMemoryStore(MemoryOptions{}), err: storeErr}
	var told []error
	g, _, _ = newGuard(t, Options{Policy: feedbackPolicy(true, false), Store: s, FailOpen: true, OnStoreError: func(err error) { told = append(told, err) }})
	err := g.ObserveDelivery(ctx, status("m1", ukMobile, connector.DeliveryUndelivered, ""))
	if !errors.Is(err, storeErr) || len(told) != 1 || strings.Contains(err.Error(), "7400") {
		t.Errorf("store down: %v, told %v; want the store's error, told once, no number", err, told)
	}
}
