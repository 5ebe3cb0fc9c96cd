package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/sdk"
	"github.com/sms-connector/sms-connector/telemetry"
)

// The metrics acceptance test: the binary's whole stack (package sdk's Run with this binary's
// flags and the Twilio connector, against an emulator) serves --metrics-listen; the test
// drives successes, a Twilio error, and refusals of the abuse guard, scrapes /metrics twice,
// and checks that every series exists, moved, and carries no number and no secret.

// Distinctive values of this test: no label may carry them.
const (
	metricsAccount = "AC" + "feedfacefeedfacefeedfacefeedface"
	metricsToken   = "MeTrIcSsEcReT0MeTrIcSsEcReT0MeT1"
)

// logLines collects the JSON log lines of the stack and signals the ones a test waits for.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   strings.Builder
}

// Write parses whole lines; the logger writes one line per call.
func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raw.Write(p)
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			l.lines = append(l.lines, m)
		}
	}
	return len(p), nil
}

// address waits for the line with message msg and returns its "address" field.
func (l *logLines) address(t *testing.T, msg string, exited <-chan int) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		l.mu.Lock()
		for _, m := range l.lines {
			if m["msg"] == msg {
				a, _ := m["address"].(string)
				l.mu.Unlock()
				return a
			}
		}
		l.mu.Unlock()
		select {
		case code := <-exited:
			t.Fatalf("the stack exited with %d before logging %q:\n%s", code, msg, l.String())
		case <-deadline:
			t.Fatalf("no %q log line:\n%s", msg, l.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String()
}

// series is one scrape: the value of each series by its name and sorted labels
// (`name{a="1",b="2"}`); a histogram contributes its _count and _sum.
type series map[string]float64

// scrape GETs /metrics and parses it.
func scrape(t *testing.T, hc *http.Client, addr string) (series, []*model.LabelPair) {
	t.Helper()
	resp, err := hc.Get("http://" + addr + telemetry.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := series{}
	var labels []*model.LabelPair
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				labels = append(labels, &model.LabelPair{Name: model.LabelName(l.GetName()), Value: model.LabelValue(l.GetValue())})
			}
			slices.Sort(ls)
			key := name + "{" + strings.Join(ls, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[strings.Replace(key, "{", "_count{", 1)] = float64(m.GetHistogram().GetSampleCount())
				out[strings.Replace(key, "{", "_sum{", 1)] = m.GetHistogram().GetSampleSum()
			case m.GetUntyped() != nil:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out, labels
}

// phoneLike reports whether a label value could be a phone number: 7 digits or more.
func phoneLike(v string) bool {
	return len(nonDigits.ReplaceAllString(v, "")) >= 7
}

var nonDigits = regexp.MustCompile(`\D`)

func TestMetricsAcceptance(t *testing.T) {
	// The vendor: an emulator with an account of the test's own, whose token is the secret.
	emu := twiliotest.NewServer(twiliotest.WithAccount(metricsAccount, metricsToken))
	defer emu.Close()
	dir := t.TempDir()
	// The guard allows 2 sends per recipient and hour and never to +44.
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"denyCountries":["+44"],"recipient":[{"max":2,"window":"1h"}],"prefix":[{"max":1000,"window":"1h"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}

	// The default config, for the Logto bridge's sends (they carry none).
	defaultCfg := filepath.Join(dir, "twilio.json")
	if err := os.WriteFile(defaultCfg, []byte(`{"accountSID":"`+metricsAccount+`","authToken":"`+metricsToken+`","from":"`+twiliotest.FromValid+
		`","templates":[{"usageType":"Generic","content":"Your code is {{code}}"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &logLines{}
	exited := make(chan int, 1)
	go func() {
		exited <- sdk.Run(ctx, newBinary(), []string{
			"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
			"--config", defaultCfg, "--twilio-api-url", emu.URL, "--policy", policy, "--log-level", "info",
		}, func(string) string { return "" }, io.Discard, logs)
	}()
	metricsAddr := logs.address(t, telemetry.MetricsServingMessage, exited)
	grpcAddr := logs.address(t, sdk.ServingMessage, exited)
	httpAddr := logs.address(t, sdk.HTTPServingMessage, exited)
	defer func() {
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("the stack exited with %d:\n%s", code, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("the stack did not stop")
		}
	}()

	cc, err := grpc.NewClient("passthrough:///"+grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := smsv1.NewSmsConnectorClient(cc)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	cfg, err := structpb.NewStruct(map[string]any{
		"accountSID": metricsAccount, "authToken": metricsToken, "from": twiliotest.FromValid,
		"templates": []any{map[string]any{"usageType": "Generic", "content": "Your code is {{code}}"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	send := func(to string, usage smsv1.UsageType) error {
		_, err := client.SendMessage(ctx, &smsv1.SendMessageRequest{
			To: to, UsageType: usage, Payload: &smsv1.Payload{Code: "135790"}, Config: cfg,
		})
		return err
	}
	// bridgeSend sends through the Logto bridge (POST /logto/sms) and returns its HTTP status.
	bridgeSend := func(to string) int {
		t.Helper()
		resp, err := hc.Post("http://"+httpAddr+"/logto/sms", "application/json",
			strings.NewReader(`{"to":"`+to+`","type":"SignIn","payload":{"code":"135790"}}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// phase sends: two successes and a refusal (the third send) to one recipient, a Twilio
	// error (21211), a refused destination (+44), and parallel successes to fresh numbers.
	phase := func(n int, recipient string) {
		t.Helper()
		for i := range 3 {
			err := send(recipient, smsv1.UsageType_USAGE_TYPE_SIGN_IN)
			if (i < 2) != (err == nil) {
				t.Fatalf("phase %d, send %d to one recipient: %v", n, i+1, err)
			}
		}
		if err := send(twiliotest.ToInvalid, smsv1.UsageType_USAGE_TYPE_REGISTER); err == nil {
			t.Fatalf("phase %d: the send to Twilio's invalid number succeeded", n)
		}
		if err := send("+447911123456", smsv1.UsageType_USAGE_TYPE_REGISTER); err == nil {
			t.Fatalf("phase %d: the send to a denied country succeeded", n)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- send(fmt.Sprintf("+1415555%02d%02d", n, i), smsv1.UsageType_USAGE_TYPE_FORGOT_PASSWORD)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("phase %d, parallel send: %v", n, err)
			}
		}
		// Through the Logto bridge: a success and a refused destination.
		if code := bridgeSend(fmt.Sprintf("+1415556%02d00", n)); code != http.StatusOK {
			t.Fatalf("phase %d: bridge send answered %d", n, code)
		}
		if code := bridgeSend("+447911123457"); code == http.StatusOK {
			t.Fatalf("phase %d: the bridge send to a denied country succeeded", n)
		}
	}

	phase(1, "+14155550123")
	first, _ := scrape(t, hc, metricsAddr)
	phase(2, "+14155550124")
	second, labels := scrape(t, hc, metricsAddr)

	const id = `connector="twilio-short-message-service"`
	sendMethod := `grpc_method="SendMessage",grpc_service="connector.sms.v1.SmsConnector",grpc_type="unary"`
	// Each series must exist in both scrapes and have grown by want from one to the other.
	moved := []struct {
		key  string
		want float64
	}{
		{`grpc_server_started_total{` + sendMethod + `}`, 13},
		{`grpc_server_handled_total{grpc_code="OK",` + sendMethod + `}`, 10},
		{`grpc_server_handled_total{grpc_code="ResourceExhausted",` + sendMethod + `}`, 1},
		{`grpc_server_handled_total{grpc_code="InvalidArgument",` + sendMethod + `}`, 1},
		{`grpc_server_handled_total{grpc_code="FailedPrecondition",` + sendMethod + `}`, 1},
		{`grpc_server_msg_received_total{` + sendMethod + `}`, 13},
		{`grpc_server_msg_sent_total{` + sendMethod + `}`, 10},
		{`grpc_server_handling_seconds_count{` + sendMethod + `}`, 13},
		{`sms_connector_messages_total{` + id + `,country_code="1",outcome="ok",transport="grpc",usage_type="SignIn"}`, 2},
		{`sms_connector_messages_total{` + id + `,country_code="1",outcome="ok",transport="grpc",usage_type="ForgotPassword"}`, 8},
		{`sms_connector_messages_total{` + id + `,country_code="1",outcome="RATE_LIMITED",transport="grpc",usage_type="SignIn"}`, 1},
		{`sms_connector_messages_total{` + id + `,country_code="1",outcome="INVALID_PHONE_NUMBER",transport="grpc",usage_type="Register"}`, 1},
		{`sms_connector_messages_total{` + id + `,country_code="44",outcome="COUNTRY_NOT_PERMITTED",transport="grpc",usage_type="Register"}`, 1},
		{`sms_connector_messages_total{` + id + `,country_code="1",outcome="ok",transport="http",usage_type="SignIn"}`, 1},
		{`sms_connector_messages_total{` + id + `,country_code="44",outcome="COUNTRY_NOT_PERMITTED",transport="http",usage_type="SignIn"}`, 1},
		{`sms_connector_rate_limit_refusals_total{` + id + `,reason="RATE_LIMITED",transport="grpc"}`, 1},
		{`sms_connector_rate_limit_refusals_total{` + id + `,reason="COUNTRY_NOT_PERMITTED",transport="grpc"}`, 1},
		{`sms_connector_rate_limit_refusals_total{` + id + `,reason="COUNTRY_NOT_PERMITTED",transport="http"}`, 1},
		{`sms_connector_provider_errors_total{` + id + `,provider="twilio",provider_code="21211",reason="INVALID_PHONE_NUMBER"}`, 1},
		{`sms_connector_provider_request_duration_seconds_count{` + id + `,outcome="ok"}`, 11},
		{`sms_connector_provider_request_duration_seconds_count{` + id + `,outcome="INVALID_PHONE_NUMBER"}`, 1},
	}
	for _, m := range moved {
		a, ok1 := first[m.key]
		b, ok2 := second[m.key]
		switch {
		case !ok1 || !ok2:
			t.Errorf("%s: missing from a scrape (first %v, second %v)", m.key, ok1, ok2)
		case b-a != m.want:
			t.Errorf("%s: %v then %v, want it to grow by %v", m.key, a, b, m.want)
		}
	}
	if s := second[`sms_connector_provider_request_duration_seconds_sum{`+id+`,outcome="ok"}`]; s <= first[`sms_connector_provider_request_duration_seconds_sum{`+id+`,outcome="ok"}`] {
		t.Errorf("the provider latency histogram's sum did not grow")
	}
	inFlight := `sms_connector_sends_in_flight{` + id + `}`
	for i, s := range []series{first, second} {
		if v, ok := s[inFlight]; !ok || v != 0 {
			t.Errorf("scrape %d: %s = %v (present %v), want 0 once the sends returned", i+1, inFlight, v, ok)
		}
		for _, name := range []string{"go_goroutines{}", "process_resident_memory_bytes{}"} {
			if _, ok := s[name]; !ok {
				t.Errorf("scrape %d lacks %s", i+1, name)
			}
		}
	}
	// No label value is a phone number or carries the secret (or the account).
	for _, l := range labels {
		v := string(l.Value)
		if phoneLike(v) || strings.Contains(v, metricsToken) || strings.Contains(v, metricsAccount) || strings.Contains(v, "135790") {
			t.Errorf("label %s=%q looks like a phone number, a code or a secret", l.Name, v)
		}
	}
}
