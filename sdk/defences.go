package sdk

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/deliverystatus"
	"github.com/sms-connector/sms-connector/connector/guard"
	"github.com/sms-connector/sms-connector/connector/idempotency"
	"github.com/sms-connector/sms-connector/connector/limits"
)

// Defences are the protections the SDK puts around every vendor's connector, whatever the
// vendor: idempotent sends (package idempotency), the concurrency limit (package limits) and
// the abuse guard (package guard). A zero Defences adds none of them; the binary's defaults
// are those of the flags (--policy, --no-guard, --idempotency-window,
// --max-concurrent-sends). The segment limit (--max-segments) is not a layer: the vendor's
// connector applies it where it renders the body (connector.NewTemplateSet), from
// Runtime.MaxSegments.
type Defences struct {
	// Guard turns the abuse guard on, with GuardOptions.
	Guard bool
	// GuardOptions configure the guard: its Policy (guard.DefaultPolicy, or guard.ParsePolicy
	// of a file), and optionally a shared Store, a clock, a key secret.
	GuardOptions guard.Options
	// IdempotencyWindow, when positive, sends each idempotency key at most once within it;
	// 0 turns idempotency off.
	IdempotencyWindow time.Duration
	// IdempotencyStore keeps the idempotency keys' claims and answers; nil keeps them in this
	// process's memory. A shared store (idemredis) makes them hold across replicas.
	IdempotencyStore idempotency.Store
	// IdempotencyOnStoreError is told of each failure of IdempotencyStore that refused a send.
	IdempotencyOnStoreError func(error)
	// MaxConcurrentSends is how many sends may be in flight at once; one more is refused with
	// OVERLOADED (RESOURCE_EXHAUSTED, RetryInfo). 0: no limit.
	MaxConcurrentSends int
	// DeliveryStatus, when its Store is set, keeps the delivery status of every sent message
	// (package deliverystatus): MessageStatus answers from it, the vendor being asked only for
	// what it does not know yet. Its Store is the --store's (memory or Redis), its records
	// live --status-ttl.
	DeliveryStatus deliverystatus.Options

	// feedback, set by the SDK's own wiring, is given the guard built here, so that the final
	// delivery states DeliveryStatus.OnFinal reports (callbacks and fetches alike) reach it.
	feedback *guardFeedback
}

// Defend wraps next in d's protections. It is the one place that says in which order the
// decorators of this module stack; a binary's connector, outermost first, is:
//
//	telemetry.NewSendMetrics        every send, refusals included (Run adds it, with --metrics-listen)
//	idempotency.New                 --idempotency-window
//	deliverystatus.New              --store, --status-ttl
//	limits.New                      --max-concurrent-sends
//	guard.New                       --policy, --no-guard
//	telemetry.NewProviderTelemetry  the vendor's calls only (Run adds it, with telemetry on)
//	next                            the vendor's connector; it renders the body and applies --max-segments
//
// Idempotency is outermost, so a retry of an answered send gets the stored answer without
// being counted, or refused, as a second send to the recipient, and duplicates waiting for a
// send in flight hold no concurrency slot. The concurrency limit comes before the guard, so a
// send refused for load never takes a slot of the guard's windows. The metrics sit outside
// every defence so that they count its refusals, the provider telemetry inside them so that
// refusals, which call no vendor, do not count as vendor calls. The delivery status layer sits
// inside idempotency, so that it records each message sent once (a retry answered from the
// idempotency store sends nothing), and outside the guard and the concurrency limit, so that
// status reads, answered from its store or by the vendor's fetch, never count against a limit
// nor wait for a send slot. Each layer passes
// ValidateConfig, Metadata and MessageStatus through to next. A layer d leaves off is not there
// at all.
func Defend(next connector.SmsConnector, d Defences) (connector.SmsConnector, error) {
	if next == nil {
		return nil, errors.New("sdk: Defend: no connector")
	}
	c := next
	if d.Guard {
		g, err := guard.New(c, d.GuardOptions)
		if err != nil {
			return nil, err
		}
		if d.feedback != nil {
			d.feedback.g.Store(g)
		}
		c = g
	}
	if d.MaxConcurrentSends != 0 {
		l, err := limits.New(c, limits.Options{MaxConcurrent: d.MaxConcurrentSends})
		if err != nil {
			return nil, err
		}
		c = l
	}
	if d.DeliveryStatus.Store != nil {
		s, err := deliverystatus.New(c, d.DeliveryStatus)
		if err != nil {
			return nil, err
		}
		c = s
	}
	switch {
	case d.IdempotencyWindow < 0:
		return nil, fmt.Errorf("sdk: Defend: negative IdempotencyWindow %v", d.IdempotencyWindow)
	case d.IdempotencyWindow > 0:
		i, err := idempotency.New(c, idempotency.Options{Window: d.IdempotencyWindow, Store: d.IdempotencyStore, OnStoreError: d.IdempotencyOnStoreError})
		if err != nil {
			return nil, err
		}
		c = i
	}
	return c, nil
}

// SandboxPolicy is the guard's policy in sandbox mode unless --policy gives another: the
// default policy's destination rules (denied calling codes, premium-rate, shared-cost and
// fixed-line numbers), with rate limits relaxed so that examples and tests can send to the
// emulator's magic numbers, which share one number range, again and again:
//   - per recipient 30 per minute (default: 1 per 30s, 5 per hour);
//   - per client IP 120 per minute (default: 10 per minute, 50 per hour);
//   - per number range 600 per hour (default: 10 per hour, 50 per day);
//   - a global budget of 5,000 per hour (default 1,000).
func SandboxPolicy() guard.Policy {
	p := guard.DefaultPolicy()
	p.Recipient = []guard.Limit{{Max: 30, Window: time.Minute}}
	p.ClientIP = []guard.Limit{{Max: 120, Window: time.Minute}}
	p.Prefix = []guard.Limit{{Max: 600, Window: time.Hour}}
	p.Global = guard.Limit{Max: 5000, Window: time.Hour}
	return p
}

// policyOf returns the guard policy o asks for and where it comes from: the --policy file,
// the sandbox's relaxed policy, or the default.
func policyOf(o *options) (guard.Policy, string, error) {
	switch {
	case o.policyFile != "":
		raw, err := os.ReadFile(o.policyFile)
		if err != nil {
			return guard.Policy{}, "", fmt.Errorf("--policy: %w", err)
		}
		p, err := guard.ParsePolicy(raw)
		if err != nil {
			return guard.Policy{}, "", fmt.Errorf("--policy %s: %w", o.policyFile, err)
		}
		return p, "--policy " + o.policyFile, nil
	case o.sandbox:
		return SandboxPolicy(), "the sandbox's relaxed policy (sdk.SandboxPolicy; --policy to use another)", nil
	}
	return guard.DefaultPolicy(), "the default policy (guard.DefaultPolicy; --policy to change it)", nil
}
