package guard_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/console"
	"github.com/sms-connector/sms-connector/connector/guard"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// TestDeliveryFeedbackSimulation runs three hours, minute by minute, of a bot pumping SMS to
// numbers that never deliver, next to legitimate users whose messages mostly arrive. The
// guard wraps the console connector (the vendor stand-in); each minute the outcomes of the
// previous minute's messages come back through ObserveDelivery, every one of them twice (a
// status feed replays). The prefix window allows 100 per range per hour, so what stops the
// attack is the delivery feedback (default thresholds: 20 outcomes, more than 80%
// undelivered, one hour's cool-down).
func TestDeliveryFeedbackSimulation(t *testing.T) {
	const (
		minutes      = 180
		attackPerMin = 10
		legitRanges  = 5
	)
	policy := guard.DefaultPolicy()
	policy.Prefix = []guard.Limit{{Max: 100, Window: time.Hour}}
	policy.Global = guard.Limit{Max: 100_000, Window: time.Hour}
	// Attack sends: minutes 0 and 1 (20 outcomes trip the range at minute 2), then one
	// minute's batch after each cool-down (minutes 62 and 123), whose first outcome trips the
	// range again while the window still holds the earlier failures.
	const wantAttackWithFeedback = 4 * attackPerMin

	tests := []struct {
		name       string
		feedback   func(*guard.DeliveryFeedback)
		attackTo   func(i int) string // the i-th attacked number
		legitTo    func(r, u int) string
		wantAttack int
		wantTrips  int
		wantScope  string
	}{
		{
			name:     "one range, feedback per range (the default)",
			feedback: func(*guard.DeliveryFeedback) {},
			// +44 7400 12xxxx: sequential UK mobile numbers of one range.
			attackTo: func(i int) string { return fmt.Sprintf("+44740012%04d", i) },
			// Neighbouring UK mobile ranges: the same country, other ranges.
			legitTo:    func(r, u int) string { return fmt.Sprintf("+4474001%d%04d", 3+r, u) },
			wantAttack: wantAttackWithFeedback,
			wantTrips:  3,
			wantScope:  guard.ScopeRange,
		},
		{
			name:       "one range, feedback off",
			feedback:   func(f *guard.DeliveryFeedback) { f.PerRange = false },
			attackTo:   func(i int) string { return fmt.Sprintf("+44740012%04d", i) },
			legitTo:    func(r, u int) string { return fmt.Sprintf("+4474001%d%04d", 3+r, u) },
			wantAttack: 3 * 100, // only the prefix window: 100 per hour
		},
		{
			name:     "spread over ranges of one country, feedback per country",
			feedback: func(f *guard.DeliveryFeedback) { f.PerCountry = true },
			// +44 74xx xx0000: one number in each of many ranges, which no range's window sees.
			attackTo: func(i int) string { return fmt.Sprintf("+4474%04d0000", i) },
			// US users: another country.
			legitTo:    func(r, u int) string { return fmt.Sprintf("+1415%03d%04d", 200+r, u) },
			wantAttack: wantAttackWithFeedback,
			wantTrips:  3,
			wantScope:  guard.ScopeCountry,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy
			tt.feedback(&p.DeliveryFeedback)
			clk := testutil.NewClock()
			var (
				out   testutil.Buffer
				mu    sync.Mutex
				trips []guard.DeliveryTrip
			)
			g, err := guard.New(console.New(console.Options{Writer: &out}), guard.Options{Policy: p, Now: clk.Now,
				OnTrip: func(tr guard.DeliveryTrip) { mu.Lock(); trips = append(trips, tr); mu.Unlock() }})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			cfg := console.DefaultConfig()
			send := func(to, ip string) (*connector.Receipt, error) {
				return g.Send(ctx, &connector.Message{To: to, UsageType: connector.UsageSignIn,
					Payload: connector.Payload{Code: "123456"}, Config: cfg, ClientIP: ip})
			}

			var pending []*connector.MessageStatus // the outcomes of the last minute's messages
			var attackSent, legitSent, legitTries, attackHour2 int
			refusals := map[string]int{}
			nAttack, nLegit := 0, 0
			for minute := range minutes {
				for _, st := range pending {
					for range 2 { // every outcome is reported twice
						if err := g.ObserveDelivery(ctx, st); err != nil {
							t.Fatalf("minute %d: ObserveDelivery: %v", minute, err)
						}
					}
				}
				pending = pending[:0]
				for range attackPerMin {
					to := tt.attackTo(nAttack)
					r, err := send(to, fmt.Sprintf("203.0.113.%d", nAttack%250+1))
					nAttack++
					if err != nil {
						var e *connector.Error
						if !errors.As(err, &e) || e.Reason != connector.ReasonRateLimited || e.RetryAfter <= 0 || e.RetryAfter > time.Hour {
							t.Fatalf("minute %d: attack refused with %v, want RATE_LIMITED with RetryAfter", minute, err)
						}
						if strings.Contains(e.Message, strings.TrimPrefix(to, "+")) {
							t.Fatalf("refusal carries the number: %q", e.Message)
						}
						refusals[e.Message[:strings.Index(e.Message, ":")]]++
						continue
					}
					attackSent++
					if minute >= 60 && minute < 120 {
						attackHour2++
					}
					pending = append(pending, &connector.MessageStatus{MessageID: r.MessageID, To: to, State: connector.DeliveryUndelivered,
						VendorStatus: "undelivered", Reason: connector.ReasonRecipientUnreachable, VendorCode: "30003"})
				}
				for rg := range legitRanges {
					to := tt.legitTo(rg, nLegit)
					legitTries++
					r, err := send(to, fmt.Sprintf("198.51.100.%d", nLegit%250+1))
					nLegit++
					if err != nil {
						t.Fatalf("minute %d: a legitimate send was refused: %v", minute, err)
					}
					legitSent++
					st := &connector.MessageStatus{MessageID: r.MessageID, To: to, State: connector.DeliveryDelivered, VendorStatus: "delivered"}
					if nLegit%10 == 0 { // one in ten never arrives
						st.State, st.VendorStatus, st.Reason, st.VendorCode = connector.DeliveryUndelivered, "undelivered", connector.ReasonRecipientUnreachable, "30005"
					}
					pending = append(pending, st)
				}
				clk.Advance(time.Minute)
			}

			t.Logf("attack: %d of %d sent; legitimate: %d of %d sent; trips %+v", attackSent, nAttack, legitSent, legitTries, trips)
			for m, n := range refusals {
				t.Logf("%5d × %s", n, m)
			}
			if written := strings.Count(out.String(), "\n"); written != attackSent+legitSent {
				t.Errorf("the vendor got %d messages, receipts say %d", written, attackSent+legitSent)
			}
			if attackSent != tt.wantAttack {
				t.Errorf("%d attack messages reached the vendor, want %d", attackSent, tt.wantAttack)
			}
			if legitSent != legitTries {
				t.Errorf("%d of %d legitimate messages went through", legitSent, legitTries)
			}
			if len(trips) != tt.wantTrips {
				t.Fatalf("%d trips, want %d: %+v", len(trips), tt.wantTrips, trips)
			}
			if tt.wantTrips > 0 && trips[0].Outcomes != p.DeliveryFeedback.MinOutcomes {
				t.Errorf("first trip after %d outcomes, want %d: a replayed outcome counted twice?", trips[0].Outcomes, p.DeliveryFeedback.MinOutcomes)
			}
			for _, tr := range trips {
				if tr.Scope != tt.wantScope || tr.Country != "GB" || tr.Cooldown != time.Hour || tr.Undelivered*10 <= tr.Outcomes*8 {
					t.Errorf("trip %+v, want scope %s in GB for 1h, over 80%% undelivered", tr, tt.wantScope)
				}
			}
			if tt.wantTrips > 0 && attackHour2 == 0 {
				t.Error("the attacked scope was never let through again after its cool-down")
			}
		})
	}
}
