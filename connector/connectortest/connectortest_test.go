package connectortest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"

	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/connectortest"
)

// TestMain fails the package's tests if a goroutine (a stalled Send) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// flaw names one way the reference connector can be broken on purpose, to prove that the suite
// catches it. flawNone is the conforming reference connector.
type flaw string

// The flaws. Each breaks exactly one rule of the contract, or of a Harness hook.
const (
	flawNone                   flaw = "none"
	flawNoGenericFallback      flaw = "noGenericFallback"      // only the exact usage type's template is used
	flawPlainErrors            flaw = "plainErrors"            // failures are errors.New, not *connector.Error
	flawMetadataNoEnglish      flaw = "metadataNoEnglish"      // Metadata.Name has no "en"
	flawIgnoresCancel          flaw = "ignoresCancel"          // a cancelled context is not checked before sending
	flawIgnoresStalledCancel   flaw = "ignoresStalledCancel"   // a Send blocked in the vendor waits it out when cancelled
	flawDuplicateIDs           flaw = "duplicateIDs"           // every receipt has the same MessageID
	flawWrongSegments          flaw = "wrongSegments"          // Receipt.Segments is always 1
	flawNoReceiptTo            flaw = "noReceiptTo"            // Receipt.To is left empty
	flawNoLengthLimit          flaw = "noLengthLimit"          // bodies over 1600 characters are sent
	flawValidateErrors         flaw = "validateErrors"         // ValidateConfig fails on a non-object instead of reporting it
	flawAcceptsMissingCode     flaw = "acceptsMissingCode"     // templates without {{code}} pass validation
	flawReexpands              flaw = "reexpands"              // the rendered body is rendered a second time
	flawIgnoresLocale          flaw = "ignoresLocale"          // the first template of the usage type is used whatever the locale
	flawConfigMissingAsInvalid flaw = "configMissingAsInvalid" // an empty config is INVALID_CONFIG, not CONFIG_MISSING
	flawDeliversStalled        flaw = "deliversStalled"        // the harness delivers a stalled request on release
	flawRejectsLinkTemplates   flaw = "rejectsLinkTemplates"   // templates with {{link}} and no {{code}} fail validation
	flawDropsLink              flaw = "dropsLink"              // {{link}} renders empty
	flawIgnoresPreferences     flaw = "ignoresPreferences"     // Payload.Locales is not tried after Payload.Locale
	flawSendsWithoutValue      flaw = "sendsWithoutValue"      // a template that carries neither the code nor the link is sent
	flawStatusWrongID          flaw = "statusWrongID"          // MessageStatus reports another message's id
	flawStatusFindsUnknown     flaw = "statusFindsUnknown"     // MessageStatus of an id never sent is a status, not MESSAGE_NOT_FOUND
)

// maxBody is the reference connector's body limit, the suite's default.
const maxBody = connectortest.DefaultMaxBodyLength

// memConnector is the reference in-memory connector: the smallest implementation of the
// contract, with an invented vendor whose configuration is {"account": "acct-<digits>",
// "templates": [...]}. It delivers into a slice, and can be stalled.
type memConnector struct {
	flaw flaw

	mu        sync.Mutex
	delivered []connectortest.Delivery
	sent      int
	gate      chan struct{}            // non-nil while stalled; closed on release
	abandoned []connectortest.Delivery // stalled requests whose Send gave up
	ids       map[string]bool          // the MessageIDs of the delivered messages
}

// MessageStatus reports a message the connector delivered as DELIVERED, and any other id as
// MESSAGE_NOT_FOUND.
func (c *memConnector) MessageStatus(_ context.Context, id string, _ json.RawMessage) (*connector.MessageStatus, error) {
	c.mu.Lock()
	known := c.ids[id]
	c.mu.Unlock()
	switch {
	case c.flaw == flawStatusFindsUnknown && !known:
		return &connector.MessageStatus{MessageID: id, State: connector.DeliveryQueued, VendorStatus: "queued"}, nil
	case !known:
		return nil, connector.Errorf(connector.ReasonMessageNotFound, "no message %q was delivered", id)
	case c.flaw == flawStatusWrongID:
		id = "mem-0"
	}
	return &connector.MessageStatus{MessageID: id, State: connector.DeliveryDelivered, VendorStatus: "delivered"}, nil
}

// memConfig is the reference connector's configuration.
type memConfig struct {
	Account   string               `json:"account"`
	Templates []connector.Template `json:"templates"`
}

var reAccount = regexp.MustCompile(`^acct-[0-9]+$`)

// parse validates raw and returns the configuration or its violations. Unlike Twilio, it does
// not require a Generic template, so the suite's TEMPLATE_NOT_FOUND rule is exercised here.
func (c *memConnector) parse(raw []byte) (*memConfig, []connector.Violation, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
		if c.flaw == flawValidateErrors {
			return nil, nil, errors.New("the config is not a JSON object")
		}
		return nil, []connector.Violation{{Field: "", Description: "must be a JSON object"}}, nil
	}
	var cfg memConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, []connector.Violation{{Field: "", Description: "has a field of the wrong type: " + err.Error()}}, nil
	}
	var vs []connector.Violation
	if !reAccount.MatchString(cfg.Account) {
		vs = append(vs, connector.Violation{Field: "account", Description: "must be acct- followed by digits"})
	}
	if len(cfg.Templates) == 0 {
		vs = append(vs, connector.Violation{Field: "templates", Description: "must list at least one template"})
	}
	for i, t := range cfg.Templates {
		if !t.UsageType.Valid() {
			vs = append(vs, connector.Violation{Field: fmt.Sprintf("templates[%d].usageType", i), Description: "is not a known usage type"})
		}
		switch {
		case c.flaw == flawAcceptsMissingCode:
		case c.flaw == flawRejectsLinkTemplates && !connector.HasCodePlaceholder(t.Content):
			vs = append(vs, connector.Violation{Field: fmt.Sprintf("templates[%d].content", i), Description: "does not contain {{code}}"})
		case !connector.HasCodeOrLinkPlaceholder(t.Content):
			vs = append(vs, connector.Violation{Field: fmt.Sprintf("templates[%d].content", i), Description: "contains neither {{code}} nor {{link}}"})
		}
	}
	if len(vs) > 0 {
		return nil, vs, nil
	}
	return &cfg, nil, nil
}

// ValidateConfig reports the problems of raw.
func (c *memConnector) ValidateConfig(_ context.Context, raw json.RawMessage) ([]connector.Violation, error) {
	_, vs, err := c.parse(raw)
	return vs, err
}

// Metadata describes the reference connector.
func (c *memConnector) Metadata(context.Context) (*connector.Metadata, error) {
	name := map[string]string{"en": "Memory", "fr": "Mémoire"}
	if c.flaw == flawMetadataNoEnglish {
		delete(name, "en")
	}
	return &connector.Metadata{
		ID:          "memory-sms",
		Target:      "memory",
		Name:        name,
		Description: map[string]string{"en": "Delivers into memory.", "fr": "Livre en mémoire."},
		FormItems: []connector.FormItem{
			{Key: "account", Label: "Account", Type: connector.FormItemText, Required: true},
			{Key: "templates", Label: "Templates", Type: connector.FormItemJSON, Required: true},
		},
		ConfigSchema: map[string]any{"type": "object", "required": []any{"account", "templates"}},
		ConfigTemplate: map[string]any{
			"account":   "acct-1",
			"templates": []any{map[string]any{"usageType": "Generic", "content": "Your code is {{code}}"}},
		},
		UsageTypes: connector.UsageTypes(),
	}, nil
}

// ctxErr returns the reason for a context that has ended, or nil.
func ctxErr(ctx context.Context) error {
	switch err := ctx.Err(); {
	case errors.Is(err, context.Canceled):
		return connector.Errorf(connector.ReasonCancelled, "the request was cancelled")
	case err != nil:
		return connector.Errorf(connector.ReasonProviderTimeout, "the request's deadline passed")
	}
	return nil
}

// Send delivers msg into memory.
func (c *memConnector) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	r, err := c.send(ctx, msg)
	if err != nil && c.flaw == flawPlainErrors {
		return nil, errors.New(err.Error())
	}
	return r, err
}

func (c *memConnector) send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	// Under the stall flaws, a Send reaches the stalled vendor even when its context ended
	// before it got there (a slow machine), so that the flaw shows whatever the timing.
	c.mu.Lock()
	stalled := c.gate != nil
	c.mu.Unlock()
	toStall := stalled && (c.flaw == flawIgnoresStalledCancel || c.flaw == flawDeliversStalled)
	if c.flaw != flawIgnoresCancel && !toStall {
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
	}
	if len(bytes.TrimSpace(msg.Config)) == 0 {
		if c.flaw == flawConfigMissingAsInvalid {
			return nil, &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "no config",
				Violations: []connector.Violation{{Field: "", Description: "is empty"}}}
		}
		return nil, connector.Errorf(connector.ReasonConfigMissing, "no config")
	}
	cfg, vs, err := c.parse(msg.Config)
	if err != nil {
		return nil, &connector.Error{Reason: connector.ReasonInvalidConfig, Message: err.Error(),
			Violations: []connector.Violation{{Description: err.Error()}}}
	}
	if len(vs) > 0 {
		return nil, &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "invalid config", Violations: vs}
	}
	t, err := c.selectTemplate(cfg.Templates, msg)
	if err != nil {
		return nil, err
	}
	if c.flaw != flawSendsWithoutValue {
		if err := connector.CheckCarries(t, msg.Payload); err != nil {
			return nil, err
		}
	}
	p := msg.Payload
	if c.flaw == flawDropsLink {
		p.Link = ""
	}
	body := connector.Render(t.Content, p)
	if c.flaw == flawReexpands {
		body = connector.Render(body, msg.Payload)
	}
	if len(utf16.Encode([]rune(body))) > maxBody && c.flaw != flawNoLengthLimit {
		return nil, connector.Errorf(connector.ReasonMessageTooLong, "the body is over %d characters", maxBody)
	}
	segments, enc := connector.CountSegments(body)
	if c.flaw == flawWrongSegments {
		segments = 1
	}

	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		_, hasDeadline := ctx.Deadline()
		if c.flaw == flawIgnoresStalledCancel && !hasDeadline {
			<-gate
		} else {
			select {
			case <-gate:
			case <-ctx.Done():
				c.mu.Lock()
				c.abandoned = append(c.abandoned, connectortest.Delivery{To: msg.To, Body: body})
				c.mu.Unlock()
				return nil, ctxErr(ctx)
			}
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent++
	id := fmt.Sprintf("mem-%d", c.sent)
	if c.flaw == flawDuplicateIDs {
		id = "mem-1"
	}
	c.delivered = append(c.delivered, connectortest.Delivery{To: msg.To, Body: body})
	if c.ids == nil {
		c.ids = make(map[string]bool)
	}
	c.ids[id] = true
	r := &connector.Receipt{MessageID: id, Status: "delivered", Segments: segments, Encoding: enc, To: msg.To}
	if c.flaw == flawNoReceiptTo {
		r.To = ""
	}
	return r, nil
}

// selectTemplate is connector.SelectTemplate, or a broken variant of it.
func (c *memConnector) selectTemplate(ts []connector.Template, msg *connector.Message) (*connector.Template, error) {
	switch c.flaw {
	case flawNoGenericFallback:
		ts = exactOnly(ts, msg.UsageType)
	case flawIgnoresLocale:
		for _, u := range []connector.UsageType{msg.UsageType, connector.UsageGeneric} {
			if only := exactOnly(ts, u); len(only) > 0 {
				return &only[0], nil
			}
		}
	}
	more := msg.Payload.Locales
	if c.flaw == flawIgnoresPreferences {
		more = nil
	}
	return connector.SelectTemplate(ts, msg.UsageType, msg.Payload.Locale, more...)
}

// exactOnly returns the templates of usage u.
func exactOnly(ts []connector.Template, u connector.UsageType) []connector.Template {
	var out []connector.Template
	for _, t := range ts {
		if t.UsageType == u {
			out = append(out, t)
		}
	}
	return out
}

// stall makes Sends wait until the returned release is called.
func (c *memConnector) stall() (release func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gate := make(chan struct{})
	c.gate = gate
	return sync.OnceFunc(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		close(gate)
		if c.flaw == flawDeliversStalled {
			c.delivered = append(c.delivered, c.abandoned...)
		}
		if c.gate == gate {
			c.gate = nil
		}
	})
}

// memHarness is the reference connector's Harness; it implements Staller.
type memHarness struct {
	c        *memConnector
	mu       sync.Mutex
	releases []func()
}

func (h *memHarness) MakeConnector(context.Context, *testing.T) (connector.SmsConnector, error) {
	return h.c, nil
}

func (h *memHarness) Config(t *testing.T, ts []connector.Template) json.RawMessage {
	b, err := json.Marshal(memConfig{Account: "acct-1", Templates: ts})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *memHarness) Delivered(*testing.T) []connectortest.Delivery {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return append([]connectortest.Delivery(nil), h.c.delivered...)
}

func (h *memHarness) InvalidConfigs(*testing.T) []connectortest.InvalidConfig {
	tpl := `[{"usageType":"Generic","content":"{{code}}"}]`
	return []connectortest.InvalidConfig{
		{Name: "malformed account", Config: json.RawMessage(`{"account":"nope","templates":` + tpl + `}`), Field: "account"},
		{Name: "missing account", Config: json.RawMessage(`{"templates":` + tpl + `}`), Field: "account"},
		{Name: "unknown usage type", Config: json.RawMessage(`{"account":"acct-1","templates":[{"usageType":"Nope","content":"{{code}}"}]}`),
			Field: "templates[0].usageType"},
	}
}

func (h *memHarness) Stall(*testing.T) func() {
	release := h.c.stall()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releases = append(h.releases, release)
	return release
}

func (h *memHarness) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.releases {
		r()
	}
}

// maker returns a HarnessMaker for the reference connector broken by f.
func maker(f flaw) connectortest.HarnessMaker {
	return func(context.Context, *testing.T) (connectortest.Harness, error) {
		return &memHarness{c: &memConnector{flaw: f}}, nil
	}
}

// TestReferenceConnector runs the suite against the reference connector, which must pass.
func TestReferenceConnector(t *testing.T) {
	connectortest.RunConformanceTests(t, maker(flawNone))
}

// flawEnv names the flaw TestConformanceHelper runs the suite against, in a subprocess.
const flawEnv = "CONNECTORTEST_FLAW"

// TestConformanceHelper is not a test of its own: TestSuiteCatchesBrokenConnectors runs it in
// a subprocess with flawEnv set, so that the suite can fail there without failing here.
func TestConformanceHelper(t *testing.T) {
	f, ok := os.LookupEnv(flawEnv)
	if !ok {
		t.Skip("runs only in a subprocess of TestSuiteCatchesBrokenConnectors")
	}
	connectortest.RunConformanceTests(t, maker(flaw(f)))
}

// TestSuiteCatchesBrokenConnectors runs the suite, in a subprocess, against the reference
// connector broken in one way at a time, and checks that it fails the rule that was broken
// with a message that names it; and that it passes the unbroken reference there too, so a
// failure cannot come from the subprocess itself.
func TestSuiteCatchesBrokenConnectors(t *testing.T) {
	if _, ok := os.LookupEnv(flawEnv); ok {
		t.Skip("not inside the subprocess")
	}
	cases := []struct {
		flaw    flaw
		failing string // the subtest that must fail, below TestConformanceHelper/
		message string // what its failure must say
		timeout string // the subprocess's -test.timeout
	}{
		{flaw: flawNone},
		{flaw: flawNoGenericFallback, failing: "TemplateSelection/GenericFallback/Register",
			message: "Send of a Register message with no Register template must fall back to the Generic template, and must succeed, got reason TEMPLATE_NOT_FOUND"},
		{flaw: flawPlainErrors, failing: "Errors/ConfigMissing/nil",
			message: "Send with an empty Config (nil) must fail with a *connector.Error of reason CONFIG_MISSING, got a *errors.errorString that is not a *connector.Error"},
		{flaw: flawMetadataNoEnglish, failing: "Metadata/Name",
			message: `Metadata.Name (name) must have a non-empty "en" entry`},
		{flaw: flawIgnoresCancel, failing: "Context/Cancelled",
			message: "Send with an already cancelled context must fail with reason CANCELLED, got success"},
		{flaw: flawIgnoresStalledCancel, failing: "Context/StalledCancel", timeout: "6s",
			message: "Send must return as soon as its context is cancelled or its deadline passes"},
		{flaw: flawDuplicateIDs, failing: "Concurrency",
			message: "every accepted message must have a unique MessageID"},
		{flaw: flawWrongSegments, failing: "Receipt/GSM-7_two_segments",
			message: "Receipt.Segments must be the segment count of the delivered body (connector.CountSegments: 2), got 1"},
		{flaw: flawNoReceiptTo, failing: "Receipt/GSM-7_single_segment",
			message: `Send of a valid message: Receipt.To (to) must echo the recipient in E.164, "+14155550123", got ""`},
		{flaw: flawNoLengthLimit, failing: "Errors/MessageTooLong",
			message: "Send whose rendered body is 1601 characters, over the limit of 1600 (DefaultMaxBodyLength; a connector with another limit says so with BodyLimiter), must fail with reason MESSAGE_TOO_LONG, got success"},
		{flaw: flawValidateErrors, failing: "ValidateConfig/NotAnObject/array",
			message: `ValidateConfig must answer a config that is not a JSON object (the config "[]") with violations, not fail`},
		{flaw: flawAcceptsMissingCode, failing: "ValidateConfig/MissingCode/second_template",
			message: "ValidateConfig must flag a template with neither {{code}} nor {{link}}, it reports no violation for the config"},
		{flaw: flawReexpands, failing: "Rendering/code_that_looks_like_a_placeholder",
			message: `must not expand placeholders inside the code (a rendered value is never rendered again); Send must deliver the body "{{locale}} en", delivered "en en"`},
		{flaw: flawIgnoresLocale, failing: "TemplateSelection/Locale/exact",
			message: `Send of a SignIn message for locale "fr" and preferences [] must use the template of exactly that locale, and must deliver the body "signin/fr 123456", delivered "signin 123456"`},
		{flaw: flawRejectsLinkTemplates, failing: "ValidateConfig/Valid/link_template",
			message: `ValidateConfig must accept a valid config made by Harness.Config (link template: `},
		{flaw: flawDropsLink, failing: "Rendering/link_only",
			message: `must deliver the link of a link-only send in place of {{link}}; Send must deliver the body "Join Acme: https://example.com/invite?token=abc123", delivered "Join Acme: "`},
		{flaw: flawIgnoresPreferences, failing: "TemplateSelection/Locale/preference_list",
			message: `must try the preference list (Payload.Locales, ui_locales), and must deliver the body "signin/pt-BR 123456", delivered "signin 123456"`},
		{flaw: flawSendsWithoutValue, failing: "Errors/TemplateLacksValue/link-only_send,_code_template",
			message: `must fail with reason INVALID_REQUEST, got success`},
		{flaw: flawDeliversStalled, failing: "Context/StalledCancel",
			message: "2 were delivered since the stall (if one is the request Staller.Stall held, the Harness broke its rule: a stalled request is never delivered, even after release)"},
		{flaw: flawStatusWrongID, failing: "MessageStatus/SentMessage",
			message: `MessageStatus of the message Send just accepted: MessageStatus.MessageID (message_id) must be the id asked for, "mem-1", got "mem-0"`},
		{flaw: flawStatusFindsUnknown, failing: "MessageStatus/UnknownID",
			message: `MessageStatus of "SM00000000000000000000000000000000", an id no send returned must fail with reason MESSAGE_NOT_FOUND, got a status with state QUEUED`},
		{flaw: flawConfigMissingAsInvalid, failing: "Errors/ConfigMissing/empty",
			message: "Send with an empty Config (empty) must fail with reason CONFIG_MISSING, got reason INVALID_CONFIG"},
	}
	for _, tc := range cases {
		t.Run(string(tc.flaw), func(t *testing.T) {
			t.Parallel()
			timeout := tc.timeout
			if timeout == "" {
				timeout = "2m"
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0],
				"-test.run=^TestConformanceHelper$", "-test.v", "-test.count=1", "-test.timeout="+timeout)
			cmd.Env = append(os.Environ(), flawEnv+"="+string(tc.flaw))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("running the suite in a subprocess: %v", err)
			}
			if tc.flaw == flawNone {
				if err != nil || strings.Contains(string(out), "--- FAIL") {
					t.Fatalf("the suite must pass the reference connector in a subprocess; it failed (%v):\n%s", err, out)
				}
				if !strings.Contains(string(out), "--- PASS: TestConformanceHelper/Context/StalledCancel") {
					t.Errorf("the stalled-Send rules must run against a Staller harness; output:\n%s", out)
				}
				return
			}
			if err == nil {
				t.Fatalf("the suite passed a connector with the flaw %s; it must fail %s:\n%s", tc.flaw, tc.failing, out)
			}
			if want := "--- FAIL: TestConformanceHelper/" + tc.failing + " "; !strings.Contains(string(out), want) {
				t.Errorf("the suite must fail the subtest %s for the flaw %s; output:\n%s", tc.failing, tc.flaw, out)
			}
			if !strings.Contains(string(out), tc.message) {
				t.Errorf("the suite's failure for the flaw %s must say %q; output:\n%s", tc.flaw, tc.message, out)
			}
		})
	}
}
