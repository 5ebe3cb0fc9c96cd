// Package guard defends an SMS connector against abuse, above all SMS pumping (toll fraud:
// bots request codes to premium or sequential numbers and the attacker earns a share of the
// termination fees). A Guard wraps any connector.SmsConnector and refuses a send before it
// reaches the vendor when it breaks the Policy:
//
//   - a destination the policy does not permit, by region or calling code (allow and deny
//     lists) or by number type (premium rate, shared cost, fixed line, ... as libphonenumber
//     classifies the number): COUNTRY_NOT_PERMITTED, which waiting does not change;
//   - a number libphonenumber's numbering plan says cannot exist (Policy.RefuseInvalidNumbers,
//     on by default), such as a premium-rate prefix with a digit too many, which has no type
//     the number-type policy could deny: INVALID_PHONE_NUMBER;
//   - a sliding-window limit per recipient, per client IP, per number range (the number
//     without its last digits, which catches sequential-number pumping), or the global send
//     budget, whose exhaustion trips a breaker that refuses every send for one window:
//     RATE_LIMITED, with RetryAfter saying when a slot frees;
//   - a number range (or, when the policy asks, a country) whose recent messages mostly came
//     back undelivered, as ObserveDelivery is told by the delivery status feed, for a
//     cool-down (Policy.DeliveryFeedback): RATE_LIMITED, with RetryAfter the rest of it.
//
// Refusals never carry the phone number. A send takes a slot of each of its windows before
// the vendor is called and gives them back when the vendor's answer proves nothing was sent
// (an invalid configuration, a rejected recipient, Twilio throttling, a refused connection),
// so a failure does not start a cooldown; an answer that leaves the outcome open (outcome
// unknown, timeout, cancellation) keeps them, since the SMS may exist and have cost money.
//
// Slots live in a Store; the default is an in-memory MemoryStore of bounded size, and the
// interface is small so that a shared store (package guardredis) can serve several processes.
// A send takes the slots of all its windows in one Store.Reserve, all or none. Store keys are
// HMACs of the numbers and addresses they count, never the values themselves. When the Store
// fails (an unreachable Redis), the Guard refuses the send with STORE_UNAVAILABLE, or, with
// Options.FailOpen, lets it through unlimited.
//
// Where the Guard sits among the other decorators is written in sdk.Defend.
package guard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/sms-connector/sms-connector/connector"
)

// Guard is a connector.SmsConnector that enforces a Policy in front of another one. It is safe
// for concurrent use.
type Guard struct {
	connector.Forward // ValidateConfig and Metadata are the guarded connector's
	policy            Policy
	store             Store
	now               func() time.Time
	secret            []byte // HMAC key of the store keys

	allowRegions, denyRegions map[string]bool
	allowCodes, denyCodes     map[int32]bool
	denyTypes                 map[phonenumbers.PhoneNumberType]NumberType

	failOpen     bool
	onStoreError func(error)
	onTrip       func(DeliveryTrip)

	mu          sync.Mutex
	breakerOpen time.Time // every send is refused until then, as last told by the store
}

var _ connector.SmsConnector = (*Guard)(nil)

// Options configure a Guard.
type Options struct {
	// Policy is what the Guard enforces (DefaultPolicy, or ParsePolicy of a file). New refuses
	// an invalid one (see Policy.Validate).
	Policy Policy
	// Store keeps the Guard's windows; nil means a MemoryStore of its own, on Now. A Store
	// keeps its own clock.
	Store Store
	// Now is the Guard's clock, for the breaker and for its own MemoryStore; nil means
	// time.Now. Tests pass a fake one and never sleep.
	Now func() time.Time
	// KeySecret is the HMAC key the Guard derives store keys with; empty means 32 random bytes
	// per Guard. Guards sharing a Store must share the secret, so they count the same number
	// under the same key; it must stay secret, since an unkeyed hash of a phone number is
	// found by trying every number.
	KeySecret []byte
	// FailOpen lets a send through, without counting it, when the Store fails: the limits do
	// not hold while a shared store is down. False (the default) refuses the send with
	// STORE_UNAVAILABLE and RetryAfter StoreRetryAfter, and nothing is sent. Destination rules
	// apply either way.
	FailOpen bool
	// OnStoreError, when set, is told of each failure of the Store (for a metric and a log
	// line), before the Guard applies FailOpen. It must be safe for concurrent use.
	OnStoreError func(error)
	// OnTrip, when set, is told of each scope (a number range, a country) whose delivery
	// feedback trips its cool-down, once per trip, for a metric
	// (sms_connector_delivery_trips_total{scope}) and a log line; DeliveryTrip holds no phone
	// number. It is called from ObserveDelivery and must be safe for concurrent use.
	OnTrip func(DeliveryTrip)
}

// StoreRetryAfter is the RetryAfter of a send refused because the Store failed.
const StoreRetryAfter = time.Second

// New returns a Guard enforcing o.Policy in front of next. It fails for a nil next or an
// invalid policy.
func New(next connector.SmsConnector, o Options) (*Guard, error) {
	if next == nil {
		return nil, errors.New("guard: no connector to guard")
	}
	p := o.Policy
	if err := p.Validate(); err != nil {
		return nil, err
	}
	g := &Guard{
		Forward:      connector.Forward{Next: next},
		policy:       p,
		store:        o.Store,
		now:          o.Now,
		secret:       append([]byte(nil), o.KeySecret...),
		failOpen:     o.FailOpen,
		onStoreError: o.OnStoreError,
		onTrip:       o.OnTrip,
		allowRegions: map[string]bool{},
		denyRegions:  map[string]bool{},
		allowCodes:   map[int32]bool{},
		denyCodes:    map[int32]bool{},
		denyTypes:    map[phonenumbers.PhoneNumberType]NumberType{},
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.store == nil {
		g.store = NewMemoryStore(MemoryOptions{Now: g.now})
	}
	if len(g.secret) == 0 {
		g.secret = make([]byte, 32)
		_, _ = rand.Read(g.secret) // crypto/rand.Read never fails
	}
	for _, c := range p.AllowCountries {
		region, cc, _ := parseCountry(c) // validated above
		g.allowRegions[region], g.allowCodes[int32(cc)] = true, true
	}
	for _, c := range p.DenyCountries {
		region, cc, _ := parseCountry(c)
		g.denyRegions[region], g.denyCodes[int32(cc)] = true, true
	}
	delete(g.allowRegions, "")
	delete(g.denyRegions, "")
	delete(g.allowCodes, 0)
	delete(g.denyCodes, 0)
	for _, t := range p.DenyNumberTypes {
		g.denyTypes[numberTypes[t]] = t
	}
	return g, nil
}

// Send checks msg against the policy and sends it through the guarded connector only when
// it passes. Refusals are *connector.Error with reason COUNTRY_NOT_PERMITTED (destination or
// number type; no RetryAfter), INVALID_PHONE_NUMBER (a number that cannot exist, when
// Policy.RefuseInvalidNumbers is on; a violation of field "to") or RATE_LIMITED (a window is
// full or the breaker is open; RetryAfter says when to try again). A nil msg is
// INVALID_REQUEST. A failure of the Store is STORE_UNAVAILABLE and nothing is sent (the guard
// fails closed), unless Options.FailOpen lets the send through.
func (g *Guard) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	if msg == nil {
		return nil, connector.Errorf(connector.ReasonInvalidRequest, "no message to send")
	}
	to := msg.To
	if n, err := connector.NormalizePhone(to); err == nil {
		to = n // count "+1 415 555 0123" and "+14155550123" as one recipient
	}
	if err := g.checkBreaker(); err != nil { // first: it costs nothing
		return nil, err
	}
	dest := lookupDestination(to)
	if err := g.checkDestination(dest); err != nil {
		return nil, err
	}
	held, err := g.reserve(ctx, to, dest, msg.ClientIP)
	if err != nil {
		return nil, err
	}
	r, err := g.Next.Send(ctx, msg)
	if err != nil && nothingSent(err) && held.ID != "" {
		g.release(ctx, held)
	}
	return r, err
}

// destination is what libphonenumber tells about a recipient.
type destination struct {
	number      *phonenumbers.PhoneNumber // nil when the recipient does not parse
	callingCode int32
	numberType  phonenumbers.PhoneNumberType // UNKNOWN for a number that cannot exist
	region      *string                      // memo of region()
}

// lookupDestination classifies an E.164 number. A number is valid when libphonenumber knows
// its type (what IsValidNumber checks, less the repeated work).
//
// libphonenumber's Parse spends most of its time on extensions and free-form input, which an
// E.164 recipient cannot have, so the number is first split into calling code and national
// number directly; only when that number is not valid does Parse get the last word (it also
// strips a national prefix written after the calling code, "+44 0909...", which could
// otherwise dodge the number-type policy).
func lookupDestination(e164 string) *destination {
	if n := splitE164(e164); n != nil {
		if t := phonenumbers.GetNumberType(n); t != phonenumbers.UNKNOWN {
			return &destination{number: n, callingCode: n.GetCountryCode(), numberType: t}
		}
	}
	n, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return &destination{numberType: phonenumbers.UNKNOWN}
	}
	return &destination{number: n, callingCode: n.GetCountryCode(), numberType: phonenumbers.GetNumberType(n)}
}

// splitE164 builds the PhoneNumber of "+" followed by digits without libphonenumber's
// parser: calling codes are prefix-free, so the first 1 to 3 digits that form one are it.
// It returns nil when s is not of that form.
func splitE164(s string) *phonenumbers.PhoneNumber {
	digits, ok := strings.CutPrefix(s, "+")
	if !ok || digits == "" || digits[0] == '0' || strings.Trim(digits, "0123456789") != "" {
		return nil
	}
	for l := 1; l <= 3 && l < len(digits); l++ {
		cc, _ := strconv.Atoi(digits[:l])
		if phonenumbers.GetRegionCodeForCountryCode(cc) == phonenumbers.UNKNOWN_REGION {
			continue
		}
		nsn := digits[l:]
		nn, err := strconv.ParseUint(nsn, 10, 64)
		if len(nsn) < 2 || len(nsn) > 17 || err != nil {
			return nil
		}
		cc32 := int32(cc)
		n := &phonenumbers.PhoneNumber{CountryCode: &cc32, NationalNumber: &nn}
		if nsn[0] == '0' { // kept as libphonenumber keeps it ("Italian leading zero")
			zeros := int32(1)
			for int(zeros) < len(nsn)-1 && nsn[zeros] == '0' {
				zeros++
			}
			lead := true
			n.ItalianLeadingZero = &lead
			if zeros > 1 {
				n.NumberOfLeadingZeros = &zeros
			}
		}
		return n
	}
	return nil
}

// valid reports whether libphonenumber's numbering plan allows the number.
func (d *destination) valid() bool { return d.numberType != phonenumbers.UNKNOWN }

// regionCode returns the number's region ("GB"; "001" for a non-geographic calling code; ""
// when unknown), looked up once and only when needed.
func (d *destination) regionCode() string {
	if d.region == nil {
		r := ""
		if d.number != nil {
			r = phonenumbers.GetRegionCodeForNumber(d.number)
		}
		d.region = &r
	}
	return *d.region
}

// where names d for messages, without the number: "region GB (+44)".
func (d *destination) where() string {
	switch r := d.regionCode(); {
	case d.number == nil:
		return "an unrecognised destination"
	case r == "" || r == "001" || r == phonenumbers.UNKNOWN_REGION:
		return "calling code +" + strconv.Itoa(int(d.callingCode))
	default:
		return "region " + r + " (+" + strconv.Itoa(int(d.callingCode)) + ")"
	}
}

// checkDestination applies, in this order, the country lists, the validity check (when the
// policy asks for it) and the number-type policy, so that a destination the lists refuse gets
// the same answer whatever libphonenumber thinks of the number. The region is looked up only
// when a region list needs it.
func (g *Guard) checkDestination(d *destination) error {
	notPermitted := func(why string) error {
		return &connector.Error{Reason: connector.ReasonCountryNotPermitted, Message: why}
	}
	parsed := d.number != nil
	if parsed && (g.denyCodes[d.callingCode] || (len(g.denyRegions) > 0 && g.denyRegions[d.regionCode()])) {
		return notPermitted("the connector's policy does not permit SMS to " + d.where())
	}
	if len(g.allowRegions)+len(g.allowCodes) > 0 &&
		!(parsed && (g.allowCodes[d.callingCode] || (len(g.allowRegions) > 0 && g.allowRegions[d.regionCode()]))) {
		return notPermitted("the connector's policy permits SMS only to its allowed countries, not to " + d.where())
	}
	if g.policy.RefuseInvalidNumbers && !d.valid() {
		why := "is not a valid phone number for " + d.where() + " (libphonenumber's numbering plan: wrong length or unassigned range)"
		return &connector.Error{
			Reason:     connector.ReasonInvalidPhoneNumber,
			Message:    "the recipient " + why,
			Violations: []connector.Violation{{Field: "to", Description: why}},
		}
	}
	if t, deny := g.denyTypes[d.numberType]; deny && parsed {
		return notPermitted(fmt.Sprintf("the connector's policy does not permit SMS to %s numbers (%s)", t.words(), d.where()))
	}
	return nil
}

// checkBreaker refuses every send while the global budget's breaker is open, as the Store
// last said; a breaker another process tripped is learnt at this process's next Reserve.
func (g *Guard) checkBreaker() error {
	g.mu.Lock()
	until := g.breakerOpen
	g.mu.Unlock()
	if wait := until.Sub(g.now()); wait > 0 {
		return g.breakerError(wait)
	}
	return nil
}

// noteBreaker remembers that the breaker stays open for wait from now.
func (g *Guard) noteBreaker(wait time.Duration) {
	until := g.now().Add(wait)
	g.mu.Lock()
	if until.After(g.breakerOpen) {
		g.breakerOpen = until
	}
	g.mu.Unlock()
}

// breakerError is the refusal of a send while the breaker is open for wait more.
func (g *Guard) breakerError(wait time.Duration) error {
	return &connector.Error{
		Reason: connector.ReasonRateLimited,
		Message: fmt.Sprintf("the connector's global send budget (%v) is spent: its breaker is open and every SMS is refused for %s; look for SMS pumping before raising the budget",
			g.policy.Global, formatDuration(roundUp(wait))),
		RetryAfter: wait,
	}
}

// refusal is the RATE_LIMITED error of a send the Store refused, a window of class full.
func (g *Guard) refusal(class string, limit Limit, d *destination, ref Refusal) error {
	wait := ref.RetryAfter
	if class == classDeliveryRange || class == classDeliveryCountry {
		return g.cooldownRefusal(class, d, wait)
	}
	if ref.Breaker {
		g.noteBreaker(wait)
		return g.breakerError(wait)
	}
	var what string
	switch class {
	case classRecipient:
		what = "to this recipient"
	case classPrefix:
		what = fmt.Sprintf("to numbers of the recipient's range (+%d…, all but the last %d digits alike)", d.callingCode, g.policy.PrefixDigits)
	case classIP:
		what = "requested from this client IP address"
	case classGlobal:
		what = "from this connector"
	}
	return &connector.Error{
		Reason:     connector.ReasonRateLimited,
		Message:    fmt.Sprintf("too many SMS %s: the connector allows %v; retry in %s", what, limit, formatDuration(roundUp(wait))),
		RetryAfter: wait,
	}
}

// The classes of windows, as they begin store keys.
const (
	classRecipient = "rcpt"
	classPrefix    = "prefix"
	classIP        = "ip"
	classGlobal    = "global"
)

// windows returns every window a send to to from clientIP counts against, with their classes
// and limits: the delivery feedback's cool-downs first, the global budget last (a Store
// reports the first full window, so a narrower window's refusal wins over the budget's
// breaker).
func (g *Guard) windows(to string, d *destination, clientIP string) (ws []Window, classes []string, limits []Limit) {
	p := g.policy
	if p.DeliveryFeedback.on() {
		ws, classes = g.feedbackWindows(to, d)
		limits = make([]Limit, len(ws))
	}
	add := func(class, id string, ls []Limit, breaker bool) {
		if id == "" || len(ls) == 0 {
			return
		}
		h := ""
		if class != classGlobal {
			h = "/" + g.hash(class, id)
		}
		for _, l := range ls {
			ws = append(ws, Window{Key: class + "/" + formatDuration(l.Window) + "/" + strconv.Itoa(l.Max) + h, Max: l.Max, Span: l.Window, Breaker: breaker})
			classes, limits = append(classes, class), append(limits, l)
		}
	}
	add(classRecipient, to, p.Recipient, false)
	if len(p.Prefix) > 0 {
		add(classPrefix, numberRange(to, p.PrefixDigits), p.Prefix, false)
	}
	if len(p.ClientIP) > 0 {
		add(classIP, clientNetwork(clientIP, p.IPv6PrefixBits), p.ClientIP, false)
	}
	if p.Global.Max > 0 {
		add(classGlobal, "all", []Limit{p.Global}, true)
	}
	return ws, classes, limits
}

// reserve takes a slot of every window of the send, or none. A failure of the Store refuses
// the send with STORE_UNAVAILABLE, or, with FailOpen, returns a zero Reservation and no error.
func (g *Guard) reserve(ctx context.Context, to string, d *destination, clientIP string) (Reservation, error) {
	ws, classes, limits := g.windows(to, d, clientIP)
	if len(ws) == 0 {
		return Reservation{}, nil
	}
	r, ref, err := g.store.Reserve(ctx, ws)
	switch {
	case errors.Is(err, ErrStoreFull):
		return Reservation{}, &connector.Error{
			Reason:     connector.ReasonRateLimited,
			Message:    "the connector is tracking as many recipients and clients as it can and refuses new ones for now; nothing was sent",
			RetryAfter: DefaultSweepInterval,
			Err:        err,
		}
	case err != nil:
		if g.onStoreError != nil {
			g.onStoreError(err)
		}
		if g.failOpen {
			return Reservation{}, nil
		}
		return Reservation{}, &connector.Error{
			Reason:     connector.ReasonStoreUnavailable,
			Message:    "the abuse-limit store cannot be reached; nothing was sent",
			RetryAfter: StoreRetryAfter,
			Err:        fmt.Errorf("guard: reserve slots: %w", err),
		}
	case ref.Refused():
		i := min(max(ref.Window, 0), len(ws)-1)
		return Reservation{}, g.refusal(classes[i], limits[i], d, ref)
	}
	return r, nil
}

// release gives the slots back, even when ctx has ended: they must not outlive a send that
// sent nothing. The in-memory store cannot fail; a shared store's failure leaves the slots to
// expire with their windows, which errs on the side of refusing.
func (g *Guard) release(ctx context.Context, held Reservation) {
	_ = g.store.Release(context.WithoutCancel(ctx), held)
}

// hash derives the store key of an identifier (a number, a range, an address) of a class:
// an HMAC, so that a store, or a dump of it, does not hold phone numbers or addresses.
func (g *Guard) hash(class, id string) string {
	m := hmac.New(sha256.New, g.secret)
	m.Write([]byte(class))
	m.Write([]byte{0})
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// numberRange returns the E.164 number without its last digits, keeping at least the "+" and
// one digit.
func numberRange(e164 string, digits int) string {
	n := max(len(e164)-digits, min(len(e164), 2))
	return e164[:n]
}

// clientNetwork returns the key of a client address: the address itself for IPv4 (and
// IPv4-mapped IPv6), its /bits network for IPv6, the string as given when it does not parse,
// and "" when there is none.
func clientNetwork(ip string, bits int) string {
	if ip == "" {
		return ""
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "raw:" + ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// nothingSent reports whether a failed send's error proves no SMS was created, so its slots
// can be given back. Only reasons that say so qualify; an unknown reason or a plain error keeps
// the slots, since a slot held too long costs a wait and an SMS not counted costs money.
func nothingSent(err error) bool {
	switch connector.ReasonOf(err) {
	case connector.ReasonInvalidRequest, connector.ReasonInvalidPhoneNumber, connector.ReasonRecipientNotMobile,
		connector.ReasonInvalidConfig, connector.ReasonConfigMissing, connector.ReasonTemplateNotFound,
		connector.ReasonMessageTooLong, connector.ReasonInvalidSender, connector.ReasonProviderAuthFailed,
		connector.ReasonProviderAccountNotFound, connector.ReasonRecipientOptedOut, connector.ReasonCountryNotPermitted,
		connector.ReasonRecipientUnreachable, connector.ReasonRateLimited, connector.ReasonProviderRateLimited,
		connector.ReasonProviderQueueFull, connector.ReasonProviderRejected, connector.ReasonProviderUnavailable,
		connector.ReasonOverloaded, connector.ReasonUnauthenticated, connector.ReasonStoreUnavailable:
		return true
	}
	// PROVIDER_OUTCOME_UNKNOWN, PROVIDER_TIMEOUT, PROVIDER_INVALID_RESPONSE, CANCELLED, INTERNAL:
	// the SMS may exist.
	return false
}

// roundUp rounds a wait up to a whole second for messages (RetryAfter keeps the exact value).
func roundUp(d time.Duration) time.Duration {
	if r := d.Truncate(time.Second); r < d {
		return r + time.Second
	}
	return d
}
