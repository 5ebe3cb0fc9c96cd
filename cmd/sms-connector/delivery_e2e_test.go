package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/credentials/insecure"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliostatus"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/testutil/redistest"
	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
)

// These tests follow messages past SendMessage through the built binary and the Twilio
// emulator: the emulator's signed status callbacks reach the binary's --http-listen, the
// binary answers GetMessageStatus from its status store (shared through Redis across
// replicas) or from Twilio's Message resource, refuses callbacks it cannot verify, never
// moves a message back, and feeds undelivered outcomes to the abuse guard (docs/delivery-status.md,
// docs/delivery-callbacks.md).

// ordinaryTo is a number in another range than the emulator's magic numbers (+1500555…):
// its messages are delivered.
const ordinaryTo = "+14155550100"

// final reports whether s is a final delivery state.
func final(s smsv1.DeliveryState) bool {
	switch s {
	case smsv1.DeliveryState_DELIVERY_STATE_DELIVERED, smsv1.DeliveryState_DELIVERY_STATE_UNDELIVERED, smsv1.DeliveryState_DELIVERY_STATE_FAILED:
		return true
	}
	return false
}

// statusOf asks c for message id's status, failing the test on an error.
func statusOf(t *testing.T, c smsv1.SmsConnectorClient, id string) *smsv1.MessageStatus {
	t.Helper()
	st, err := c.GetMessageStatus(rpcCtx(t), &smsv1.GetMessageStatusRequest{MessageId: id})
	if err != nil {
		t.Fatalf("GetMessageStatus(%s): %v", id, err)
	}
	return st
}

// waitFinal polls c until message id's state is final, and returns that status; a minute
// without one fails the test (a guard against a hang).
func waitFinal(t *testing.T, c smsv1.SmsConnectorClient, id string) *smsv1.MessageStatus {
	t.Helper()
	var st *smsv1.MessageStatus
	waitFor(t, "a final state of "+id, func() bool {
		st = statusOf(t, c, id)
		return final(st.GetState())
	})
	return st
}

// send sends a SignIn code to to through c and returns the message id.
func send(t *testing.T, c smsv1.SmsConnectorClient, to string) string {
	t.Helper()
	resp, err := c.SendMessage(rpcCtx(t), sendReq(to))
	if err != nil {
		t.Fatalf("SendMessage to %s: %v", to, err)
	}
	return resp.GetMessageId()
}

// waitCallbacks waits until emu has posted every callback of the messages it accepted, and
// fails the test unless each was answered 204 (recorded).
func waitCallbacks(t *testing.T, emu *twiliotest.Server) []twiliotest.Callback {
	t.Helper()
	if err := emu.WaitCallbacks(rpcCtx(t)); err != nil {
		t.Fatalf("the emulator's callbacks: %v", err)
	}
	cbs := emu.Callbacks()
	if len(cbs) == 0 {
		t.Fatal("the emulator posted no callback")
	}
	for _, cb := range cbs {
		if cb.HTTPStatus != http.StatusNoContent {
			t.Errorf("callback %s %s answered %d (%s), want 204", cb.MessageSid, cb.Status, cb.HTTPStatus, cb.Err)
		}
	}
	return cbs
}

// captured is one callback request as the binary's public URL received it.
type captured struct {
	form      url.Values
	body      []byte
	signature string
}

// callbackProxy stands where a TLS-terminating proxy would, at the binary's --public-url: it
// forwards each request to the binary's --http-listen and keeps a copy, for replays.
type callbackProxy struct {
	*httptest.Server
	target string // http://host:port of --http-listen

	mu  sync.Mutex
	got []captured
}

// newCallbackProxy starts a proxy to the --http-listen address target (host:port).
func newCallbackProxy(t *testing.T, target string) *callbackProxy {
	t.Helper()
	p := &callbackProxy{target: "http://" + target}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form, _ := url.ParseQuery(string(body))
		p.mu.Lock()
		p.got = append(p.got, captured{form: form, body: body, signature: r.Header.Get(twiliostatus.SignatureHeader)})
		p.mu.Unlock()
		// The test may have ended (a callback after its last check): no t here.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		code, err := p.forward(ctx, r.URL.Path, body, r.Header.Get(twiliostatus.SignatureHeader), true)
		if err != nil {
			code = http.StatusBadGateway
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(p.Close)
	return p
}

// forward POSTs body to the binary's path with signature (none when sign is false) and
// returns the answer's status code.
func (p *callbackProxy) forward(ctx context.Context, path string, body []byte, signature string, sign bool) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.target+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sign {
		req.Header.Set(twiliostatus.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// post is forward from a test: a failure fails it.
func (p *callbackProxy) post(t *testing.T, path string, body []byte, signature string, sign bool) int {
	t.Helper()
	code, err := p.forward(rpcCtx(t), path, body, signature, sign)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return code
}

// captured returns the callback about message sid with status, as the proxy received it.
func (p *callbackProxy) captured(t *testing.T, sid, status string) captured {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.got {
		if c.form.Get("MessageSid") == sid && c.form.Get("MessageStatus") == status {
			return c
		}
	}
	t.Fatalf("no %q callback of %s was captured", status, sid)
	return captured{}
}

// callbackBinary starts the binary against emu with status callbacks through a callbackProxy
// (its --public-url) and extra flags, and connects a client.
func callbackBinary(t *testing.T, emu *twiliotest.Server, extra ...string) (*testbin.Process, smsv1.SmsConnectorClient, *callbackProxy) {
	t.Helper()
	httpAddr := freeAddr(t)
	proxy := newCallbackProxy(t, httpAddr)
	args := append([]string{"--config", twilioConfigFile(t), "--twilio-api-url", emu.URL, "--listen", "127.0.0.1:0",
		"--http-listen", httpAddr, "--public-url", proxy.URL}, extra...)
	p := startBinary(t, args...)
	_, c := clientTo(t, p.Addr, insecure.NewCredentials())
	return p, c, proxy
}

// deliveries sums the scraped series of name whose labels hold every one of labels
// (`state="DELIVERED"`).
func deliveries(s series, name string, labels ...string) float64 {
	sum := 0.0
	for k, v := range s {
		if !strings.HasPrefix(k, name+"{") {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(k, l)
		}
		if all {
			sum += v
		}
	}
	return sum
}

// TestDeliveryCallbacksSandbox: in --sandbox, the binary's own emulator calls the binary back
// at --public-url, and GetMessageStatus ends in each magic number's outcome.
func TestDeliveryCallbacksSandbox(t *testing.T) {
	httpAddr := freeAddr(t)
	p := startBinary(t, "--sandbox", "--listen", "127.0.0.1:0", "--http-listen", httpAddr, "--public-url", "http://"+httpAddr)
	_, c := clientTo(t, p.Addr, insecure.NewCredentials())

	cases := []struct {
		to     string
		state  smsv1.DeliveryState
		vendor string
		reason smsv1.ErrorReason
		code   string
	}{
		{ordinaryTo, smsv1.DeliveryState_DELIVERY_STATE_DELIVERED, "delivered", smsv1.ErrorReason_ERROR_REASON_UNSPECIFIED, ""},
		{twiliotest.ToUndeliveredUnreachable, smsv1.DeliveryState_DELIVERY_STATE_UNDELIVERED, "undelivered", smsv1.ErrorReason_ERROR_REASON_RECIPIENT_UNREACHABLE, "30003"},
		{twiliotest.ToUndeliveredUnknown, smsv1.DeliveryState_DELIVERY_STATE_UNDELIVERED, "undelivered", smsv1.ErrorReason_ERROR_REASON_INVALID_PHONE_NUMBER, "30005"},
		{twiliotest.ToUndeliveredLandline, smsv1.DeliveryState_DELIVERY_STATE_UNDELIVERED, "undelivered", smsv1.ErrorReason_ERROR_REASON_RECIPIENT_NOT_MOBILE, "30006"},
		{twiliotest.ToUndeliveredFiltered, smsv1.DeliveryState_DELIVERY_STATE_UNDELIVERED, "undelivered", smsv1.ErrorReason_ERROR_REASON_PROVIDER_REJECTED, "30007"},
		{twiliotest.ToFailed, smsv1.DeliveryState_DELIVERY_STATE_FAILED, "failed", smsv1.ErrorReason_ERROR_REASON_PROVIDER_REJECTED, "30008"},
	}
	for _, tc := range cases {
		t.Run(tc.to, func(t *testing.T) {
			id := send(t, c, tc.to)
			// The final state comes from a callback the binary verified, not from a fetch:
			// its log has the callback recorded (204) with that state; a read then answers it.
			want := `"http.status":204,"message_id":"` + id + `","state":"` + strings.TrimPrefix(tc.state.String(), "DELIVERY_STATE_") + `"`
			waitFor(t, "the binary's log of the final callback", func() bool { return strings.Contains(p.Logs.String(), want) })
			st := statusOf(t, c, id)
			if st.GetState() != tc.state || st.GetVendorStatus() != tc.vendor || st.GetErrorReason() != tc.reason || st.GetVendorCode() != tc.code {
				t.Errorf("status = %v %q %v %q, want %v %q %v %q", st.GetState(), st.GetVendorStatus(), st.GetErrorReason(), st.GetVendorCode(),
					tc.state, tc.vendor, tc.reason, tc.code)
			}
			if st.GetMessageId() != id || st.GetUpdateTime() == nil {
				t.Errorf("status = %v, want message id %s and an update time", st, id)
			}
		})
	}
}

// TestDeliveryStatusOnAnotherReplica: replica A sends and takes the callbacks; replica B,
// sharing A's Redis store, answers the final statuses from it without asking Twilio.
func TestDeliveryStatusOnAnotherReplica(t *testing.T) {
	srv := redistest.Start(t)
	emu := twiliotest.NewServer(twiliotest.WithCallbackDelay(0))
	defer emu.Close()
	store := "redis://" + srv.Addr
	secret := writeFile(t, "guard-secret", []byte(replicaSecret))
	shared := []string{"--store", store, "--guard-key-secret-file", secret}
	_, a, _ := callbackBinary(t, emu, shared...)
	b := startBinary(t, append([]string{"--config", twilioConfigFile(t), "--twilio-api-url", emu.URL, "--listen", "127.0.0.1:0"}, shared...)...)
	_, cb := clientTo(t, b.Addr, insecure.NewCredentials())

	delivered := send(t, a, ordinaryTo)
	undelivered := send(t, a, twiliotest.ToUndeliveredUnreachable)
	waitCallbacks(t, emu) // every callback landed on A (answered 204)

	before := emu.Requests()
	for _, tc := range []struct {
		id     string
		state  smsv1.DeliveryState
		reason smsv1.ErrorReason
		code   string
	}{
		{delivered, smsv1.DeliveryState_DELIVERY_STATE_DELIVERED, smsv1.ErrorReason_ERROR_REASON_UNSPECIFIED, ""},
		{undelivered, smsv1.DeliveryState_DELIVERY_STATE_UNDELIVERED, smsv1.ErrorReason_ERROR_REASON_RECIPIENT_UNREACHABLE, "30003"},
	} {
		st := statusOf(t, cb, tc.id)
		if st.GetState() != tc.state || st.GetErrorReason() != tc.reason || st.GetVendorCode() != tc.code {
			t.Errorf("replica B: %s = %v %v %q, want %v %v %q", tc.id, st.GetState(), st.GetErrorReason(), st.GetVendorCode(), tc.state, tc.reason, tc.code)
		}
	}
	if n := emu.Requests() - before; n != 0 {
		t.Errorf("replica B asked Twilio %d times; the shared store knew both final states", n)
	}
}

// TestDeliveryCallbackForgedRefused: a callback with a wrong signature, or none, is refused
// (403) and changes nothing; the same form correctly signed is recorded.
func TestDeliveryCallbackForgedRefused(t *testing.T) {
	// The emulator's own callbacks wait an hour: the message stays queued unless the test's
	// callbacks move it.
	emu := twiliotest.NewServer(twiliotest.WithCallbackDelay(time.Hour))
	defer emu.Close()
	_, c, proxy := callbackBinary(t, emu)

	id := send(t, c, ordinaryTo)
	if st := statusOf(t, c, id); st.GetState() != smsv1.DeliveryState_DELIVERY_STATE_QUEUED {
		t.Fatalf("status after the send = %v, want QUEUED", st.GetState())
	}
	form := url.Values{
		"AccountSid": {twiliotest.SandboxAccountSID}, "ApiVersion": {"2010-04-01"},
		"MessageSid": {id}, "SmsSid": {id}, "MessageStatus": {"delivered"}, "SmsStatus": {"delivered"},
		"To": {ordinaryTo}, "From": {twiliotest.FromValid},
	}
	body := []byte(form.Encode())
	callbackURL := proxy.URL + twiliostatus.Path
	good := twiliotest.Sign(twiliotest.SandboxAuthToken, callbackURL, form)
	for _, tc := range []struct {
		name      string
		signature string
		sign      bool
	}{
		{"unsigned", "", false},
		{"signed with another token", twiliotest.Sign("ffffffffffffffffffffffffffffffff", callbackURL, form), true},
		{"signed for another URL", twiliotest.Sign(twiliotest.SandboxAuthToken, "https://attacker.example"+twiliostatus.Path, form), true},
		{"signature of another form", twiliotest.Sign(twiliotest.SandboxAuthToken, callbackURL, url.Values{"MessageSid": {id}}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := proxy.post(t, twiliostatus.Path, body, tc.signature, tc.sign); code != http.StatusForbidden {
				t.Errorf("answer = %d, want 403", code)
			}
			if st := statusOf(t, c, id); st.GetState() != smsv1.DeliveryState_DELIVERY_STATE_QUEUED || st.GetVendorStatus() != "queued" {
				t.Errorf("status after a refused callback = %v %q, want QUEUED \"queued\"", st.GetState(), st.GetVendorStatus())
			}
		})
	}
	// The same form with Twilio's signature is taken: what the refusals refused was the signature.
	if code := proxy.post(t, twiliostatus.Path, body, good, true); code != http.StatusNoContent {
		t.Fatalf("a correctly signed callback: answer = %d, want 204", code)
	}
	if st := statusOf(t, c, id); st.GetState() != smsv1.DeliveryState_DELIVERY_STATE_DELIVERED {
		t.Errorf("status after the signed callback = %v, want DELIVERED", st.GetState())
	}
}

// TestDeliveryCallbackReplayed: a captured callback posted again, after the message was
// delivered, is accepted and changes nothing: the state never goes back and the delivery is
// counted once.
func TestDeliveryCallbackReplayed(t *testing.T) {
	emu := twiliotest.NewServer(twiliotest.WithCallbackDelay(0))
	defer emu.Close()
	metricsAddr := freeAddr(t)
	_, c, proxy := callbackBinary(t, emu, "--metrics-listen", metricsAddr)

	id := send(t, c, ordinaryTo)
	waitCallbacks(t, emu)
	if st := statusOf(t, c, id); st.GetState() != smsv1.DeliveryState_DELIVERY_STATE_DELIVERED {
		t.Fatalf("status after the callbacks = %v, want DELIVERED", st.GetState())
	}
	const name = "sms_connector_delivery_total"
	s, _ := scrape(t, http.DefaultClient, metricsAddr)
	if n := deliveries(s, name, `state="DELIVERED"`); n != 1 {
		t.Fatalf("%s{state=DELIVERED} = %v after the callbacks, want 1", name, n)
	}

	for _, status := range []string{"sent", "queued", "delivered", "sent"} {
		cb := proxy.captured(t, id, status)
		if code := proxy.post(t, twiliostatus.Path, cb.body, cb.signature, true); code != http.StatusNoContent {
			t.Errorf("replayed %q callback: answer = %d, want 204", status, code)
		}
		if st := statusOf(t, c, id); st.GetState() != smsv1.DeliveryState_DELIVERY_STATE_DELIVERED || st.GetVendorStatus() != "delivered" {
			t.Errorf("status after a replayed %q callback = %v %q, want DELIVERED \"delivered\"", status, st.GetState(), st.GetVendorStatus())
		}
	}
	s, _ = scrape(t, http.DefaultClient, metricsAddr)
	if n := deliveries(s, name, `state="DELIVERED"`); n != 1 {
		t.Errorf("%s{state=DELIVERED} = %v after the replays, want 1", name, n)
	}
}

// TestDeliveryStatusFetched: without callbacks, GetMessageStatus asks Twilio for the Message
// resource and answers what Twilio knows.
func TestDeliveryStatusFetched(t *testing.T) {
	t.Run("no --public-url", func(t *testing.T) {
		emu := twiliotest.NewServer(twiliotest.WithCallbackDelay(0))
		defer emu.Close()
		p := startBinary(t, "--config", twilioConfigFile(t), "--twilio-api-url", emu.URL, "--listen", "127.0.0.1:0")
		_, c := clientTo(t, p.Addr, insecure.NewCredentials())
		id := send(t, c, ordinaryTo)
		if m := emu.Messages(); len(m) != 1 || m[0].StatusCallback != "" {
			t.Fatalf("the emulator holds %+v, want one message without a StatusCallback", m)
		}
		before := emu.Requests()
		st := statusOf(t, c, id)
		if st.GetState() != smsv1.DeliveryState_DELIVERY_STATE_QUEUED || st.GetVendorStatus() != "queued" || st.GetMessageId() != id {
			t.Errorf("status = %v, want %s QUEUED \"queued\"", st, id)
		}
		if n := emu.Requests() - before; n != 1 {
			t.Errorf("GetMessageStatus made %d requests to Twilio, want 1 (the fetch)", n)
		}
	})
	t.Run("callbacks lost", func(t *testing.T) {
		// Twilio posted every callback, but to a public URL that never reached the binary:
		// the binary learns the final state from the fetch.
		emu := twiliotest.NewServer(twiliotest.WithCallbackDelay(0))
		defer emu.Close()
		lost := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		defer lost.Close()
		p := startBinary(t, "--config", twilioConfigFile(t), "--twilio-api-url", emu.URL, "--listen", "127.0.0.1:0",
			"--http-listen", freeAddr(t), "--public-url", lost.URL)
		_, c := clientTo(t, p.Addr, insecure.NewCredentials())
		id := send(t, c, twiliotest.ToUndeliveredLandline)
		waitCallbacks(t, emu)
		before := emu.Requests()
		st := statusOf(t, c, id)
		if st.GetState() != smsv1.DeliveryState_DELIVERY_STATE_UNDELIVERED || st.GetErrorReason() != smsv1.ErrorReason_ERROR_REASON_RECIPIENT_NOT_MOBILE || st.GetVendorCode() != "30006" {
			t.Errorf("status = %v %v %q, want UNDELIVERED RECIPIENT_NOT_MOBILE \"30006\"", st.GetState(), st.GetErrorReason(), st.GetVendorCode())
		}
		if n := emu.Requests() - before; n != 1 {
			t.Errorf("GetMessageStatus made %d requests to Twilio, want 1 (the fetch)", n)
		}
	})
}

// pumpingPolicy turns the delivery feedback on with a small minimum, and rate windows no
// test here reaches. Ranges leave out the last 4 digits: the emulator's magic numbers share
// +1500555, ordinaryTo is in +1415555.
const pumpingPolicy = `{"recipient":[{"max":1000,"window":"1h"}],"prefix":[{"max":1000,"window":"1h"}],"prefixDigits":4,
"deliveryFeedback":{"perRange":true,"minOutcomes":5,"maxUndeliveredShare":0.8,"window":"1h","cooldown":"1h"}}`

// TestDeliveryPumpingShutsTheRange: the pumping simulation through the binary. Messages to one
// range come back undelivered; once enough have, that range is refused RATE_LIMITED for the
// cool-down while another range, whose messages are delivered, keeps sending.
func TestDeliveryPumpingShutsTheRange(t *testing.T) {
	emu := twiliotest.NewServer(twiliotest.WithCallbackDelay(0))
	defer emu.Close()
	metricsAddr := freeAddr(t)
	_, c, _ := callbackBinary(t, emu, "--policy", writeFile(t, "policy.json", []byte(pumpingPolicy)), "--metrics-listen", metricsAddr)

	// Numbers whose failures blame the number (30003, 30005, 30006); a carrier's filter
	// (30007) or an unknown error (30008) blames no number and would not count.
	pumped := []string{twiliotest.ToUndeliveredUnreachable, twiliotest.ToUndeliveredUnknown, twiliotest.ToUndeliveredLandline,
		twiliotest.ToUndeliveredUnreachable, twiliotest.ToUndeliveredUnknown}
	legit := []string{"+14155550101", "+14155550102", "+14155550103"}
	var ids []string
	for i, to := range pumped {
		ids = append(ids, send(t, c, to)) // each passes: the range has not enough outcomes yet
		if i < len(legit) {
			ids = append(ids, send(t, c, legit[i]))
		}
	}
	waitCallbacks(t, emu)
	for _, id := range ids {
		waitFinal(t, c, id)
	}
	s, _ := scrape(t, http.DefaultClient, metricsAddr)
	if n := deliveries(s, "sms_connector_delivery_trips_total", `scope="range"`); n != 1 {
		t.Errorf("sms_connector_delivery_trips_total{scope=range} = %v, want 1", n)
	}

	// Another number of the pumped range, never sent to before, is refused.
	_, err := c.SendMessage(rpcCtx(t), sendReq("+15005550100"))
	if reasonOf(err) != "RATE_LIMITED" || !hasRetryInfo(err) {
		t.Errorf("a send to the pumped range: %v, want RATE_LIMITED with RetryInfo", err)
	}
	// The legitimate range still sends, to old and new numbers.
	for _, to := range []string{legit[0], "+14155550199"} {
		if _, err := c.SendMessage(rpcCtx(t), sendReq(to)); err != nil {
			t.Errorf("a send to the legitimate range (%s): %v", to, err)
		}
	}
}
