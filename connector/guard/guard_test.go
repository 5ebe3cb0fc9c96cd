package guard

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// Numbers and how libphonenumber v1.8.1 classifies them.
const (
	usNumber      = "+14155550123"  // US, FIXED_LINE_OR_MOBILE
	caNumber      = "+12042345678"  // CA, FIXED_LINE_OR_MOBILE (NANP, +1)
	ukMobile      = "+447400123456" // GB, MOBILE
	ukPremium     = "+449098790000" // GB, PREMIUM_RATE
	ukFixed       = "+442079460000" // GB, FIXED_LINE
	deSharedCost  = "+491375123456" // DE, SHARED_COST
	frMobile      = "+33612345678"  // FR, MOBILE
	ngMobile      = "+2348031234567"
	intlNetwork   = "+8823451234567" // +882 international networks, VOIP
	ukDramaRange  = "+447700900123"  // Ofcom's range for drama: not a valid number
	twilioMagicTo = "+15005550006"   // US, PERSONAL_NUMBER
	deMobile      = "+4915123456789" // DE, MOBILE

	// Premium-rate numbers of the right length, PREMIUM_RATE, and the same prefixes with a
	// digit too many, which libphonenumber calls invalid (UNKNOWN type).
	usPremium        = "+19002345678"
	dePremium        = "+499001234567"
	ukPremium901     = "+449012345678"
	usPremiumTooLong = "+1900234567890"
	dePremiumTooLong = "+4990012345678"
	ukPremiumTooLong = "+4490123456789"
)

func TestDestinationPolicy(t *testing.T) {
	def := DefaultPolicy()
	def.Recipient, def.ClientIP, def.Prefix, def.Global = nil, nil, nil, Limit{}
	with := func(f func(*Policy)) Policy {
		p := def
		f(&p)
		return p
	}
	tests := []struct {
		name    string
		policy  Policy
		to      string
		reason  connector.Reason // "" when the send goes through
		message string           // a part of the refusal's message
	}{
		{"default: US", def, usNumber, "", ""},
		{"default: UK mobile", def, ukMobile, "", ""},
		{"default: French mobile", def, frMobile, "", ""},
		{"default: Twilio magic number", def, twilioMagicTo, "", ""},
		{"default: formatted number", def, "+44 7400 123456", "", ""},
		{"default: UK premium rate", def, ukPremium, connector.ReasonCountryNotPermitted, "premium-rate numbers (region GB (+44))"},
		{"default: UK fixed line", def, ukFixed, connector.ReasonCountryNotPermitted, "fixed-line numbers"},
		{"default: German shared cost", def, deSharedCost, connector.ReasonCountryNotPermitted, "shared-cost numbers"},
		{"default: +882 network", def, intlNetwork, connector.ReasonCountryNotPermitted, "calling code +882"},
		{"default: German mobile", def, deMobile, "", ""},
		{"default: US premium rate", def, usPremium, connector.ReasonCountryNotPermitted, "premium-rate numbers (region US (+1))"},
		{"default: German premium rate", def, dePremium, connector.ReasonCountryNotPermitted, "premium-rate numbers (region DE (+49))"},
		{"default: UK premium rate 901", def, ukPremium901, connector.ReasonCountryNotPermitted, "premium-rate numbers (region GB (+44))"},
		{"default: over-long US premium rate", def, usPremiumTooLong, connector.ReasonInvalidPhoneNumber, "not a valid phone number for calling code +1"},
		{"default: over-long German premium rate", def, dePremiumTooLong, connector.ReasonInvalidPhoneNumber, "not a valid phone number for region DE (+49)"},
		{"default: over-long UK premium rate", def, ukPremiumTooLong, connector.ReasonInvalidPhoneNumber, "not a valid phone number for calling code +44"},
		{"default: invalid number", def, ukDramaRange, connector.ReasonInvalidPhoneNumber, "not a valid phone number"},
		{"invalid numbers allowed: drama range passes", with(func(p *Policy) { p.RefuseInvalidNumbers = false }), ukDramaRange, "", ""},
		{"invalid numbers allowed: over-long premium rate passes", with(func(p *Policy) { p.RefuseInvalidNumbers = false }), ukPremiumTooLong, "", ""},
		{"invalid numbers allowed: premium rate still denied", with(func(p *Policy) { p.RefuseInvalidNumbers = false }), ukPremium901, connector.ReasonCountryNotPermitted, "premium-rate"},
		{"deny list answers before validity", with(func(p *Policy) { p.DenyCountries = []string{"+44"} }), ukPremiumTooLong, connector.ReasonCountryNotPermitted, "calling code +44"},
		{"deny region", with(func(p *Policy) { p.DenyCountries = []string{"ng"} }), ngMobile, connector.ReasonCountryNotPermitted, "region NG (+234)"},
		{"deny calling code", with(func(p *Policy) { p.DenyCountries = []string{"+44"} }), ukMobile, connector.ReasonCountryNotPermitted, "region GB (+44)"},
		{"allow US: US", with(func(p *Policy) { p.AllowCountries = []string{"US"} }), usNumber, "", ""},
		{"allow US: Canada", with(func(p *Policy) { p.AllowCountries = []string{"US"} }), caNumber, connector.ReasonCountryNotPermitted, "only to its allowed countries"},
		{"allow +1: Canada", with(func(p *Policy) { p.AllowCountries = []string{"+1"} }), caNumber, "", ""},
		{"allow +1, deny CA", with(func(p *Policy) { p.AllowCountries, p.DenyCountries = []string{"+1"}, []string{"CA"} }), caNumber, connector.ReasonCountryNotPermitted, "region CA"},
		{"allow GB: UK mobile", with(func(p *Policy) { p.AllowCountries = []string{"GB", "FR"} }), ukMobile, "", ""},
		{"allow GB: UK premium still denied by type", with(func(p *Policy) { p.AllowCountries = []string{"GB"} }), ukPremium, connector.ReasonCountryNotPermitted, "premium-rate"},
		{"allow GB: invalid +1 number", with(func(p *Policy) { p.AllowCountries = []string{"GB"} }), "+10005550123", connector.ReasonCountryNotPermitted, "calling code +1"},
		{"allow list: unparsable", with(func(p *Policy) { p.AllowCountries = []string{"GB"} }), "+999", connector.ReasonCountryNotPermitted, "unrecognised destination"},
		{"no type policy: fixed line", with(func(p *Policy) { p.DenyNumberTypes = nil }), ukFixed, "", ""},
		{"deny mobile", with(func(p *Policy) { p.DenyNumberTypes = []NumberType{Mobile} }), frMobile, connector.ReasonCountryNotPermitted, "mobile numbers"},
		{"FIXED_LINE does not catch FIXED_LINE_OR_MOBILE", with(func(p *Policy) { p.DenyNumberTypes = []NumberType{FixedLine} }), usNumber, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, next, _ := newGuard(t, Options{Policy: tt.policy})
			_, err := g.Send(context.Background(), msg(tt.to, "192.0.2.1"))
			if tt.reason == "" {
				if err != nil || next.Calls() != 1 {
					t.Fatalf("Send: %v, %d calls; want it sent", err, next.Calls())
				}
				return
			}
			e := refusal(t, err, tt.to)
			if e.Reason != tt.reason || e.RetryAfter != 0 || !strings.Contains(e.Message, tt.message) {
				t.Errorf("got %s (RetryAfter %v) %q, want %s containing %q", e.Reason, e.RetryAfter, e.Message, tt.reason, tt.message)
			}
			if next.Calls() != 0 {
				t.Errorf("the refused send reached the connector")
			}
			if tt.reason == connector.ReasonInvalidPhoneNumber && (len(e.Violations) != 1 || e.Violations[0].Field != "to") {
				t.Errorf("violations %v, want one of field \"to\"", e.Violations)
			}
		})
	}
}

// step is one send of a sequence, after the clock moved by advance.
type step struct {
	advance time.Duration
	to, ip  string
	retry   time.Duration // 0: sent; otherwise refused RATE_LIMITED with this RetryAfter
	message string        // a part of the refusal's message
}

// runSteps sends each step through g and checks the outcome.
func runSteps(t *testing.T, g *Guard, clk *testutil.Clock, steps []step) {
	t.Helper()
	for i, s := range steps {
		clk.Advance(s.advance)
		_, err := g.Send(context.Background(), msg(s.to, s.ip))
		if s.retry == 0 {
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			continue
		}
		e := refusal(t, err, s.to)
		if e.Reason != connector.ReasonRateLimited || e.RetryAfter != s.retry || !strings.Contains(e.Message, s.message) {
			t.Fatalf("step %d: got %s RetryAfter %v %q; want RATE_LIMITED RetryAfter %v with %q", i, e.Reason, e.RetryAfter, e.Message, s.retry, s.message)
		}
	}
}

func TestRateLimits(t *testing.T) {
	recipient := open()
	recipient.Recipient = DefaultPolicy().Recipient // 1 per 30s, 5 per hour
	ipPolicy := open()
	ipPolicy.ClientIP = []Limit{{2, time.Minute}}
	prefix := open()
	prefix.Prefix = []Limit{{3, time.Hour}}
	prefix.PrefixDigits = 2
	global := open()
	global.Global = Limit{3, time.Minute}

	tests := []struct {
		name   string
		policy Policy
		steps  []step
	}{
		{"per recipient", recipient, []step{
			{0, usNumber, "", 0, ""},
			{0, usNumber, "", 30 * time.Second, "to this recipient: the connector allows 1 per 30s; retry in 30s"},
			{10 * time.Second, usNumber, "", 20 * time.Second, "retry in 20s"},
			{0, frMobile, "", 0, ""}, // another recipient is not affected
			{20 * time.Second, usNumber, "", 0, ""},
			{30 * time.Second, usNumber, "", 0, ""},
			{30 * time.Second, "+1 (415) 555-0123", "", 0, ""}, // the same number, formatted
			{30 * time.Second, usNumber, "", 0, ""},            // 5th in the hour, at 2m
			{30 * time.Second, usNumber, "", time.Hour - 150*time.Second, "5 per 1h"},
			{time.Hour - 150*time.Second, usNumber, "", 0, ""}, // the first expired
		}},
		{"per client IP", ipPolicy, []step{
			{0, usNumber, "192.0.2.1", 0, ""},
			{0, frMobile, "192.0.2.1", 0, ""},
			{0, ukMobile, "192.0.2.1", time.Minute, "requested from this client IP address"},
			{0, ukMobile, "::ffff:192.0.2.1", time.Minute, "client IP"}, // the same IPv4 address
			{0, ukMobile, "192.0.2.2", 0, ""},
			{0, ukMobile, "", 0, ""}, // no address: not counted
			{0, ukMobile, "", 0, ""},
			{0, usNumber, "2001:db8:1:2::1", 0, ""},
			{0, usNumber, "2001:db8:1:2:ffff::9", 0, ""},
			{0, usNumber, "2001:db8:1:2::7", time.Minute, "client IP"}, // the same /64
			{0, usNumber, "2001:db8:1:3::1", 0, ""},
			{0, usNumber, "not an address", 0, ""},
			{0, usNumber, "not an address", 0, ""},
			{0, usNumber, "not an address", time.Minute, "client IP"},
			{time.Minute, ukMobile, "192.0.2.1", 0, ""},
		}},
		{"per number range", prefix, []step{
			{0, "+447400123400", "", 0, ""},
			{0, "+447400123401", "", 0, ""},
			{time.Minute, "+447400123499", "", 0, ""},
			{0, "+447400123402", "", 59 * time.Minute, "to numbers of the recipient's range (+44…, all but the last 2 digits alike): the connector allows 3 per 1h"},
			{0, "+447400123500", "", 0, ""}, // the next range
			{time.Hour, "+447400123403", "", 0, ""},
		}},
		{"global budget trips the breaker", global, []step{
			{0, usNumber, "", 0, ""},
			{10 * time.Second, frMobile, "", 0, ""},
			{10 * time.Second, ukMobile, "", 0, ""},
			{10 * time.Second, caNumber, "", time.Minute, "global send budget (3 per 1m) is spent: its breaker is open and every SMS is refused for 1m"},
			// At 60s the first slot of the budget frees, but the breaker stays open a whole
			// minute from its trip at 30s.
			{30 * time.Second, caNumber, "", 30 * time.Second, "breaker is open"},
			{29 * time.Second, caNumber, "", time.Second, "refused for 1s"},
			{time.Second, caNumber, "", 0, ""},
			{0, ngMobile, "", 0, ""},
			{0, ukMobile, "", 0, ""}, // the whole budget was free again
			{0, frMobile, "", time.Minute, "breaker is open"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _, clk := newGuard(t, Options{Policy: tt.policy})
			runSteps(t, g, clk, tt.steps)
		})
	}
}

// TestRefusalsTakeNoSlot: a send refused by one window does not hold a slot of another.
func TestRefusalsTakeNoSlot(t *testing.T) {
	p := open()
	p.Recipient = []Limit{{1, time.Hour}}
	p.Global = Limit{2, time.Hour}
	g, next, clk := newGuard(t, Options{Policy: p})
	runSteps(t, g, clk, []step{
		{0, usNumber, "", 0, ""},
		{0, usNumber, "", time.Hour, "to this recipient"},
		{0, usNumber, "", time.Hour, "to this recipient"},
		{0, frMobile, "", 0, ""}, // the budget's second slot was still free
	})
	if next.Calls() != 2 {
		t.Errorf("%d sends reached the connector, want 2", next.Calls())
	}
}

// TestFailedSendReleasesSlots: a send the connector proves it did not make gives its slots
// back; one whose outcome is open keeps them.
func TestFailedSendReleasesSlots(t *testing.T) {
	tests := []struct {
		err      error
		released bool
	}{
		{connector.Errorf(connector.ReasonInvalidConfig, "x"), true},
		{connector.Errorf(connector.ReasonConfigMissing, "x"), true},
		{connector.Errorf(connector.ReasonTemplateNotFound, "x"), true},
		{connector.Errorf(connector.ReasonInvalidPhoneNumber, "x"), true},
		{connector.Errorf(connector.ReasonRecipientOptedOut, "x"), true},
		{connector.Errorf(connector.ReasonRecipientUnreachable, "x"), true},
		{connector.Errorf(connector.ReasonProviderAuthFailed, "x"), true},
		{connector.Errorf(connector.ReasonProviderRateLimited, "x"), true},
		{connector.Errorf(connector.ReasonProviderUnavailable, "x"), true},
		{connector.Errorf(connector.ReasonProviderQueueFull, "x"), true},
		{connector.Errorf(connector.ReasonProviderRejected, "x"), true},
		{connector.Errorf(connector.ReasonCountryNotPermitted, "x"), true},
		{connector.Errorf(connector.ReasonOverloaded, "x"), true},
		{connector.Errorf(connector.ReasonStoreUnavailable, "x"), true},
		{connector.Errorf(connector.ReasonUnauthenticated, "x"), true},
		{fmt.Errorf("wrapped: %w", connector.Errorf(connector.ReasonMessageTooLong, "x")), true},
		{connector.Errorf(connector.ReasonProviderOutcomeUnknown, "x"), false},
		{connector.Errorf(connector.ReasonProviderTimeout, "x"), false},
		{connector.Errorf(connector.ReasonProviderInvalidResponse, "x"), false},
		{connector.Errorf(connector.ReasonCancelled, "x"), false},
		{connector.Errorf(connector.ReasonInternal, "x"), false},
		{errors.New("a plain error"), false},
	}
	for _, tt := range tests {
		t.Run(string(connector.ReasonOf(tt.err))+" "+tt.err.Error(), func(t *testing.T) {
			p := open()
			p.Recipient = []Limit{{1, time.Minute}}
			p.ClientIP = []Limit{{1, time.Minute}}
			p.Prefix = []Limit{{1, time.Minute}}
			p.Global = Limit{1, time.Minute}
			g, next, _ := newGuard(t, Options{Policy: p})
			next.fail = func(*connector.Message) error { return tt.err }
			if _, err := g.Send(context.Background(), msg(usNumber, "192.0.2.1")); !errors.Is(err, tt.err) {
				t.Fatalf("Send: %v, want the connector's error", err)
			}
			next.fail = nil
			_, err := g.Send(context.Background(), msg(usNumber, "192.0.2.1"))
			if tt.released {
				if err != nil {
					t.Errorf("retry after a send that sent nothing: %v", err)
				}
				return
			}
			if e := refusal(t, err, usNumber); e.Reason != connector.ReasonRateLimited {
				t.Errorf("retry after a send that may have been made: %v, want RATE_LIMITED", err)
			}
		})
	}
}

// recordingStore wraps a MemoryStore, recording keys, and can fail.
type recordingStore struct {
	*MemoryStore
	mu   sync.Mutex
	keys []string
	err  error
}

func (s *recordingStore) Reserve(ctx context.Context, ws []Window) (Reservation, Refusal, error) {
	s.mu.Lock()
	for _, w := range ws {
		s.keys = append(s.keys, w.Key)
	}
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return Reservation{}, Refusal{}, err
	}
	return s.MemoryStore.Reserve(ctx, ws)
}

func (s *recordingStore) Observe(ctx context.Context, o Outcome, rule FeedbackRule) ([]Tally, error) {
	s.mu.Lock()
	s.keys = append(s.keys, o.Keys...)
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.MemoryStore.Observe(ctx, o, rule)
}

func TestStoreKeysHoldNoNumbers(t *testing.T) {
	s := &recordingStore{MemoryStore: NewMemoryStore(MemoryOptions{})}
	g, _, _ := newGuard(t, Options{Policy: DefaultPolicy(), Store: s})
	if _, err := g.Send(context.Background(), msg(ukMobile, "198.51.100.77")); err != nil {
		t.Fatal(err)
	}
	if len(s.keys) != 8 { // 1 delivery cool-down of the range, 2 recipient, 2 prefix, 2 IP, 1 global
		t.Errorf("keys %q, want 8", s.keys)
	}
	for _, k := range s.keys {
		for _, secret := range []string{"447400", "7400123", "123456", "198.51", "100.77"} {
			if strings.Contains(k, secret) {
				t.Errorf("key %q holds %q in clear", k, secret)
			}
		}
	}
	// Guards sharing a secret share keys; without one they do not.
	s2 := &recordingStore{MemoryStore: NewMemoryStore(MemoryOptions{})}
	g2, _, _ := newGuard(t, Options{Policy: DefaultPolicy(), Store: s2})
	_, _ = g2.Send(context.Background(), msg(ukMobile, "198.51.100.77"))
	if s2.keys[0] == s.keys[0] {
		t.Errorf("two guards with random secrets made the same key")
	}
	var shared [2][]string
	for i := range shared {
		st := &recordingStore{MemoryStore: NewMemoryStore(MemoryOptions{})}
		g, _, _ := newGuard(t, Options{Policy: DefaultPolicy(), Store: st, KeySecret: []byte("shared")})
		_, _ = g.Send(context.Background(), msg(ukMobile, "198.51.100.77"))
		shared[i] = st.keys
	}
	if strings.Join(shared[0], ",") != strings.Join(shared[1], ",") {
		t.Errorf("guards with one secret made different keys: %q, %q", shared[0], shared[1])
	}
}

func TestStoreFailures(t *testing.T) {
	storeErr := errors.New("redis: connection refused")
	t.Run("store error: fail closed", func(t *testing.T) {
		s := &recordingStore{MemoryStore: NewMemoryStore(MemoryOptions{}), err: storeErr}
		var told []error
		g, next, _ := newGuard(t, Options{Policy: DefaultPolicy(), Store: s, OnStoreError: func(err error) { told = append(told, err) }})
		_, err := g.Send(context.Background(), msg(usNumber, ""))
		e := refusal(t, err, usNumber)
		if e.Reason != connector.ReasonStoreUnavailable || e.RetryAfter != StoreRetryAfter || !errors.Is(err, storeErr) {
			t.Errorf("got %v (RetryAfter %v), want STORE_UNAVAILABLE wrapping the store's error, RetryAfter %v", err, e.RetryAfter, StoreRetryAfter)
		}
		if next.Calls() != 0 {
			t.Errorf("sent despite the store failing")
		}
		if len(told) != 1 || !errors.Is(told[0], storeErr) {
			t.Errorf("OnStoreError told %v, want the store's error once", told)
		}
		// Destination rules still answer first.
		if _, err := g.Send(context.Background(), msg(ukPremium, "")); connector.ReasonOf(err) != connector.ReasonCountryNotPermitted {
			t.Errorf("premium rate with the store down: %v, want COUNTRY_NOT_PERMITTED", err)
		}
	})
	t.Run("store error: fail open", func(t *testing.T) {
		s := &recordingStore{MemoryStore: NewMemoryStore(MemoryOptions{}), err: storeErr}
		told := 0
		p := DefaultPolicy()
		g, next, _ := newGuard(t, Options{Policy: p, Store: s, FailOpen: true, OnStoreError: func(error) { told++ }})
		for range p.Recipient[0].Max + 2 { // over the recipient's limit: nothing counts
			if _, err := g.Send(context.Background(), msg(usNumber, "")); err != nil {
				t.Fatalf("Send with FailOpen and the store down: %v", err)
			}
		}
		if next.Calls() != p.Recipient[0].Max+2 || told != next.Calls() {
			t.Errorf("%d sends, %d store errors told; want %d of each", next.Calls(), told, p.Recipient[0].Max+2)
		}
		if _, err := g.Send(context.Background(), msg(ukPremium, "")); connector.ReasonOf(err) != connector.ReasonCountryNotPermitted {
			t.Errorf("premium rate with the store down: %v, want COUNTRY_NOT_PERMITTED", err)
		}
	})
	t.Run("store full", func(t *testing.T) {
		clk := testutil.NewClock()
		s := NewMemoryStore(MemoryOptions{Now: clk.Now, MaxKeys: 3})
		p := open()
		p.Recipient = []Limit{{1, time.Hour}}
		g, next, _ := newGuard(t, Options{Policy: p, Store: s, Now: clk.Now})
		for _, to := range []string{usNumber, frMobile, ukMobile} {
			if _, err := g.Send(context.Background(), msg(to, "")); err != nil {
				t.Fatal(err)
			}
		}
		_, err := g.Send(context.Background(), msg(caNumber, ""))
		if e := refusal(t, err, caNumber); e.Reason != connector.ReasonRateLimited || e.RetryAfter <= 0 || !errors.Is(err, ErrStoreFull) {
			t.Errorf("got %v, want RATE_LIMITED for a full store", err)
		}
		clk.Advance(time.Hour) // every key expires; the next sweep frees them
		if _, err := g.Send(context.Background(), msg(caNumber, "")); err != nil {
			t.Errorf("after expiry: %v", err)
		}
		if next.Calls() != 4 || s.Len() != 1 {
			t.Errorf("%d sends, %d keys; want 4, 1", next.Calls(), s.Len())
		}
	})
}

// TestConcurrentSendsRespectLimits: concurrent sends never exceed a window, whatever their
// interleaving (run with -race).
func TestConcurrentSendsRespectLimits(t *testing.T) {
	p := open()
	p.Recipient = []Limit{{3, time.Hour}}
	p.Global = Limit{50, time.Hour}
	g, next, _ := newGuard(t, Options{Policy: p})
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Go(func() {
			for i := range 50 {
				to := fmt.Sprintf("+1415555%04d", (w*50+i)%40)
				_, _ = g.Send(context.Background(), msg(to, ""))
			}
		})
	}
	wg.Wait()
	perRecipient := map[string]int{}
	for _, to := range next.sent {
		perRecipient[to]++
	}
	if len(next.sent) != 50 {
		t.Errorf("%d sent, want the global budget of 50", len(next.sent))
	}
	for to, n := range perRecipient {
		if n > 3 {
			t.Errorf("%s got %d, over the limit of 3", to, n)
		}
	}
}

func TestPassThrough(t *testing.T) {
	g, next, _ := newGuard(t, Options{Policy: DefaultPolicy()})
	vs, err := g.ValidateConfig(context.Background(), nil)
	if err != nil || len(vs) != 1 || vs[0].Description != "from next" {
		t.Errorf("ValidateConfig: %v, %v", vs, err)
	}
	md, err := g.Metadata(context.Background())
	if err != nil || md.ID != "fake" {
		t.Errorf("Metadata: %v, %v", md, err)
	}
	r, err := g.Send(context.Background(), nil)
	if r != nil || connector.ReasonOf(err) != connector.ReasonInvalidRequest {
		t.Errorf("Send(nil) = %v, %v; want INVALID_REQUEST", r, err)
	}
	if n := next.Calls(); n != 0 {
		t.Errorf("Send(nil) reached the connector %d times", n)
	}
	if _, err := New(nil, Options{Policy: DefaultPolicy()}); err == nil {
		t.Error("New without a connector succeeded")
	}
	bad := DefaultPolicy()
	bad.PrefixDigits = 0
	if _, err := New(&fakeConnector{}, Options{Policy: bad}); err == nil {
		t.Error("New with an invalid policy succeeded")
	}
}

func TestNumberRangeAndNetwork(t *testing.T) {
	ranges := []struct {
		in     string
		digits int
		want   string
	}{
		{"+447400123456", 4, "+44740012"},
		{"+447400123456", 1, "+44740012345"},
		{"+1234567", 8, "+1"},
		{"+1", 4, "+1"},
		{"", 4, ""},
	}
	for _, tt := range ranges {
		if got := numberRange(tt.in, tt.digits); got != tt.want {
			t.Errorf("numberRange(%q, %d) = %q, want %q", tt.in, tt.digits, got, tt.want)
		}
	}
	networks := []struct {
		in   string
		bits int
		want string
	}{
		{"192.0.2.1", 64, "192.0.2.1"},
		{"::ffff:192.0.2.1", 64, "192.0.2.1"},
		{"2001:db8::1", 64, "2001:db8::/64"},
		{"2001:db8::1%eth0", 48, "2001:db8::/48"},
		{"2001:db8::1", 128, "2001:db8::1/128"},
		{"", 64, ""},
		{"bogus", 64, "raw:bogus"},
	}
	for _, tt := range networks {
		if got := clientNetwork(tt.in, tt.bits); got != tt.want {
			t.Errorf("clientNetwork(%q, %d) = %q, want %q", tt.in, tt.bits, got, tt.want)
		}
	}
}

// TestSplitE164MatchesParse: for every number the fast path classifies as valid, libphonenumber's
// own Parse gives the same calling code, type and region. The numbers are libphonenumber's
// example numbers of every region and type, each also with random last digits.
func TestSplitE164MatchesParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	regions := slices.Sorted(maps.Keys(phonenumbers.GetSupportedRegions()))
	var numbers []string
	for _, region := range regions {
		for _, typ := range numberTypes {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil {
				continue
			}
			n := phonenumbers.Format(ex, phonenumbers.E164)
			numbers = append(numbers, n, n[:len(n)-3]+fmt.Sprintf("%03d", rng.IntN(1000)))
		}
	}
	checked := 0
	for _, n := range numbers {
		fast := splitE164(n)
		if fast == nil {
			t.Errorf("%s: the fast path does not split it", n)
			continue
		}
		if phonenumbers.GetNumberType(fast) == phonenumbers.UNKNOWN {
			continue
		}
		checked++
		p, err := phonenumbers.Parse(n, "")
		if err != nil {
			t.Errorf("%s: fast path valid, Parse: %v", n, err)
			continue
		}
		if p.GetCountryCode() != fast.GetCountryCode() || phonenumbers.GetNumberType(p) != phonenumbers.GetNumberType(fast) ||
			phonenumbers.GetRegionCodeForNumber(p) != phonenumbers.GetRegionCodeForNumber(fast) {
			t.Errorf("%s: fast path %v, Parse %v", n, fast, p)
		}
	}
	if checked < len(numbers)/2 {
		t.Errorf("only %d of %d numbers compared", checked, len(numbers))
	}
	t.Logf("%d valid numbers of %d regions compared", checked, len(regions))
	for _, n := range []string{usNumber, caNumber, ukMobile, ukPremium, ukFixed, deSharedCost, frMobile, ngMobile, intlNetwork, twilioMagicTo, "+390612345678", "+39012345678"} {
		if fast := splitE164(n); fast == nil || phonenumbers.GetNumberType(fast) == phonenumbers.UNKNOWN {
			t.Errorf("%s: the fast path does not classify it", n)
		}
	}
	for _, bad := range []string{"", "+", "+0123456", "123456789", "+12a4567", "+1", "+99912345"} {
		if splitE164(bad) != nil {
			t.Errorf("splitE164(%q) accepted it", bad)
		}
	}
}

// TestNationalPrefixCannotDodgeTypes: a premium-rate number with the national prefix written
// after the calling code is still recognised (libphonenumber's Parse strips it).
func TestNationalPrefixCannotDodgeTypes(t *testing.T) {
	g, next, _ := newGuard(t, Options{Policy: DefaultPolicy()})
	for _, to := range []string{"+4409098790000", ukPremium} {
		_, err := g.Send(context.Background(), msg(to, ""))
		if e := refusal(t, err, to); e.Reason != connector.ReasonCountryNotPermitted {
			t.Errorf("%s: %v, want COUNTRY_NOT_PERMITTED", to, err)
		}
	}
	if next.Calls() != 0 {
		t.Errorf("a premium-rate number reached the connector")
	}
}
