package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/deliverystatus"
	"github.com/sms-connector/sms-connector/connector/guard"
	"github.com/sms-connector/sms-connector/telemetry"
)

// twilioStatusPathDoc names the Twilio callback path in --public-url's help (the SDK itself
// knows no vendor: the binary's StatusCallbacks hook serves it).
const twilioStatusPathDoc = "/twilio/status"

// minStatusTTL is the shortest --status-ttl: a status must outlive the callbacks that follow a
// send by seconds.
const minStatusTTL = time.Minute

// checkStatusFlags validates --status-ttl and --public-url.
func checkStatusFlags(o *options) error {
	if o.statusTTL < minStatusTTL {
		return fmt.Errorf("--status-ttl %v: must be at least %v", o.statusTTL, minStatusTTL)
	}
	if o.publicURL == "" {
		return nil
	}
	u, err := CheckPublicURL(o.publicURL)
	if err != nil {
		return fmt.Errorf("--public-url: %w", err)
	}
	if o.httpListen == "" {
		return errors.New("--public-url asks the vendor to call back, but nothing would receive the callbacks: give --http-listen too (the public URL must lead to it)")
	}
	o.publicURL = u
	return nil
}

// CheckPublicURL validates a --public-url and returns it without a trailing slash: an absolute
// https URL (http only when the host is loopback: tests, the sandbox), with no credentials,
// query or fragment. A path prefix is kept (a proxy serving the connector under /sms).
func CheckPublicURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL", raw)
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return "", fmt.Errorf("%q: want an absolute https URL, e.g. https://sms.example.com", raw)
	case u.User != nil:
		return "", errors.New("the URL must not carry credentials")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("%q: no query or fragment: the vendor's path is added to it", raw)
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return "", fmt.Errorf("%q: http is accepted for a loopback host only; the vendor must call back over https", raw)
	}
	return strings.TrimSuffix(raw, "/"), nil
}

// loopbackHost reports whether host is localhost or a loopback IP.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// wireStatus sets d's delivery status hooks: each message's final state counted in m (nil: no
// metrics) under vendor's connector id and, with the guard on, fed to the guard Defend builds
// (its delivery feedback), whether the state came from a callback or a fetch; each trip of that
// feedback is counted and logged.
func wireStatus(ctx context.Context, vendor connector.SmsConnector, d *Defences, m *telemetry.Metrics, log *zap.Logger) error {
	if d.DeliveryStatus.Store == nil {
		return nil
	}
	if d.Guard {
		d.GuardOptions.OnTrip = func(t guard.DeliveryTrip) {
			m.DeliveryTrip(t.Scope)
			log.Warn("delivery feedback paused sends", zap.String("scope", t.Scope), zap.String("country", t.Country),
				zap.Int("outcomes", t.Outcomes), zap.Int("undelivered", t.Undelivered), zap.Duration("cooldown", t.Cooldown))
		}
		d.feedback = &guardFeedback{}
	}
	id := ""
	if m != nil {
		md, err := vendor.Metadata(ctx)
		if err != nil {
			return fmt.Errorf("connector metadata: %w", err)
		}
		if md == nil {
			return errors.New("connector metadata: none")
		}
		id = md.ID
	}
	fb := d.feedback
	d.DeliveryStatus.OnFinal = func(ctx context.Context, st *connector.MessageStatus, sentAt time.Time) {
		if m != nil {
			m.Delivery(id, st, sentAt)
		}
		fb.observe(ctx, st)
	}
	return nil
}

// guardFeedback hands final delivery states to the guard Defend builds, which exists only
// after the hooks that report them are set.
type guardFeedback struct{ g atomic.Pointer[guard.Guard] }

// observe gives st to the guard, once there is one. A failure of the guard's store reaches
// its OnStoreError; a status it cannot use is dropped.
func (f *guardFeedback) observe(ctx context.Context, st *connector.MessageStatus) {
	if f == nil {
		return
	}
	if g := f.g.Load(); g != nil {
		_ = g.ObserveDelivery(ctx, st)
	}
}

// statusCallbacks returns the vendor's status callback handlers to serve on --http-listen:
// none without --public-url or a StatusCallbacks hook.
func statusCallbacks(ctx context.Context, b Binary, rt *Runtime, defaultConfig json.RawMessage, so deliverystatus.Options) (map[string]http.Handler, error) {
	if rt.PublicURL == "" || b.StatusCallbacks == nil || so.Store == nil {
		if rt.PublicURL != "" {
			rt.Log.Warn("--public-url is set but this connector takes no status callbacks")
		}
		return nil, nil
	}
	rec, err := deliverystatus.NewRecorder(so)
	if err != nil {
		return nil, err
	}
	routes, err := b.StatusCallbacks(ctx, rt, defaultConfig, rec)
	if err != nil {
		return nil, fmt.Errorf("status callbacks: %w", err)
	}
	return routes, nil
}
