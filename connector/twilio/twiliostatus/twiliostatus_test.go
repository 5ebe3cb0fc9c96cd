package twiliostatus_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/deliverystatus"
	"github.com/sms-connector/sms-connector/connector/deliverystatus/statusredis"
	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliostatus"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	"github.com/sms-connector/sms-connector/internal/testutil/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recipient is an ordinary number: its messages are delivered.
const recipient = "+14155552671"

// finals counts OnFinal's calls by message.
type finals struct {
	mu    sync.Mutex
	calls map[string][]connector.MessageStatus
}

func newFinals() *finals { return &finals{calls: map[string][]connector.MessageStatus{}} }

func (f *finals) on(_ context.Context, st *connector.MessageStatus, _ time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[st.MessageID] = append(f.calls[st.MessageID], *st)
}

func (f *finals) of(id string) []connector.MessageStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

// replica is one connector process: the Twilio connector with its StatusCallback, wrapped by
// the delivery status decorator, and the callback handler on a loopback HTTP server.
type replica struct {
	conn  *deliverystatus.Connector
	store deliverystatus.Store
	srv   *httptest.Server
}

// rig is the emulator and the replicas' shared parts.
type rig struct {
	emu      *twiliotest.Server
	finals   *finals
	callback string // the StatusCallback every replica's messages carry (the first replica's server)
	config   json.RawMessage
}

// newRig starts an emulator posting callbacks without delay.
func newRig(t *testing.T, opts ...twiliotest.Option) *rig {
	t.Helper()
	emu := twiliotest.NewServer(append([]twiliotest.Option{twiliotest.WithCallbackDelay(0)}, opts...)...)
	t.Cleanup(emu.Close)
	cfg, _ := json.Marshal(map[string]any{
		"accountSID": twiliotest.SandboxAccountSID, "authToken": twiliotest.SandboxAuthToken, "from": twiliotest.FromValid,
		"templates": []map[string]string{
			{"usageType": "Register", "content": "code {{code}}"}, {"usageType": "SignIn", "content": "code {{code}}"},
			{"usageType": "ForgotPassword", "content": "code {{code}}"}, {"usageType": "Generic", "content": "code {{code}}"},
		},
	})
	return &rig{emu: emu, finals: newFinals(), config: cfg}
}

// replica starts a replica keeping statuses in store. The first one's HTTP server is where every
// message calls back (as behind a load balancer, any replica may receive a callback).
func (r *rig) replica(t *testing.T, store deliverystatus.Store, authToken string) *replica {
	t.Helper()
	o := deliverystatus.Options{Store: store, OnFinal: r.finals.on, RecordSends: true} // the messages call back
	rec, err := deliverystatus.NewRecorder(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	if r.callback == "" {
		r.callback = srv.URL + twiliostatus.Path
	}
	h, err := twiliostatus.New(twiliostatus.Options{AuthToken: authToken, AccountSID: twiliotest.SandboxAccountSID,
		CallbackURL: srv.URL + twiliostatus.Path, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(twiliostatus.Path, h)
	srv.Config.Handler = mux

	tw, err := twilio.New(twilio.Options{APIURL: r.emu.URL, StatusCallbackURL: r.callback})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tw.Close() })
	conn, err := deliverystatus.New(tw, o)
	if err != nil {
		t.Fatal(err)
	}
	return &replica{conn: conn, store: store, srv: srv}
}

// send sends a code to to through rep and waits for the emulator's callbacks.
func (r *rig) send(t *testing.T, rep *replica, to string) string {
	t.Helper()
	rc, err := rep.conn.Send(context.Background(), &connector.Message{To: to, UsageType: connector.UsageRegister,
		Payload: connector.Payload{Code: "123456"}, Config: r.config})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.emu.WaitCallbacks(ctx); err != nil {
		t.Fatalf("callbacks: %v", err)
	}
	return rc.MessageID
}

// stored returns the store's record of id (nil: none).
func stored(t *testing.T, s deliverystatus.Store, id string) *deliverystatus.Record {
	t.Helper()
	rec, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func memory(t *testing.T) deliverystatus.Store {
	m, err := deliverystatus.NewMemory(deliverystatus.MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCallbacksOutcomes(t *testing.T) {
	tests := []struct {
		to     string
		state  connector.DeliveryState
		reason connector.Reason
		code   string
	}{
		{recipient, connector.DeliveryDelivered, "", ""},
		{twiliotest.ToUndeliveredUnreachable, connector.DeliveryUndelivered, connector.ReasonRecipientUnreachable, "30003"},
		{twiliotest.ToUndeliveredUnknown, connector.DeliveryUndelivered, connector.ReasonInvalidPhoneNumber, "30005"},
		{twiliotest.ToUndeliveredLandline, connector.DeliveryUndelivered, connector.ReasonRecipientNotMobile, "30006"},
		{twiliotest.ToUndeliveredFiltered, connector.DeliveryUndelivered, connector.ReasonProviderRejected, "30007"},
		{twiliotest.ToFailed, connector.DeliveryFailed, connector.ReasonProviderRejected, "30008"},
	}
	r := newRig(t)
	rep := r.replica(t, memory(t), twiliotest.SandboxAuthToken)
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			id := r.send(t, rep, tt.to)
			st, err := rep.conn.MessageStatus(context.Background(), id, r.config)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != tt.state || st.Reason != tt.reason || st.VendorCode != tt.code {
				t.Errorf("status = %s %q %q, want %s %q %q", st.State, st.Reason, st.VendorCode, tt.state, tt.reason, tt.code)
			}
			f := r.finals.of(id)
			if len(f) != 1 || f[0].To != tt.to || f[0].State != tt.state {
				t.Errorf("OnFinal calls = %+v, want one with To %s and %s", f, tt.to, tt.state)
			}
			for _, m := range r.emu.Messages() {
				if m.Sid == id && m.Status != st.VendorStatus {
					t.Errorf("emulator's recorded status %q, want %q", m.Status, st.VendorStatus)
				}
			}
		})
	}
	for _, cb := range r.emu.Callbacks() {
		if cb.HTTPStatus != http.StatusNoContent {
			t.Errorf("callback %+v answered %d, want 204", cb, cb.HTTPStatus)
		}
	}
}

func TestCallbacksChaos(t *testing.T) {
	r := newRig(t, twiliotest.WithCallbackChaos())
	rep := r.replica(t, memory(t), twiliotest.SandboxAuthToken)
	id := r.send(t, rep, recipient)
	cbs := r.emu.Callbacks()
	if len(cbs) != 5 || cbs[1].Status != "delivered" || cbs[2].Status != "queued" {
		t.Fatalf("callbacks %+v, want 5 with delivered before queued", cbs)
	}
	if rec := stored(t, rep.store, id); rec == nil || rec.Status.State != connector.DeliveryDelivered {
		t.Errorf("record = %+v, want DELIVERED despite the late queued and sent", rec)
	}
	if n := len(r.finals.of(id)); n != 1 {
		t.Errorf("OnFinal called %d times, want once for a final state reported twice", n)
	}
}

// form is a signed callback's body for message id.
func form(id, status string) url.Values {
	return url.Values{"AccountSid": {twiliotest.SandboxAccountSID}, "MessageSid": {id}, "MessageStatus": {status}, "To": {recipient}}
}

// post sends a callback to rep signed with token ("" for none) over the URL signed, and returns
// the HTTP status.
func post(t *testing.T, rep *replica, f url.Values, token, signed string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, rep.srv.URL+twiliostatus.Path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set(twiliostatus.SignatureHeader, twiliotest.Sign(token, signed, f))
	}
	resp, err := rep.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestForgedCallbacksRefused(t *testing.T) {
	r := newRig(t)
	rep := r.replica(t, memory(t), twiliotest.SandboxAuthToken)
	target := rep.srv.URL + twiliostatus.Path
	const id = "SM0123456789abcdef0123456789abcdef"
	other := target + "?x=1"
	tampered := form(id, "delivered")
	tests := []struct {
		name         string
		form         url.Values
		token, where string
		mutate       func(url.Values)
	}{
		{"unsigned", form(id, "delivered"), "", target, nil},
		{"wrong token", form(id, "delivered"), "ffffffffffffffffffffffffffffffff", target, nil},
		{"another URL", form(id, "delivered"), twiliotest.SandboxAuthToken, other, nil},
		{"tampered after signing", tampered, twiliotest.SandboxAuthToken, target, func(f url.Values) { f.Set("MessageStatus", "undelivered") }},
		{"another account", url.Values{"AccountSid": {"AC11111111111111111111111111111111"}, "MessageSid": {id}, "MessageStatus": {"delivered"}}, twiliotest.SandboxAuthToken, target, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := ""
			if tt.token != "" {
				sig = twiliotest.Sign(tt.token, tt.where, tt.form)
			}
			if tt.mutate != nil {
				tt.mutate(tt.form)
			}
			req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if sig != "" {
				req.Header.Set(twiliostatus.SignatureHeader, sig)
			}
			resp, err := rep.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403", resp.StatusCode)
			}
			if rec := stored(t, rep.store, id); rec != nil {
				t.Errorf("record %+v, want none: a refused callback is recorded nowhere", rec)
			}
		})
	}
	if n := len(r.finals.of(id)); n != 0 {
		t.Errorf("OnFinal called %d times for forged callbacks", n)
	}
	// The same callback, rightly signed, is taken.
	if code := post(t, rep, form(id, "delivered"), twiliotest.SandboxAuthToken, target); code != http.StatusNoContent {
		t.Errorf("signed callback: %d, want 204", code)
	}
}

func TestNoAuthTokenRefusesEverything(t *testing.T) {
	r := newRig(t)
	rep := r.replica(t, memory(t), "")
	id := r.send(t, rep, recipient)
	for _, cb := range r.emu.Callbacks() {
		if cb.HTTPStatus != http.StatusForbidden {
			t.Errorf("callback %+v answered %d, want 403 (nothing can verify it)", cb, cb.HTTPStatus)
		}
	}
	if rec := stored(t, rep.store, id); rec == nil || rec.Status.State != connector.DeliveryQueued {
		t.Errorf("record = %+v, want the send's QUEUED only", rec)
	}
}

func TestReplayedCallbackIdempotent(t *testing.T) {
	r := newRig(t)
	rep := r.replica(t, memory(t), twiliotest.SandboxAuthToken)
	u := rep.srv.URL + twiliostatus.Path
	const id = "SM0123456789abcdef0123456789abcdef"
	f := form(id, "undelivered")
	f.Set("ErrorCode", "30003")
	for range 3 {
		if code := post(t, rep, f, twiliotest.SandboxAuthToken, u); code != http.StatusNoContent {
			t.Fatalf("replay: %d, want 204", code)
		}
	}
	first := stored(t, rep.store, id)
	if code := post(t, rep, form(id, "sent"), twiliotest.SandboxAuthToken, u); code != http.StatusNoContent {
		t.Fatalf("late sent: %d", code)
	}
	if got := stored(t, rep.store, id); got.Status != first.Status {
		t.Errorf("after a late sent: %+v, want unchanged %+v", got.Status, first.Status)
	}
	if n := len(r.finals.of(id)); n != 1 {
		t.Errorf("OnFinal called %d times for one final state replayed, want 1", n)
	}
}

func TestRedisSharedByReplicas(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client()
	newStore := func() deliverystatus.Store {
		s, err := statusredis.New(rdb, statusredis.Options{TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	r := newRig(t, twiliotest.WithCallbackChaos())
	receiver := r.replica(t, newStore(), twiliotest.SandboxAuthToken) // receives every callback
	sender := r.replica(t, newStore(), twiliotest.SandboxAuthToken)
	ids := []string{r.send(t, sender, recipient), r.send(t, sender, twiliotest.ToUndeliveredUnreachable)}

	for i, want := range []connector.DeliveryState{connector.DeliveryDelivered, connector.DeliveryUndelivered} {
		for _, rep := range []*replica{sender, receiver} {
			st, err := rep.conn.MessageStatus(context.Background(), ids[i], r.config)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != want {
				t.Errorf("%s on a replica: %s, want %s", ids[i], st.State, want)
			}
		}
		if n := len(r.finals.of(ids[i])); n != 1 {
			t.Errorf("OnFinal for %s called %d times across replicas, want 1", ids[i], n)
		}
	}
	// The send time recorded by the sender reaches OnFinal on the receiver: shared.
	rec := stored(t, receiver.store, ids[0])
	if rec.SentAt.IsZero() {
		t.Error("the record has no send time")
	}

	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Errorf("keys %v, want one per message", keys)
	}
	for _, k := range keys {
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("key %s has TTL %v, want (0, 1h]", k, ttl)
		}
		if !strings.Contains(k, "{SM") {
			t.Errorf("key %s has no hash tag of its message id", k)
		}
		vals, err := rdb.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range vals {
			for _, n := range []string{recipient[2:], twiliotest.ToUndeliveredUnreachable[2:]} {
				if strings.Contains(k, n) || strings.Contains(v, n) {
					t.Errorf("key %s field %s = %q holds the phone number %s", k, f, v, n)
				}
			}
		}
	}
}

func TestRedisConcurrentFinals(t *testing.T) {
	rs := redistest.Start(t)
	s, err := statusredis.New(rs.Client(), statusredis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		finals int
	)
	states := []connector.DeliveryState{connector.DeliveryDelivered, connector.DeliveryUndelivered, connector.DeliverySent, connector.DeliveryQueued}
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := s.Merge(context.Background(), deliverystatus.Record{
				Status: connector.MessageStatus{MessageID: "SMrace", State: states[i%len(states)]}, CheckedAt: time.Now()})
			if err != nil {
				t.Error(err)
				return
			}
			if m.BecameFinal {
				mu.Lock()
				finals++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if finals != 1 {
		t.Errorf("%d merges made the state final, want exactly 1", finals)
	}
	if ttl := rs.Client().PTTL(context.Background(), s.Key("SMrace")).Val(); ttl <= deliverystatus.DefaultTTL-time.Minute {
		t.Errorf("TTL %v, want the default %v", ttl, deliverystatus.DefaultTTL)
	}
}
