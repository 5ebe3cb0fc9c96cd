package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sms-connector/sms-connector/conformance"
	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/console"
	"github.com/sms-connector/sms-connector/connector/twilio"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	"github.com/sms-connector/sms-connector/internal/contract"
	"github.com/sms-connector/sms-connector/internal/testutil"
	"github.com/sms-connector/sms-connector/server"
)

// TestMain fails the package's tests if a goroutine (a server, a client) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sendTo is the recipient of the Send rules: Twilio's magic valid number, accepted by the
// emulator.
const sendTo = "+15005550006"

// serveConnector serves c with server.New on loopback, with defaultConfig as the server's
// default configuration, and returns a client connection to it. setup, when set, adjusts the
// server before it serves.
func serveConnector(t *testing.T, c connector.SmsConnector, defaultConfig json.RawMessage, setup func(*server.Server)) *grpc.ClientConn {
	t.Helper()
	srv, err := server.New(server.Options{Connector: c, DefaultConfig: defaultConfig})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return testutil.Dial(t, l.Addr().String())
}

// twilioSandboxConfig is a configuration for the emulator's sandbox account, sending from
// Twilio's magic valid sender, with a template for every usage type: the binary's --sandbox
// configuration.
func twilioSandboxConfig(t *testing.T) json.RawMessage {
	t.Helper()
	var ts []map[string]string
	for _, u := range connector.UsageTypes() {
		ts = append(ts, map[string]string{"usageType": string(u), "content": fmt.Sprintf("[sandbox] Your %s verification code is {{code}}.", u)})
	}
	raw, err := json.Marshal(map[string]any{
		"accountSID": twiliotest.SandboxAccountSID,
		"authToken":  twiliotest.SandboxAuthToken,
		"from":       twiliotest.FromValid,
		"templates":  ts,
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// served is a real connector behind a real server, with what it delivered.
type served struct {
	cc        *grpc.ClientConn
	delivered func() []string // the recipients of the messages delivered, in order
}

// serveTwilio serves the Twilio connector against the emulator, with the sandbox
// configuration as the server's default.
func serveTwilio(t *testing.T, setup func(*server.Server)) served {
	t.Helper()
	emu := twiliotest.NewServer()
	t.Cleanup(emu.Close)
	c, err := twilio.New(twilio.Options{APIURL: emu.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	cc := serveConnector(t, c, twilioSandboxConfig(t), setup)
	return served{cc: cc, delivered: func() []string {
		var to []string
		for _, m := range emu.Messages() {
			to = append(to, m.To)
		}
		return to
	}}
}

// serveConsole serves the console connector writing into a buffer, with its default
// configuration as the server's default.
func serveConsole(t *testing.T, setup func(*server.Server)) served {
	t.Helper()
	var buf testutil.Buffer
	c := console.New(console.Options{Writer: &buf})
	cc := serveConnector(t, c, console.DefaultConfig(), setup)
	return served{cc: cc, delivered: func() []string {
		var to []string
		for line := range strings.Lines(buf.String()) {
			var m struct {
				To string `json:"to"`
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("the console connector wrote a line that is not JSON: %q", line)
			}
			to = append(to, m.To)
		}
		return to
	}}
}

// TestServedConnectorsConform runs the check, sends included, against the Twilio and console
// connectors served by server.New: every rule must pass, and the only message delivered must
// be the one the Send rule sent (requests that must fail deliver nothing).
func TestServedConnectorsConform(t *testing.T) {
	pluginHealth := func(s *server.Server) {
		s.Health().SetServingStatus("plugin", healthpb.HealthCheckResponse_SERVING)
	}
	cases := []struct {
		name   string
		serve  func(*testing.T, func(*server.Server)) served
		setup  func(*server.Server)
		health string
	}{
		{name: "twilio", serve: serveTwilio},
		{name: "console", serve: serveConsole},
		{name: "twilio service health", serve: serveTwilio, health: server.ServiceName},
		{name: "console plugin health", serve: serveConsole, setup: pluginHealth, health: "plugin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.serve(t, tc.setup)
			rep := conformance.Check(t.Context(), s.cc, conformance.Options{SendTo: sendTo, HealthService: tc.health})
			if len(rep.Results) != len(conformance.Rules()) {
				t.Errorf("the report has %d results, want one per rule (%d)", len(rep.Results), len(conformance.Rules()))
			}
			for _, r := range rep.Results {
				if r.Outcome != conformance.Pass {
					t.Errorf("%s", r)
				}
			}
			if got := s.delivered(); len(got) != 1 || got[0] != sendTo {
				t.Errorf("the check must deliver exactly one message, to %s (the Send rule's); delivered to %q", sendTo, got)
			}
			if t.Failed() {
				t.Logf("report:\n%s", rep)
			}
		})
	}
}

// TestWithoutSendToSkipsSends checks that without a phone number nothing is sent, the Send
// rules (and the status of the message they would send) are skipped and say why, and the
// report still passes.
func TestWithoutSendToSkipsSends(t *testing.T) {
	s := serveConsole(t, nil)
	rep := conformance.Check(t.Context(), s.cc, conformance.Options{})
	if rep.Failed() {
		t.Errorf("the check must pass the console connector without sends, got:\n%s", rep)
	}
	skipped := []string{"Send/DefaultConfig", "Send/ExpiredDeadline", contract.RuleStatusOfSent}
	for _, rule := range skipped {
		r, ok := rep.Result(rule)
		if !ok {
			t.Fatalf("the report has no rule %s:\n%s", rule, rep)
		}
		if r.Outcome != conformance.Skip || !strings.Contains(r.Message, "no phone number was given") {
			t.Errorf("without Options.SendTo, %s must be skipped saying no phone number was given, got %q", rule, r)
		}
	}
	if got := s.delivered(); len(got) != 0 {
		t.Errorf("without Options.SendTo the check must deliver nothing, delivered to %q", got)
	}
	if rep.Count(conformance.Skip) != len(skipped) || rep.Count(conformance.Pass) != len(conformance.Rules())-len(skipped) {
		t.Errorf("want every rule but %q to pass, got:\n%s", skipped, rep)
	}
}

// TestCancelledCheckFails checks that a check whose context has ended fails every rule rather
// than passing by default.
func TestCancelledCheckFails(t *testing.T) {
	s := serveConsole(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rep := conformance.Check(ctx, s.cc, conformance.Options{SendTo: sendTo})
	if rep.Count(conformance.Fail) != len(conformance.Rules()) {
		t.Errorf("every rule of a check whose context has ended must fail, got:\n%s", rep)
	}
	if r := rep.Results[0]; !strings.Contains(r.Message, "not run: the check ended first") {
		t.Errorf("a rule not run must say so, got %q", r)
	}
}

// TestReportString checks the report's rendering: one line per rule, then the summary.
func TestReportString(t *testing.T) {
	rep := conformance.Report{Results: []conformance.Result{
		{Rule: "Health", Outcome: conformance.Pass, Message: "ok"},
		{Rule: "Send/DefaultConfig", Outcome: conformance.Skip, Message: "no number"},
		{Rule: "Metadata", Outcome: conformance.Fail, Message: "conformance: broken"},
	}}
	want := "PASS Health: ok\n" +
		"SKIP Send/DefaultConfig: no number\n" +
		"FAIL Metadata: conformance: broken\n" +
		"conformance: 3 rules: 1 passed, 1 failed, 1 skipped\n"
	if got := rep.String(); got != want {
		t.Errorf("Report.String:\n%s\nwant:\n%s", got, want)
	}
	if !rep.Failed() {
		t.Error("Report.Failed must be true with a failed rule")
	}
}

// TestRulesAreUnique checks that rule names, which name results, are unique.
func TestRulesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range conformance.Rules() {
		if seen[r] {
			t.Errorf("the rule %s is listed twice", r)
		}
		seen[r] = true
	}
}
