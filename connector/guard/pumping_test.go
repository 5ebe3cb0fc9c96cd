package guard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/console"
	"github.com/sms-connector/sms-connector/connector/guard"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// frozenClock never moves: the whole simulation happens within one instant, inside every
// window, which is the attacker's best case.
func frozenClock() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// written returns the recipients of the messages the console connector wrote to out.
func written(t *testing.T, out *testutil.Buffer) []string {
	t.Helper()
	var to []string
	for line := range strings.Lines(out.String()) {
		var e console.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("a line the console connector wrote: %v", err)
		}
		to = append(to, e.To)
	}
	return to
}

// tally counts the outcomes of sends, by reason ("" for sent).
type tally struct {
	mu       sync.Mutex
	outcomes map[connector.Reason]int
	messages map[string]int // refusal messages, for the report
}

func (c *tally) add(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outcomes == nil {
		c.outcomes, c.messages = map[connector.Reason]int{}, map[string]int{}
	}
	if err == nil {
		c.outcomes[""]++
		return
	}
	var e *connector.Error
	if !errors.As(err, &e) {
		e = &connector.Error{Reason: connector.ReasonInternal, Message: err.Error()}
	}
	c.outcomes[e.Reason]++
	if i := strings.Index(e.Message, "retry in"); i > 0 { // group messages that differ by delay only
		c.messages[e.Message[:i]]++
	} else {
		c.messages[e.Message]++
	}
}

// TestPumpingSimulation sends 10,000 requests from 50 IP addresses to sequential numbers through
// the guard, wrapped around the console connector (the vendor stand-in), while 100
// legitimate users elsewhere sign in at the same time; then counts what reached the vendor.
func TestPumpingSimulation(t *testing.T) {
	const (
		attacks    = 10_000
		attackIPs  = 50
		legitUsers = 100
		budget     = 200
	)
	policy := guard.DefaultPolicy() // prefix windows: 10 per hour, 50 per day, last 4 digits
	policy.Global = guard.Limit{Max: budget, Window: time.Hour}
	prefixMax := policy.Prefix[0].Max

	tests := []struct {
		name       string
		number     func(i int) string // the i-th attacked number
		numberType phonenumbers.PhoneNumberType
		wantSent   int                      // attack messages that reach the vendor
		wantReason map[connector.Reason]int // how the attack's requests end
		legitFlows bool                     // every legitimate send goes through
	}{
		{
			// +44 7400 12xxxx: UK mobile numbers, one range of 10,000 (+44740012 + 4 digits).
			name:       "one mobile range",
			number:     func(i int) string { return fmt.Sprintf("+44740012%04d", i) },
			numberType: phonenumbers.MOBILE,
			wantSent:   prefixMax,
			wantReason: map[connector.Reason]int{"": prefixMax, connector.ReasonRateLimited: attacks - prefixMax},
			legitFlows: true,
		},
		{
			// +44 909 879xxxx: UK premium-rate numbers, the toll-fraud classic.
			name:       "one premium-rate range",
			number:     func(i int) string { return fmt.Sprintf("+44909879%04d", i) },
			numberType: phonenumbers.PREMIUM_RATE,
			wantSent:   0,
			wantReason: map[connector.Reason]int{connector.ReasonCountryNotPermitted: attacks},
			legitFlows: true,
		},
		{
			// +44 901 23xxxxxx: UK premium-rate prefixes with a digit too many, which have no
			// number type to deny, and which networks routing by prefix may still deliver.
			name:       "over-long premium-rate numbers",
			number:     func(i int) string { return fmt.Sprintf("+4490123%06d", i) },
			numberType: phonenumbers.UNKNOWN,
			wantSent:   0,
			wantReason: map[connector.Reason]int{connector.ReasonInvalidPhoneNumber: attacks},
			legitFlows: true,
		},
		{
			// +44 74xx xx0000: one number in each of 10,000 mobile ranges, which no prefix
			// window sees: the global budget stops it, and its breaker then stops everyone.
			name:       "spread over 10,000 mobile ranges",
			number:     func(i int) string { return fmt.Sprintf("+4474%04d0000", i) },
			numberType: phonenumbers.MOBILE,
			wantSent:   -1, // budget minus the legitimate sends that got in first
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, i := range []int{0, 1, attacks / 2, attacks - 1} {
				n, err := phonenumbers.Parse(tt.number(i), "")
				if err != nil || phonenumbers.GetNumberType(n) != tt.numberType {
					t.Fatalf("%s is not of the type the scenario needs", tt.number(i))
				}
			}
			var out testutil.Buffer
			g, err := guard.New(console.New(console.Options{Writer: &out}), guard.Options{Policy: policy, Now: frozenClock})
			if err != nil {
				t.Fatal(err)
			}
			cfg := console.DefaultConfig()
			send := func(to, ip string) error {
				_, err := g.Send(context.Background(), &connector.Message{
					To: to, UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "123456"},
					Config: cfg, ClientIP: ip,
				})
				return err
			}

			var attack, legit tally
			var wg sync.WaitGroup
			for w := range attackIPs {
				wg.Go(func() {
					ip := fmt.Sprintf("203.0.113.%d", w+1)
					for i := w; i < attacks; i += attackIPs {
						attack.add(send(tt.number(i), ip))
					}
				})
			}
			for w := range 10 {
				wg.Go(func() {
					for u := w; u < legitUsers; u += 10 {
						// US numbers in 100 different ranges, each user on their own address.
						legit.add(send(fmt.Sprintf("+1415%03d0123", 200+u), fmt.Sprintf("198.51.100.%d", u+1)))
					}
				})
			}
			wg.Wait()

			msgs := written(t, &out)
			attackSent, legitSent := 0, 0
			for _, to := range msgs {
				if strings.HasPrefix(to, "+1415") {
					legitSent++
				} else {
					attackSent++
				}
			}
			t.Logf("the vendor got %d attack and %d legitimate messages; attack outcomes %v; legitimate %v",
				attackSent, legitSent, attack.outcomes, legit.outcomes)
			for m, n := range attack.messages {
				t.Logf("%5d × %s", n, m)
			}
			if len(msgs) > budget {
				t.Errorf("the vendor got %d messages, over the budget of %d", len(msgs), budget)
			}
			if attack.outcomes[""] != attackSent || legit.outcomes[""] != legitSent {
				t.Errorf("receipts (%d attack, %d legitimate) do not match the messages written", attack.outcomes[""], legit.outcomes[""])
			}
			if tt.legitFlows {
				if attackSent != tt.wantSent {
					t.Errorf("%d attack messages reached the vendor, want %d", attackSent, tt.wantSent)
				}
				for r, n := range tt.wantReason {
					if attack.outcomes[r] != n {
						t.Errorf("attack outcome %q: %d, want %d (all: %v)", r, attack.outcomes[r], n, attack.outcomes)
					}
				}
				if legitSent != legitUsers {
					t.Errorf("%d of %d legitimate messages went through (%v)", legitSent, legitUsers, legit.outcomes)
				}
				return
			}
			// Spread pumping: the budget is spent exactly, and the breaker refuses the rest.
			if len(msgs) != budget {
				t.Errorf("the vendor got %d messages, want the whole budget of %d", len(msgs), budget)
			}
			if attack.outcomes[connector.ReasonRateLimited] != attacks-attackSent {
				t.Errorf("attack outcomes %v", attack.outcomes)
			}
			tripped := false
			for m := range attack.messages {
				tripped = tripped || strings.Contains(m, "breaker is open")
			}
			if !tripped {
				t.Errorf("the breaker never tripped")
			}
			if err := send("+33612345678", "192.0.2.200"); connector.ReasonOf(err) != connector.ReasonRateLimited {
				t.Errorf("a send after the breaker tripped: %v, want RATE_LIMITED", err)
			}
		})
	}
}

// TestTwilioMagicNumbersPassDefaultPolicy: every test number of the emulator (and of Twilio's
// test credentials) is a valid number to libphonenumber, so the default policy, which refuses
// invalid numbers, lets each reach the vendor (here the console connector).
func TestTwilioMagicNumbersPassDefaultPolicy(t *testing.T) {
	var out testutil.Buffer
	g, err := guard.New(console.New(console.Options{Writer: &out}), guard.Options{Policy: guard.DefaultPolicy(), Now: frozenClock})
	if err != nil {
		t.Fatal(err)
	}
	cfg := console.DefaultConfig()
	numbers := []string{twiliotest.FromValid, twiliotest.ToInvalid, twiliotest.ToUnreachable, twiliotest.ToNoGeoPermission,
		twiliotest.ToOptedOut, twiliotest.ToNotMobile, twiliotest.ToLandline}
	for _, to := range numbers {
		if _, err := g.Send(context.Background(), &connector.Message{
			To: to, UsageType: connector.UsageSignIn, Payload: connector.Payload{Code: "123456"}, Config: cfg,
		}); err != nil {
			t.Errorf("%s: the guard refused it: %v", to, err)
		}
	}
	if got := written(t, &out); !slices.Equal(got, numbers) {
		t.Errorf("the vendor got %v, want %v", got, numbers)
	}
}
