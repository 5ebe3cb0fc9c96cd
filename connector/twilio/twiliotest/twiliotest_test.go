package twiliotest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	twilio "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	twilioApi "github.com/twilio/twilio-go/rest/api/v2010"
	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	recipient = "+14155550123"
	// Well-formed Messaging Service and API key SIDs.
	serviceA = "MG0123456789abcdef0123456789abcdef"
	serviceB = "MGfedcba9876543210fedcba9876543210"
	apiKey   = "SK0123456789abcdef0123456789abcdef"
	apiKeyPw = "keysecretkeysecretkeysecretkeyse"
	otherAC  = "ACffffffffffffffffffffffffffffffff"
)

var smsSID = regexp.MustCompile(`^SM[0-9a-f]{32}$`)

// recorder is a RoundTripper that sends to the emulator, optionally with a context (twilio-go
// itself passes none), and remembers the headers of the last response.
type recorder struct {
	rewriteHost
	ctx context.Context

	mu   sync.Mutex
	last http.Header
}

func (rt *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if rt.ctx != nil {
		r = r.WithContext(rt.ctx)
	}
	resp, err := rt.rewriteHost.RoundTrip(r)
	if resp != nil {
		rt.mu.Lock()
		rt.last = resp.Header.Clone()
		rt.mu.Unlock()
	}
	return resp, err
}

func (rt *recorder) header() http.Header {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.last
}

// dial returns a real twilio-go client for srv, authenticated as user:pass and addressing
// accountSID in its request paths, and the RoundTripper it uses.
func dial(t *testing.T, srv *twiliotest.Server, ctx context.Context, accountSID, user, pass string) (*twilio.RestClient, *recorder) {
	t.Helper()
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	rt := &recorder{rewriteHost: rewriteHost{target: target, next: tr}, ctx: ctx}
	c := &client.Client{
		Credentials: client.NewCredentials(user, pass),
		HTTPClient:  &http.Client{Transport: rt},
	}
	c.SetAccountSid(accountSID)
	return twilio.NewRestClientWithParams(twilio.ClientParams{Client: c}), rt
}

// sandboxClient is dial with the sandbox account's own credentials.
func sandboxClient(t *testing.T, srv *twiliotest.Server) (*twilio.RestClient, *recorder) {
	t.Helper()
	return dial(t, srv, nil, twiliotest.SandboxAccountSID, twiliotest.SandboxAccountSID, twiliotest.SandboxAuthToken)
}

// newServer starts an emulator that the test closes.
func newServer(t *testing.T, opts ...twiliotest.Option) *twiliotest.Server {
	t.Helper()
	srv := twiliotest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// params builds CreateMessageParams from the fields tests vary.
func params(to, from, body string) *twilioApi.CreateMessageParams {
	p := &twilioApi.CreateMessageParams{}
	if to != "" {
		p.SetTo(to)
	}
	if from != "" {
		p.SetFrom(from)
	}
	if body != "" {
		p.SetBody(body)
	}
	return p
}

// restError asserts that err is a *client.TwilioRestError with the given status and code.
func restError(t *testing.T, err error, status, code int) {
	t.Helper()
	terr, ok := errors.AsType[*client.TwilioRestError](err)
	if !ok {
		t.Fatalf("err = %v (%T), want *client.TwilioRestError %d/%d", err, err, status, code)
	}
	if terr.Status != status || terr.Code != code {
		t.Fatalf("err = %d/%d %q, want %d/%d", terr.Status, terr.Code, terr.Message, status, code)
	}
	if want := fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code); terr.MoreInfo != want {
		t.Errorf("MoreInfo = %q, want %q", terr.MoreInfo, want)
	}
	if terr.Message == "" {
		t.Error("Message is empty")
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func TestCreateMessageAccepted(t *testing.T) {
	const ownNumber = "+14155550100"
	tests := []struct {
		name         string
		params       *twilioApi.CreateMessageParams
		wantSegments int
		wantMedia    int
		check        func(t *testing.T, m twiliotest.Message)
	}{
		{name: "magic sender", params: params(recipient, twiliotest.FromValid, "Your code is 123456"), wantSegments: 1},
		{name: "own number", params: params(recipient, ownNumber, "code 1"), wantSegments: 1},
		{name: "alphanumeric sender", params: params(recipient, "Acme Inc", "code 1"), wantSegments: 1},
		{name: "GSM-7 160", params: params(recipient, twiliotest.FromValid, strings.Repeat("a", 160)), wantSegments: 1},
		{name: "GSM-7 161", params: params(recipient, twiliotest.FromValid, strings.Repeat("a", 161)), wantSegments: 2},
		{name: "GSM-7 extension 80", params: params(recipient, twiliotest.FromValid, strings.Repeat("€", 80)), wantSegments: 1},
		{name: "GSM-7 extension 81", params: params(recipient, twiliotest.FromValid, strings.Repeat("€", 81)), wantSegments: 2},
		{name: "UCS-2 70", params: params(recipient, twiliotest.FromValid, strings.Repeat("ж", 70)), wantSegments: 1},
		{name: "UCS-2 71", params: params(recipient, twiliotest.FromValid, strings.Repeat("ж", 71)), wantSegments: 2},
		{name: "UCS-2 astral 35", params: params(recipient, twiliotest.FromValid, strings.Repeat("😀", 35)), wantSegments: 1},
		{name: "UCS-2 astral 36", params: params(recipient, twiliotest.FromValid, strings.Repeat("😀", 36)), wantSegments: 2},
		{name: "1600 GSM-7 chars", params: params(recipient, twiliotest.FromValid, strings.Repeat("a", 1600)), wantSegments: 11},
		{name: "1600 UTF-16 units", params: params(recipient, twiliotest.FromValid, strings.Repeat("😀", 800)), wantSegments: 24},
		{
			name:         "media without body",
			params:       params(recipient, twiliotest.FromValid, "").SetMediaUrl([]string{"https://example.com/a.png"}),
			wantSegments: 1,
			wantMedia:    1,
		},
		{
			name: "optional parameters recorded",
			params: params(recipient, twiliotest.FromValid, "code 1").
				SetValidityPeriod(300).SetStatusCallback("https://example.com/cb").SetRiskCheck("disable"),
			wantSegments: 1,
			check: func(t *testing.T, m twiliotest.Message) {
				if m.ValidityPeriod != 300 || m.StatusCallback != "https://example.com/cb" || m.RiskCheck != "disable" {
					t.Errorf("recorded %+v, want ValidityPeriod 300, StatusCallback, RiskCheck disable", m)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, twiliotest.WithSenders(ownNumber))
			rest, _ := sandboxClient(t, srv)
			before := time.Now().UTC().Truncate(time.Second)
			msg, err := rest.Api.CreateMessage(tc.params)
			if err != nil {
				t.Fatal(err)
			}
			sid := deref(msg.Sid)
			if !smsSID.MatchString(sid) {
				t.Errorf("Sid = %q, want SM + 32 lowercase hex", sid)
			}
			if got := deref(msg.Status); got != "queued" {
				t.Errorf("Status = %q, want queued", got)
			}
			if got, want := deref(msg.NumSegments), fmt.Sprint(tc.wantSegments); got != want {
				t.Errorf("NumSegments = %q, want %q", got, want)
			}
			if got, want := deref(msg.NumMedia), fmt.Sprint(tc.wantMedia); got != want {
				t.Errorf("NumMedia = %q, want %q", got, want)
			}
			if deref(msg.From) != deref(tc.params.From) || deref(msg.To) != recipient || deref(msg.Body) != deref(tc.params.Body) {
				t.Errorf("from/to/body = %q/%q/%q, want the request's", deref(msg.From), deref(msg.To), deref(msg.Body))
			}
			if msg.MessagingServiceSid != nil || msg.Price != nil || msg.ErrorCode != nil || msg.DateSent != nil {
				t.Errorf("messaging_service_sid/price/error_code/date_sent not null: %+v", msg)
			}
			if deref(msg.AccountSid) != twiliotest.SandboxAccountSID || deref(msg.Direction) != "outbound-api" ||
				deref(msg.ApiVersion) != "2010-04-01" || deref(msg.PriceUnit) != "USD" {
				t.Errorf("constant fields wrong: %+v", msg)
			}
			if want := "/2010-04-01/Accounts/" + twiliotest.SandboxAccountSID + "/Messages/" + sid + ".json"; deref(msg.Uri) != want {
				t.Errorf("Uri = %q, want %q", deref(msg.Uri), want)
			}
			created, err := time.Parse(time.RFC1123Z, deref(msg.DateCreated))
			if err != nil || created.Before(before) || !strings.HasSuffix(deref(msg.DateCreated), " +0000") {
				t.Errorf("DateCreated = %q (%v), want RFC 1123 +0000 not before %v", deref(msg.DateCreated), err, before)
			}

			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("Messages() has %d, want 1", len(msgs))
			}
			m := msgs[0]
			if m.Sid != sid || m.AccountSid != twiliotest.SandboxAccountSID || m.To != recipient ||
				m.From != deref(tc.params.From) || m.Body != deref(tc.params.Body) || m.Status != "queued" ||
				m.NumSegments != tc.wantSegments || m.NumMedia != tc.wantMedia || !m.DateCreated.Equal(created) {
				t.Errorf("recorded %+v, want it to match the response %+v", m, msg)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
			if n := srv.Requests(); n != 1 {
				t.Errorf("Requests() = %d, want 1", n)
			}
		})
	}
}

func TestMessagingService(t *testing.T) {
	tests := []struct {
		name     string
		opts     []twiliotest.Option
		service  string
		from     string
		wantCode int // 0: accepted
	}{
		{name: "any well-formed by default", service: serviceA},
		{name: "registered", opts: []twiliotest.Option{twiliotest.WithMessagingServices(serviceA)}, service: serviceA},
		{name: "with From", service: serviceA, from: twiliotest.FromValid},
		{name: "not registered", opts: []twiliotest.Option{twiliotest.WithMessagingServices(serviceA)}, service: serviceB, wantCode: 21705},
		{name: "malformed", service: "MG123", wantCode: 21705},
		{name: "wrong prefix", service: "PN0123456789abcdef0123456789abcdef", wantCode: 21705},
		{name: "empty option list keeps default", opts: []twiliotest.Option{twiliotest.WithMessagingServices()}, service: serviceB},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.opts...)
			rest, _ := sandboxClient(t, srv)
			p := params(recipient, tc.from, "Your code is 123456").SetMessagingServiceSid(tc.service)
			msg, err := rest.Api.CreateMessage(p)
			if tc.wantCode != 0 {
				restError(t, err, 400, tc.wantCode)
				if n := len(srv.Messages()); n != 0 {
					t.Errorf("Messages() has %d, want 0", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if deref(msg.Status) != "accepted" || deref(msg.MessagingServiceSid) != tc.service ||
				deref(msg.From) != tc.from || (tc.from == "" && msg.From != nil) {
				t.Errorf("status/service/from = %q/%q/%v, want accepted/%q/%q",
					deref(msg.Status), deref(msg.MessagingServiceSid), msg.From, tc.service, tc.from)
			}
			if deref(msg.NumSegments) != "0" {
				t.Errorf("NumSegments = %q, want \"0\" (no sender picked yet)", deref(msg.NumSegments))
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || msgs[0].MessagingServiceSid != tc.service || msgs[0].From != tc.from ||
				msgs[0].Status != "accepted" || msgs[0].NumSegments != 1 {
				t.Errorf("Messages() = %+v", msgs)
			}
		})
	}
}

func TestCreateMessageRejected(t *testing.T) {
	long := strings.Repeat("a", 1601)
	tests := []struct {
		name     string
		params   *twilioApi.CreateMessageParams
		wantCode int
	}{
		// Validation, in Twilio's order.
		{"no To", params("", twiliotest.FromValid, "hi"), 21604},
		{"no To and no Body", params("", twiliotest.FromValid, ""), 21604},
		{"no Body", params(recipient, twiliotest.FromValid, ""), 21602},
		{"no Body and bad To", params("12", twiliotest.FromValid, ""), 21602},
		{"no From", params(recipient, "", "hi"), 21603},
		{"no From and bad To", params("12", "", "hi"), 21603},
		{"To without plus", params("14155550123", twiliotest.FromValid, "hi"), 21211},
		{"To with leading zero", params("+04155550123", twiliotest.FromValid, "hi"), 21211},
		{"To too short", params("+123456", twiliotest.FromValid, "hi"), 21211},
		{"To too long", params("+1234567890123456", twiliotest.FromValid, "hi"), 21211},
		{"To with letters", params("+1415555O123", twiliotest.FromValid, "hi"), 21211},
		{"bad To before bad service", params("12", "", "hi").SetMessagingServiceSid("MG1"), 21211},
		{"bad service before bad From", params(recipient, "x", "hi").SetMessagingServiceSid("MG1"), 21705},
		{"From malformed", params(recipient, "+1-415", "hi"), 21212},
		{"From alphanumeric too long", params(recipient, "Acme Company", "hi"), 21212},
		{"From alphanumeric digits only", params(recipient, "12345", "hi"), 21212},
		{"From alphanumeric bad character", params(recipient, "Acme-Inc", "hi"), 21212},
		{"From not owned", params(recipient, "+14155550100", "hi"), 21606},
		{"Body over 1600", params(recipient, twiliotest.FromValid, long), 21617},
		{"Body over 1600 UTF-16 units", params(recipient, twiliotest.FromValid, strings.Repeat("😀", 800)+"a"), 21617},
		{"long Body before magic From", params(recipient, twiliotest.FromQueueFull, long), 21617},
		{"ValidityPeriod 0", params(recipient, twiliotest.FromValid, "hi").SetValidityPeriod(0), 21624},
		{"ValidityPeriod 36001", params(recipient, twiliotest.FromValid, "hi").SetValidityPeriod(36001), 21624},
		{"ValidityPeriod negative", params(recipient, twiliotest.FromValid, "hi").SetValidityPeriod(-5), 21624},
		// Magic numbers.
		{"magic From invalid", params(recipient, twiliotest.FromInvalid, "hi"), 21212},
		{"magic From not owned", params(recipient, twiliotest.FromNotOwned, "hi"), 21606},
		{"magic From queue full", params(recipient, twiliotest.FromQueueFull, "hi"), 21611},
		{"magic To invalid", params(twiliotest.ToInvalid, twiliotest.FromValid, "hi"), 21211},
		{"magic To unreachable", params(twiliotest.ToUnreachable, twiliotest.FromValid, "hi"), 21612},
		{"magic To geo permission", params(twiliotest.ToNoGeoPermission, twiliotest.FromValid, "hi"), 21408},
		{"magic To opted out", params(twiliotest.ToOptedOut, twiliotest.FromValid, "hi"), 21610},
		{"magic To not mobile", params(twiliotest.ToNotMobile, twiliotest.FromValid, "hi"), 21614},
		{"magic To landline", params(twiliotest.ToLandline, twiliotest.FromValid, "hi"), 21635},
		{"magic To with service", params(twiliotest.ToOptedOut, "", "hi").SetMessagingServiceSid(serviceA), 21610},
		{"magic From before magic To", params(twiliotest.ToOptedOut, twiliotest.FromQueueFull, "hi"), 21611},
	}
	srv := newServer(t)
	rest, _ := sandboxClient(t, srv)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.Reset()
			_, err := rest.Api.CreateMessage(tc.params)
			restError(t, err, 400, tc.wantCode)
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("Messages() has %d, want 0", n)
			}
			if n := srv.Requests(); n != 1 {
				t.Errorf("Requests() = %d, want 1", n)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	const (
		customAC  = "AC11111111111111111111111111111111"
		customTok = "22222222222222222222222222222222"
	)
	tests := []struct {
		name       string
		opts       []twiliotest.Option
		account    string // the account in the request path
		user, pass string
		wantStatus int // 0: accepted
		wantCode   int
	}{
		{name: "sandbox account", account: twiliotest.SandboxAccountSID,
			user: twiliotest.SandboxAccountSID, pass: twiliotest.SandboxAuthToken},
		{name: "wrong token", account: twiliotest.SandboxAccountSID,
			user: twiliotest.SandboxAccountSID, pass: "wrong", wantStatus: 401, wantCode: 20003},
		{name: "unknown user", account: twiliotest.SandboxAccountSID,
			user: otherAC, pass: twiliotest.SandboxAuthToken, wantStatus: 401, wantCode: 20003},
		{name: "no credentials", account: twiliotest.SandboxAccountSID, wantStatus: 401, wantCode: 20003},
		{name: "other account in path", account: otherAC,
			user: twiliotest.SandboxAccountSID, pass: twiliotest.SandboxAuthToken, wantStatus: 404, wantCode: 20404},
		{name: "API key", opts: []twiliotest.Option{twiliotest.WithAPIKey(apiKey, apiKeyPw)},
			account: twiliotest.SandboxAccountSID, user: apiKey, pass: apiKeyPw},
		{name: "API key wrong secret", opts: []twiliotest.Option{twiliotest.WithAPIKey(apiKey, apiKeyPw)},
			account: twiliotest.SandboxAccountSID, user: apiKey, pass: twiliotest.SandboxAuthToken, wantStatus: 401, wantCode: 20003},
		{name: "API key not configured", account: twiliotest.SandboxAccountSID,
			user: apiKey, pass: apiKeyPw, wantStatus: 401, wantCode: 20003},
		{name: "API key other account in path", opts: []twiliotest.Option{twiliotest.WithAPIKey(apiKey, apiKeyPw)},
			account: otherAC, user: apiKey, pass: apiKeyPw, wantStatus: 404, wantCode: 20404},
		{name: "custom account", opts: []twiliotest.Option{twiliotest.WithAccount(customAC, customTok)},
			account: customAC, user: customAC, pass: customTok},
		{name: "custom account rejects sandbox", opts: []twiliotest.Option{twiliotest.WithAccount(customAC, customTok)},
			account: twiliotest.SandboxAccountSID, user: twiliotest.SandboxAccountSID, pass: twiliotest.SandboxAuthToken,
			wantStatus: 401, wantCode: 20003},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.opts...)
			rest, _ := dial(t, srv, nil, tc.account, tc.user, tc.pass)
			msg, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, "hi"))
			if tc.wantStatus != 0 {
				restError(t, err, tc.wantStatus, tc.wantCode)
				if n := len(srv.Messages()); n != 0 {
					t.Errorf("Messages() has %d, want 0", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if deref(msg.AccountSid) != tc.account || srv.Messages()[0].AccountSid != tc.account {
				t.Errorf("AccountSid = %q, recorded %q, want %q", deref(msg.AccountSid), srv.Messages()[0].AccountSid, tc.account)
			}
		})
	}
}

// TestWireFormat checks what twilio-go does not: headers, exact error JSON, JSON types.
func TestWireFormat(t *testing.T) {
	srv := newServer(t)
	messagesURL := srv.URL + "/2010-04-01/Accounts/" + twiliotest.SandboxAccountSID + "/Messages.json"
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}

	do := func(t *testing.T, method, target string, form url.Values, auth bool) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, target, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth {
			req.SetBasicAuth(twiliotest.SandboxAccountSID, twiliotest.SandboxAuthToken)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	errorJSON := func(status, code int, msg string) string {
		return fmt.Sprintf(`{"code":%d,"message":%q,"more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`,
			code, msg, code, status)
	}
	valid := url.Values{"To": {recipient}, "From": {twiliotest.FromValid}, "Body": {"hi"}}

	tests := []struct {
		name       string
		method     string
		url        string
		form       url.Values
		auth       bool
		wantStatus int
		wantBody   string // exact, when set
		wantHeader map[string]string
	}{
		{name: "unauthenticated", method: "POST", url: messagesURL, form: valid, wantStatus: 401,
			wantBody:   `{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}`,
			wantHeader: map[string]string{"Content-Type": "application/json", "WWW-Authenticate": `Basic realm="Twilio API"`}},
		{name: "unknown path", method: "POST", url: srv.URL + "/2010-04-01/Accounts/" + twiliotest.SandboxAccountSID + "/Calls.json",
			auth: true, wantStatus: 404,
			wantBody: errorJSON(404, 20404, "The requested resource /2010-04-01/Accounts/"+twiliotest.SandboxAccountSID+"/Calls.json was not found")},
		{name: "root", method: "GET", url: srv.URL + "/", wantStatus: 404,
			wantBody: errorJSON(404, 20404, "The requested resource / was not found")},
		{name: "other account", method: "POST", url: srv.URL + "/2010-04-01/Accounts/" + otherAC + "/Messages.json",
			form: valid, auth: true, wantStatus: 404,
			wantBody: errorJSON(404, 20404, "The requested resource /2010-04-01/Accounts/"+otherAC+"/Messages.json was not found")},
		{name: "GET", method: "GET", url: messagesURL, auth: true, wantStatus: 405,
			wantBody: errorJSON(405, 20004, "Method not allowed"), wantHeader: map[string]string{"Allow": "POST"}},
		{name: "validation error", method: "POST", url: messagesURL, form: url.Values{"From": {twiliotest.FromValid}},
			auth: true, wantStatus: 400, wantBody: errorJSON(400, 21604, "A 'To' phone number is required."),
			wantHeader: map[string]string{"Content-Type": "application/json"}},
		{name: "body too large", method: "POST", url: messagesURL,
			form: url.Values{"To": {recipient}, "From": {twiliotest.FromValid}, "Body": {strings.Repeat("a", 70_000)}},
			auth: true, wantStatus: 413, wantHeader: map[string]string{"Content-Type": "application/json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, tc.url, tc.form, tc.auth)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Errorf("body = %s\nwant   %s", body, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}

	t.Run("message resource", func(t *testing.T) {
		form := url.Values{"To": {recipient}, "MessagingServiceSid": {serviceA}, "Body": {"hi"}}
		resp, body := do(t, "POST", messagesURL, form, true)
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var res map[string]any
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"from", "price", "error_code", "error_message", "date_sent"} {
			if v, ok := res[k]; !ok || v != nil {
				t.Errorf("%s = %v (present %v), want null", k, v, ok)
			}
		}
		for k, want := range map[string]string{"num_segments": "0", "num_media": "0", "status": "accepted",
			"messaging_service_sid": serviceA, "direction": "outbound-api", "api_version": "2010-04-01"} {
			if got, ok := res[k].(string); !ok || got != want {
				t.Errorf("%s = %#v, want the string %q", k, res[k], want)
			}
		}
		date := regexp.MustCompile(`^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$`)
		if !date.MatchString(fmt.Sprint(res["date_created"])) || res["date_created"] != res["date_updated"] {
			t.Errorf("date_created = %v, date_updated = %v, want equal Twilio-style dates", res["date_created"], res["date_updated"])
		}
		uris, _ := res["subresource_uris"].(map[string]any)
		if !strings.HasSuffix(fmt.Sprint(uris["media"]), "/Media.json") {
			t.Errorf("subresource_uris = %v", res["subresource_uris"])
		}
	})
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault twiliotest.Fault
		check func(t *testing.T, msg *twilioApi.ApiV2010Message, err error, h http.Header)
	}{
		{
			name:  "too many requests",
			fault: twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests, RetryAfter: 1500 * time.Millisecond},
			check: func(t *testing.T, _ *twilioApi.ApiV2010Message, err error, h http.Header) {
				restError(t, err, 429, 20429)
				if got := h.Get("Retry-After"); got != "2" {
					t.Errorf("Retry-After = %q, want 2 (rounded up)", got)
				}
			},
		},
		{
			name:  "too many requests without Retry-After",
			fault: twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests},
			check: func(t *testing.T, _ *twilioApi.ApiV2010Message, err error, h http.Header) {
				restError(t, err, 429, 20429)
				if got, ok := h["Retry-After"]; ok {
					t.Errorf("Retry-After = %q, want none", got)
				}
			},
		},
		{
			name:  "server error HTML",
			fault: twiliotest.Fault{Kind: twiliotest.FaultServerErrorHTML},
			check: func(t *testing.T, _ *twilioApi.ApiV2010Message, err error, h http.Header) {
				htmlError(t, err, h, 502)
			},
		},
		{
			name:  "server error HTML 503 with Retry-After",
			fault: twiliotest.Fault{Kind: twiliotest.FaultServerErrorHTML, Status: 503, RetryAfter: 3 * time.Second},
			check: func(t *testing.T, _ *twilioApi.ApiV2010Message, err error, h http.Header) {
				htmlError(t, err, h, 503)
				if got := h.Get("Retry-After"); got != "3" {
					t.Errorf("Retry-After = %q, want 3", got)
				}
			},
		},
		{
			name:  "server error JSON",
			fault: twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON},
			check: func(t *testing.T, _ *twilioApi.ApiV2010Message, err error, _ http.Header) {
				restError(t, err, 500, 20500)
			},
		},
		{
			name:  "server error JSON 503",
			fault: twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON, Status: 503},
			check: func(t *testing.T, _ *twilioApi.ApiV2010Message, err error, _ http.Header) {
				restError(t, err, 503, 20500)
			},
		},
		{
			name:  "connection reset",
			fault: twiliotest.Fault{Kind: twiliotest.FaultConnectionReset},
			check: func(t *testing.T, _ *twilioApi.ApiV2010Message, err error, _ http.Header) {
				t.Logf("reset seen as: %v", err)
				if _, ok := errors.AsType[*url.Error](err); !ok {
					t.Fatalf("err = %v (%T), want *url.Error", err, err)
				}
				if _, ok := errors.AsType[*client.TwilioRestError](err); ok {
					t.Errorf("err = %v, want no TwilioRestError", err)
				}
			},
		},
		{
			name:  "redirect",
			fault: twiliotest.Fault{Kind: twiliotest.FaultRedirect},
			check: func(t *testing.T, msg *twilioApi.ApiV2010Message, err error, _ http.Header) {
				if err != nil || msg == nil {
					t.Fatalf("msg, err = %v, %v; want success", msg, err)
				}
				if msg.Sid != nil || msg.Status != nil {
					t.Errorf("Sid, Status = %v, %v; want nil", msg.Sid, msg.Status)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			rest, rt := sandboxClient(t, srv)
			srv.InjectFault(tc.fault, 1)
			msg, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, "hi"))
			tc.check(t, msg, err, rt.header())
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("faulted request recorded: Messages() has %d", n)
			}
			// The fault is used up: the next request goes through.
			if _, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, "hi")); err != nil {
				t.Fatalf("request after the fault: %v", err)
			}
			if n, m := srv.Requests(), len(srv.Messages()); n != 2 || m != 1 {
				t.Errorf("Requests(), len(Messages()) = %d, %d; want 2, 1", n, m)
			}
		})
	}
}

// htmlError asserts a load balancer's HTML error: not a TwilioRestError, but an error.
func htmlError(t *testing.T, err error, h http.Header, status int) {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want an error")
	}
	if _, ok := errors.AsType[*client.TwilioRestError](err); ok {
		t.Errorf("err = %v, want no TwilioRestError for an HTML body", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(status)) {
		t.Errorf("err = %v, want it to mention %d", err, status)
	}
	if got := h.Get("Content-Type"); got != "text/html" {
		t.Errorf("Content-Type = %q, want text/html", got)
	}
}

func TestFaultQueue(t *testing.T) {
	srv := newServer(t)
	rest, _ := sandboxClient(t, srv)
	send := func() error {
		_, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, "hi"))
		return err
	}
	code := func(err error) int {
		if err == nil {
			return 0
		}
		if terr, ok := errors.AsType[*client.TwilioRestError](err); ok {
			return terr.Code
		}
		return -1
	}

	t.Run("first in first out", func(t *testing.T) {
		srv.Reset()
		srv.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests}, 2)
		srv.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON}, 1)
		srv.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON}, 0) // no-op
		var got []int
		for range 4 {
			got = append(got, code(send()))
		}
		if want := []int{20429, 20429, 20500, 0}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("codes = %v, want %v", got, want)
		}
	})
	t.Run("until cleared", func(t *testing.T) {
		srv.Reset()
		srv.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON}, -1)
		srv.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests}, 1) // behind a permanent fault
		for range 3 {
			if c := code(send()); c != 20500 {
				t.Fatalf("code = %d, want 20500", c)
			}
		}
		srv.ClearFaults()
		if err := send(); err != nil {
			t.Fatalf("after ClearFaults: %v", err)
		}
	})
	t.Run("reset forgets", func(t *testing.T) {
		srv.Reset()
		srv.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultServerErrorJSON}, -1)
		if err := send(); err == nil {
			t.Fatal("want the fault")
		}
		srv.SetLatency(time.Hour)
		srv.Reset()
		if err := send(); err != nil {
			t.Fatalf("after Reset: %v", err)
		}
		if n, m := srv.Requests(), len(srv.Messages()); n != 1 || m != 1 {
			t.Errorf("Requests(), len(Messages()) = %d, %d; want 1, 1", n, m)
		}
	})
	t.Run("unknown kind panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("InjectFault with the zero Kind did not panic")
			}
		}()
		srv.InjectFault(twiliotest.Fault{}, 1)
	})
}

func TestLatency(t *testing.T) {
	t.Run("delays the response", func(t *testing.T) {
		srv := newServer(t)
		rest, _ := sandboxClient(t, srv)
		srv.SetLatency(100 * time.Millisecond)
		start := time.Now()
		if _, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, "hi")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("response after %v, want at least 100ms", d)
		}
	})
	t.Run("client deadline", func(t *testing.T) {
		srv := twiliotest.NewServer()
		defer srv.Close()
		srv.SetLatency(time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		rest, _ := dial(t, srv, ctx, twiliotest.SandboxAccountSID, twiliotest.SandboxAccountSID, twiliotest.SandboxAuthToken)
		_, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, "hi"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if n, m := srv.Requests(), len(srv.Messages()); n != 1 || m != 0 {
			t.Errorf("Requests(), len(Messages()) = %d, %d; want 1, 0", n, m)
		}
		closeQuickly(t, srv)
	})
	t.Run("close aborts waiting requests", func(t *testing.T) {
		srv := twiliotest.NewServer()
		defer srv.Close()
		srv.SetLatency(time.Hour)
		rest, _ := sandboxClient(t, srv)
		errc := make(chan error, 1)
		go func() {
			_, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, "hi"))
			errc <- err
		}()
		for srv.Requests() == 0 {
			time.Sleep(time.Millisecond)
		}
		closeQuickly(t, srv)
		if err := <-errc; err == nil {
			t.Error("request in flight at Close succeeded, want an error")
		}
	})
}

// closeQuickly closes srv and fails if that takes long.
func closeQuickly(t *testing.T, srv *twiliotest.Server) {
	t.Helper()
	start := time.Now()
	srv.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestConcurrentUse(t *testing.T) {
	const n = 50
	var hooked atomic.Int32
	srv := newServer(t, twiliotest.WithOnMessage(func(twiliotest.Message) { hooked.Add(1) }))
	rest, _ := sandboxClient(t, srv)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { // readers and writers of the state, alongside the requests
		for {
			select {
			case <-stop:
				return
			default:
				_, _ = srv.Messages(), srv.Requests()
				srv.SetLatency(0)
				srv.ClearFaults()
			}
		}
	})
	errs := make(chan error, n)
	var senders sync.WaitGroup
	for i := range n {
		senders.Go(func() {
			_, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, fmt.Sprintf("code %d", i)))
			errs <- err
		})
	}
	senders.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	msgs := srv.Messages()
	if len(msgs) != n || srv.Requests() != n || hooked.Load() != n {
		t.Fatalf("Messages() %d, Requests() %d, OnMessage calls %d; want %d each", len(msgs), srv.Requests(), hooked.Load(), n)
	}
	sids, bodies := map[string]bool{}, map[string]bool{}
	for _, m := range msgs {
		sids[m.Sid], bodies[m.Body] = true, true
	}
	if len(sids) != n || len(bodies) != n {
		t.Errorf("%d distinct SIDs and %d distinct bodies, want %d", len(sids), len(bodies), n)
	}
}

func TestOnMessage(t *testing.T) {
	var srv *twiliotest.Server
	var seen []twiliotest.Message
	srv = newServer(t, twiliotest.WithOnMessage(func(m twiliotest.Message) {
		seen = srv.Messages() // must not deadlock: the hook runs without the lock
		if seen[len(seen)-1] != m {
			t.Errorf("hook got %+v, last recorded %+v", m, seen[len(seen)-1])
		}
	}))
	rest, _ := sandboxClient(t, srv)
	msg, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, "Your code is 987654"))
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].Sid != deref(msg.Sid) || seen[0].Body != "Your code is 987654" {
		t.Errorf("hook saw %+v before the response", seen)
	}
}

func TestMessagesReturnsCopies(t *testing.T) {
	srv := newServer(t)
	rest, _ := sandboxClient(t, srv)
	if _, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, "hi")); err != nil {
		t.Fatal(err)
	}
	srv.Messages()[0].Body = "changed"
	if got := srv.Messages()[0].Body; got != "hi" {
		t.Errorf("Body = %q after changing a returned copy, want hi", got)
	}
}

func TestLifecycle(t *testing.T) {
	t.Run("serve on own listener", func(t *testing.T) {
		srv := twiliotest.NewUnstartedServer()
		defer srv.Close()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv.Serve(l)
		if want := "http://" + l.Addr().String(); srv.URL != want {
			t.Errorf("URL = %q, want %q", srv.URL, want)
		}
		rest, _ := sandboxClient(t, srv)
		if _, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, "hi")); err != nil {
			t.Fatal(err)
		}
		closeQuickly(t, srv)
		srv.Close() // idempotent
		if _, err := rest.Api.CreateMessage(params(recipient, twiliotest.FromValid, "hi")); err == nil {
			t.Error("request after Close succeeded")
		}
	})
	t.Run("close while a connection is idle", func(t *testing.T) {
		srv := twiliotest.NewServer()
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		closeQuickly(t, srv)
	})
	t.Run("close unstarted", func(t *testing.T) {
		srv := twiliotest.NewUnstartedServer()
		srv.Close()
		defer func() {
			if recover() == nil {
				t.Error("Start after Close did not panic")
			}
		}()
		srv.Start()
	})
	t.Run("start twice", func(t *testing.T) {
		srv := twiliotest.NewServer()
		defer srv.Close()
		defer func() {
			if recover() == nil {
				t.Error("second Start did not panic")
			}
		}()
		srv.Start()
	})
}

func TestHandler(t *testing.T) {
	srv := twiliotest.NewUnstartedServer()
	defer srv.Close()
	form := url.Values{"To": {recipient}, "From": {twiliotest.FromValid}, "Body": {"hi"}}
	newRequest := func() *http.Request {
		r := httptest.NewRequest("POST", "/2010-04-01/Accounts/"+twiliotest.SandboxAccountSID+"/Messages.json",
			strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(twiliotest.SandboxAccountSID, twiliotest.SandboxAuthToken)
		return r
	}

	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, newRequest())
	if w.Code != http.StatusCreated || len(srv.Messages()) != 1 {
		t.Fatalf("status %d, %d messages: %s", w.Code, len(srv.Messages()), w.Body)
	}

	// Without a connection to hijack, a reset aborts the handler as net/http expects.
	srv.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultConnectionReset}, 1)
	func() {
		defer func() {
			if r := recover(); r != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler", r)
			}
		}()
		srv.Handler().ServeHTTP(httptest.NewRecorder(), newRequest())
	}()
}
