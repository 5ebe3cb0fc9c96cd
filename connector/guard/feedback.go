package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/sms-connector/sms-connector/connector"
)

// DeliveryFeedback turns delivery outcomes into an abuse signal. SMS pumping goes to numbers
// that rarely deliver: when, among the last Window's final outcomes of a scope (a number
// range, a country) there are at least MinOutcomes and more than MaxUndeliveredShare of them
// were UNDELIVERED or FAILED, the Guard refuses every send to that scope for Cooldown, with
// RATE_LIMITED and RetryAfter the rest of the cool-down. Its JSON form is
// {"perRange": true, "perCountry": false, "window": "24h", "minOutcomes": 20,
// "maxUndeliveredShare": 0.8, "cooldown": "1h"}; a field left out keeps its default.
//
// Outcomes come from Guard.ObserveDelivery, which the status feed (vendor callbacks) calls;
// without one the feedback never trips.
type DeliveryFeedback struct {
	// PerRange counts outcomes per number range, the range Policy.PrefixDigits defines.
	PerRange bool
	// PerCountry counts outcomes per country (the region libphonenumber places the number in,
	// or its calling code when it has none). Off by default: an attacker who requests codes to
	// dead numbers of one country would shut that country for every user.
	PerCountry bool
	// Window is how long an outcome counts.
	Window time.Duration
	// MinOutcomes is how many outcomes a scope needs within Window before it can trip.
	MinOutcomes int
	// MaxUndeliveredShare is the undelivered share (above 0, below 1) a scope may reach
	// without tripping; it trips when the share is above it.
	MaxUndeliveredShare float64
	// Cooldown is how long a tripped scope is refused.
	Cooldown time.Duration
}

// DefaultDeliveryFeedback returns the defaults: per number range, at least 20 outcomes in 24
// hours (the daily prefix window lets a range reach 20), more than 80% undelivered, refused for
// an hour. Legitimate ranges lose far fewer than 80% of their messages.
func DefaultDeliveryFeedback() DeliveryFeedback {
	return DeliveryFeedback{
		PerRange:            true,
		Window:              24 * time.Hour,
		MinOutcomes:         20,
		MaxUndeliveredShare: 0.8,
		Cooldown:            time.Hour,
	}
}

// on reports whether f counts anything.
func (f DeliveryFeedback) on() bool { return f.PerRange || f.PerCountry }

// rule is f as a Store applies it.
func (f DeliveryFeedback) rule() FeedbackRule {
	return FeedbackRule{
		Span:              f.Window,
		MinOutcomes:       f.MinOutcomes,
		MaxUndeliveredPPM: int(math.Round(f.MaxUndeliveredShare * 1_000_000)),
		Cooldown:          f.Cooldown,
	}
}

// validate reports every problem of f, each naming its JSON field; none when f is off.
func (f DeliveryFeedback) validate() []error {
	if !f.on() {
		return nil
	}
	var errs []error
	if f.Window <= 0 || f.Window > maxLimitWindow {
		errs = append(errs, fmt.Errorf("window %v; must be positive and at most %v", f.Window, maxLimitWindow))
	}
	if f.Cooldown <= 0 || f.Cooldown > maxLimitWindow {
		errs = append(errs, fmt.Errorf("cooldown %v; must be positive and at most %v", f.Cooldown, maxLimitWindow))
	}
	if f.MinOutcomes < 1 || f.MinOutcomes > MaxOutcomesPerWindow {
		errs = append(errs, fmt.Errorf("minOutcomes %d; must be 1 to %d", f.MinOutcomes, MaxOutcomesPerWindow))
	}
	if ppm := f.rule().MaxUndeliveredPPM; !(f.MaxUndeliveredShare > 0 && f.MaxUndeliveredShare < 1) || ppm < 1 || ppm >= 1_000_000 {
		errs = append(errs, fmt.Errorf("maxUndeliveredShare %v; must be above 0 and below 1 (0.8: trip when more than 80%% were not delivered)", f.MaxUndeliveredShare))
	}
	return errs
}

// deliveryFeedbackJSON is the JSON form of a DeliveryFeedback.
type deliveryFeedbackJSON struct {
	PerRange            bool    `json:"perRange"`
	PerCountry          bool    `json:"perCountry"`
	Window              string  `json:"window"`
	MinOutcomes         int     `json:"minOutcomes"`
	MaxUndeliveredShare float64 `json:"maxUndeliveredShare"`
	Cooldown            string  `json:"cooldown"`
}

// MarshalJSON writes f with its durations as "24h".
func (f DeliveryFeedback) MarshalJSON() ([]byte, error) {
	return json.Marshal(deliveryFeedbackJSON{
		PerRange: f.PerRange, PerCountry: f.PerCountry, Window: formatDuration(f.Window),
		MinOutcomes: f.MinOutcomes, MaxUndeliveredShare: f.MaxUndeliveredShare, Cooldown: formatDuration(f.Cooldown),
	})
}

// UnmarshalJSON reads f's JSON form over f: a field left out keeps its value. Unknown fields
// are errors, and so is null (turn the feedback off with perRange and perCountry false).
func (f *DeliveryFeedback) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return errors.New(`deliveryFeedback: null; to turn it off, set "perRange" and "perCountry" to false`)
	}
	j := deliveryFeedbackJSON{
		PerRange: f.PerRange, PerCountry: f.PerCountry, Window: formatDuration(f.Window),
		MinOutcomes: f.MinOutcomes, MaxUndeliveredShare: f.MaxUndeliveredShare, Cooldown: formatDuration(f.Cooldown),
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return fmt.Errorf("deliveryFeedback: %w", err)
	}
	w, err := time.ParseDuration(j.Window)
	if err != nil {
		return fmt.Errorf("deliveryFeedback: window %q: want a duration like \"1h\" or \"24h\"", j.Window)
	}
	c, err := time.ParseDuration(j.Cooldown)
	if err != nil {
		return fmt.Errorf("deliveryFeedback: cooldown %q: want a duration like \"1h\"", j.Cooldown)
	}
	*f = DeliveryFeedback{PerRange: j.PerRange, PerCountry: j.PerCountry, Window: w, MinOutcomes: j.MinOutcomes,
		MaxUndeliveredShare: j.MaxUndeliveredShare, Cooldown: c}
	return nil
}

// The scopes of delivery feedback, as DeliveryTrip.Scope names them.
const (
	ScopeRange   = "range"
	ScopeCountry = "country"
)

// The classes of outcome windows, as they begin store keys.
const (
	classDeliveryRange   = "dlv-range"
	classDeliveryCountry = "dlv-country"
	classDeliveryMessage = "dlv-msg" // the hashed message id a window dedupes by
)

// DeliveryTrip tells Options.OnTrip that a scope's undelivered share tripped its cool-down.
// It carries no phone number: a range is named only by its country.
type DeliveryTrip struct {
	// Scope is ScopeRange or ScopeCountry.
	Scope string
	// Country is the scope's country: a region ("GB") or, for a number without one, a
	// calling code ("+882").
	Country string
	// Outcomes and Undelivered are the window's counts when it tripped.
	Outcomes, Undelivered int
	// Cooldown is how long the scope is refused.
	Cooldown time.Duration
}

// ObserveDelivery feeds one message's delivery outcome back into the guard's delivery
// feedback (Policy.DeliveryFeedback): it counts a final status (DELIVERED, UNDELIVERED,
// FAILED) of st.To's number range and country, and trips a scope's cool-down when its
// undelivered share passes the policy's threshold. A status that is not final, and every
// status when the feedback is off, is ignored. The same MessageID is counted once per window.
// An UNDELIVERED or FAILED status whose Reason puts the fault on the vendor or the account
// (PROVIDER_*, INVALID_CONFIG, INVALID_SENDER, ...) says nothing about the number and is
// not counted. It fails for a final status without MessageID or To, and when the Store fails
// (Options.OnStoreError is told first); errors never carry the number. Safe for concurrent
// use; call it once a message's state is final.
func (g *Guard) ObserveDelivery(ctx context.Context, st *connector.MessageStatus) error {
	f := g.policy.DeliveryFeedback
	if st == nil || !st.State.Final() || !f.on() {
		return nil
	}
	if st.MessageID == "" || st.To == "" {
		return errors.New("guard: observe delivery: a final status needs its message id and recipient")
	}
	undelivered := st.State != connector.DeliveryDelivered
	if undelivered && vendorFault(st.Reason) {
		return nil
	}
	to := st.To
	if n, err := connector.NormalizePhone(to); err == nil {
		to = n
	}
	d := lookupDestination(to)
	ws, classes := g.feedbackWindows(to, d)
	if len(ws) == 0 {
		return nil
	}
	o := Outcome{Keys: make([]string, len(ws)), ID: g.hash(classDeliveryMessage, st.MessageID), Undelivered: undelivered}
	for i, w := range ws {
		o.Keys[i] = w.Key
	}
	tallies, err := g.store.Observe(ctx, o, f.rule())
	if err != nil {
		if g.onStoreError != nil && !errors.Is(err, ErrStoreFull) {
			g.onStoreError(err)
		}
		return fmt.Errorf("guard: observe delivery: %w", err)
	}
	if g.onTrip == nil {
		return nil
	}
	for i, t := range tallies {
		if i < len(classes) && t.Tripped {
			scope := ScopeRange
			if classes[i] == classDeliveryCountry {
				scope = ScopeCountry
			}
			g.onTrip(DeliveryTrip{Scope: scope, Country: countryOf(d), Outcomes: t.Outcomes, Undelivered: t.Undelivered, Cooldown: t.CooldownLeft})
		}
	}
	return nil
}

// feedbackWindows returns the cool-down windows of a number to, with their classes: its
// range's and its country's, as the policy asks.
func (g *Guard) feedbackWindows(to string, d *destination) (ws []Window, classes []string) {
	f := g.policy.DeliveryFeedback
	if f.PerRange && d.number != nil {
		ws = append(ws, Window{Key: classDeliveryRange + "/" + g.hash(classDeliveryRange, numberRange(to, g.policy.PrefixDigits)), Cooldown: true})
		classes = append(classes, classDeliveryRange)
	}
	if c := countryOf(d); f.PerCountry && c != "" {
		ws = append(ws, Window{Key: classDeliveryCountry + "/" + g.hash(classDeliveryCountry, c), Cooldown: true})
		classes = append(classes, classDeliveryCountry)
	}
	return ws, classes
}

// countryOf names d's country: its region ("GB"), or "+" and its calling code when it has no
// region of its own (non-geographic codes, numbers libphonenumber cannot place); "" when d did
// not parse.
func countryOf(d *destination) string {
	switch r := d.regionCode(); {
	case d.number == nil:
		return ""
	case r == "" || r == "001" || r == phonenumbers.UNKNOWN_REGION:
		return "+" + strconv.Itoa(int(d.callingCode))
	default:
		return r
	}
}

// vendorFault reports whether a failed delivery's reason blames the vendor or the account
// rather than the number, so that a vendor outage cannot trip every range.
func vendorFault(r connector.Reason) bool {
	switch r {
	case connector.ReasonInvalidConfig, connector.ReasonConfigMissing, connector.ReasonInvalidSender,
		connector.ReasonProviderAuthFailed, connector.ReasonProviderAccountNotFound, connector.ReasonProviderRateLimited,
		connector.ReasonProviderQueueFull, connector.ReasonProviderRejected, connector.ReasonProviderUnavailable,
		connector.ReasonProviderOutcomeUnknown, connector.ReasonProviderTimeout, connector.ReasonProviderInvalidResponse,
		connector.ReasonOverloaded, connector.ReasonMessageTooLong:
		return true
	}
	return false
}

// cooldownRefusal is the RATE_LIMITED error of a send to a scope (class) in its cool-down.
func (g *Guard) cooldownRefusal(class string, d *destination, wait time.Duration) error {
	what := "to " + d.where()
	if class == classDeliveryRange {
		what = fmt.Sprintf("to numbers of the recipient's range (+%d…, all but the last %d digits alike)", d.callingCode, g.policy.PrefixDigits)
	}
	f := g.policy.DeliveryFeedback
	return &connector.Error{
		Reason: connector.ReasonRateLimited,
		Message: fmt.Sprintf("SMS %s are paused: more than %s of at least %d messages there in the last %s were not delivered, a sign of SMS pumping; retry in %s",
			what, strconv.FormatFloat(f.MaxUndeliveredShare*100, 'f', -1, 64)+"%", f.MinOutcomes, formatDuration(f.Window), formatDuration(roundUp(wait))),
		RetryAfter: wait,
	}
}
