// Package connectortest is the conformance suite of connector.SmsConnector: every Go connector
// runs it in its own tests, so that the behaviour a platform relies on (metadata shape, config
// validation, template selection and rendering, error reasons, receipts, context handling,
// concurrency safety) is proven the same for every vendor, not re-tested by each.
//
// A connector's test provides a Harness, which makes the connector under test, builds
// configurations for it and reads back what it delivered, and calls RunConformanceTests:
//
//	func TestConformance(t *testing.T) {
//		connectortest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (connectortest.Harness, error) {
//			return newHarness(t), nil
//		})
//	}
//
// Each rule is a subtest that makes its own Harness, so subtests share no state and can be run
// alone with go test -run. A failure starts with "conformance:" and names the contract rule the
// connector broke, or the Harness hook that is the likely cause. The rules that need no Harness
// (Metadata, the judgement of ValidateConfig's answers, the receipt, the shape of an error) are
// the same rules, with the same names, that package conformance checks over the wire. The rules:
//
//   - Metadata: a non-empty ID; Name and Description with an "en" entry and BCP 47 keys
//     (connector.ValidLocale); unique, labelled, typed FormItems; a ConfigSchema with "type":
//     "object"; a ConfigTemplate; known, unrepeated UsageTypes.
//   - ValidateConfig: no violations for valid configurations and for Metadata.ConfigTemplate;
//     violations naming fields for {}; violations, never a Go error or a panic, for anything
//     that is not a JSON object; the Harness's InvalidConfigs reported with their fields;
//     templates with {{link}} instead of {{code}} accepted; a template with neither flagged
//     with a field path.
//   - TemplateSelection: the exact usage type's template, else Generic, else
//     TEMPLATE_NOT_FOUND; by locale, the usage type's template in the exact tag
//     (case-insensitively), then in its language, then Generic's in the tag or its language,
//     then each tag of the preference list (Payload.Locales) the same way, before any
//     template without a locale (connector.SelectTemplate's order). A connector whose
//     ValidateConfig already rejects a template list with no fallback must then fail Send
//     with INVALID_CONFIG instead.
//   - Rendering: {{code}}, {{ code }}, {{link}} (a link-only send delivers its link),
//     {{locale}}, dotted variables, missing values as empty text, and rendered values never
//     rendered again; checked on the delivered body, which
//     must be exactly the rendered template.
//   - Errors: CONFIG_MISSING for an empty Config, INVALID_CONFIG with Violations for an
//     invalid one, INVALID_REQUEST naming payload.code or payload.link for a send whose template
//     would carry neither its code nor its link (connector.CheckCarries), MESSAGE_TOO_LONG one character over the body limit and success at it, each
//     a *connector.Error with nothing delivered.
//   - Receipt: a MessageID, To echoing the E.164 recipient, Segments and Encoding as
//     connector.CountSegments says of the delivered body.
//   - Context: CANCELLED for a cancelled context and PROVIDER_TIMEOUT for an expired deadline,
//     with nothing delivered; with a Staller, the same reasons for a Send blocked in the
//     vendor, which must return, nothing delivered for it, and the connector usable afterwards.
//   - MessageStatus: a connector that is a connector.StatusReader reports the status of a
//     message it just accepted with its MessageID, a known State and the vendor's status word
//     (SentMessage), and MESSAGE_NOT_FOUND for an id no send returned (UnknownID); one that is
//     not (or cannot tell) answers NOT_SUPPORTED to both, through connector.ReadStatus.
//   - Concurrency: 32 concurrent Sends (with Metadata and ValidateConfig calls among them)
//     all delivered as rendered, with unique MessageIDs.
//
// The suite sends the usage types Logto requires (Register, SignIn, ForgotPassword, Generic)
// and every type Metadata lists, to a recipient that is not one of Twilio's magic numbers.
//
// Optional behaviour is offered through optional interfaces a Harness may implement: Staller
// (make the vendor hang, so that cancellation of a blocked Send is tested) and BodyLimiter (a
// maximum body length other than DefaultMaxBodyLength).
package connectortest

import (
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/sms-connector/sms-connector/connector"
)

// DefaultMaxBodyLength is the longest rendered body, in characters, a connector must accept,
// and one more than that must fail with MESSAGE_TOO_LONG. It is Twilio's limit, so that
// platforms see one behaviour whichever connector they load; a connector with another limit
// says so through BodyLimiter. The suite measures it with ASCII bodies, where characters, bytes
// and UTF-16 code units agree.
const DefaultMaxBodyLength = 1600

// Delivery is one message a connector delivered, as the vendor (or the emulator standing in
// for it) saw it.
type Delivery struct {
	// To is the recipient the vendor was asked to deliver to.
	To string
	// Body is the exact text of the message.
	Body string
}

// InvalidConfig is one configuration a connector must reject, with the field it must name.
type InvalidConfig struct {
	// Name says in a few words what is wrong; it names the subtest.
	Name string
	// Config is the configuration, a JSON document.
	Config json.RawMessage
	// Field is the path of the offending field; it must be among the fields of the
	// violations ValidateConfig reports, and among those of Send's INVALID_CONFIG error.
	Field string
}

// Harness is what a connector's test provides to the suite. The suite makes one Harness per
// subtest and calls Close when the subtest ends. The suite believes its hooks: a hook that
// breaks the rule stated on it makes a conforming connector fail, and then the failure message
// names the hook ("Harness.Config", "Staller.Stall") as the likely cause.
type Harness interface {
	// MakeConnector returns a fresh connector under test, sharing no state with the
	// connectors of other subtests. If it implements io.Closer the suite closes it at the end
	// of the subtest, before the Harness.
	MakeConnector(ctx context.Context, t *testing.T) (connector.SmsConnector, error)

	// Config returns a configuration (a JSON object) for the connector whose templates are
	// exactly templates, in that order, and whose other fields are valid: with templates that
	// carry {{code}} or {{link}} and a Generic fallback, ValidateConfig must accept it and Send must
	// deliver with it. The suite varies the templates to test selection, fallback and
	// rendering; a list the connector's own rules reject (a template with neither {{code}} nor
	// {{link}}, no fallback) must still be returned as given.
	Config(t *testing.T, templates []connector.Template) json.RawMessage

	// Delivered returns every message the connector delivered since the Harness was made, in
	// the order they were delivered, each once and with its exact body. It only grows: later
	// calls return the earlier messages first. A message counts as delivered when the vendor
	// accepted it, not when it was attempted. Twilio: the emulator's Messages(); console: the
	// JSON lines it wrote.
	Delivered(t *testing.T) []Delivery

	// InvalidConfigs returns configurations that are invalid for reasons of the connector's
	// own fields (a malformed account id, a missing credential), each with the field that
	// ValidateConfig and Send's INVALID_CONFIG error must both name. The suite adds the
	// connector-neutral cases itself (not an object, bad JSON, a template with neither
	// {{code}} nor {{link}}). It
	// may return none.
	InvalidConfigs(t *testing.T) []InvalidConfig

	// Close releases what the Harness holds (an emulator, a temporary file), releasing any
	// stall first.
	Close()
}

// HarnessMaker makes a Harness. RunConformanceTests calls it once per subtest, with the
// subtest's t; the Harness's Close is called when that subtest ends.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// Staller is an optional interface of a Harness whose vendor can be made to hang. With it the
// suite checks that a Send blocked in the vendor returns once its context is cancelled or its
// deadline passes, with reason CANCELLED or PROVIDER_TIMEOUT, and that the connector then still
// delivers. Without it those subtests are skipped.
type Staller interface {
	// Stall makes every later request to the vendor hang, unanswered, until release is called
	// (or the Harness is closed); after release, requests are answered at once again. A
	// stalled request is never delivered, even after release: the Send that made it has
	// returned with an error, so a delivery would be one the caller was told did not happen
	// (and would show in Delivered as a second message of the next Send). release must be
	// safe to call more than once.
	Stall(t *testing.T) (release func())
}

// BodyLimiter is an optional interface of a Harness whose connector accepts rendered bodies
// of a length other than DefaultMaxBodyLength.
type BodyLimiter interface {
	// MaxBodyLength returns the longest rendered body, in characters, the connector accepts;
	// one more must fail with MESSAGE_TOO_LONG.
	MaxBodyLength() int
}

// conformanceTest is one rule of the suite, or a group of related rules run as subtests.
type conformanceTest struct {
	name string
	run  func(t *testing.T, newHarness HarnessMaker)
}

// RunConformanceTests runs the whole suite against the connectors newHarness makes, each rule
// as a subtest of t (Metadata, ValidateConfig/..., TemplateSelection/..., Rendering/...,
// Errors/..., Receipt/..., Context/..., Concurrency, MessageStatus/...). Run it under -race: the
// concurrency subtest is only as good as the race detector watching it.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	tests := []conformanceTest{
		{"Metadata", testMetadata},
		{"ValidateConfig", testValidateConfig},
		{"TemplateSelection", testTemplateSelection},
		{"Rendering", testRendering},
		{"Errors", testErrors},
		{"Receipt", testReceipt},
		{"Context", testContext},
		{"Concurrency", testConcurrency},
		{"MessageStatus", testMessageStatus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newHarness) })
	}
}

// env is what one subtest works with: its Harness and the connector under test.
type env struct {
	h Harness
	c connector.SmsConnector
}

// setup makes a Harness and a connector for the subtest t and arranges for both to be closed
// when it ends.
func setup(t *testing.T, newHarness HarnessMaker) *env {
	t.Helper()
	h, err := newHarness(t.Context(), t)
	if err != nil {
		t.Fatalf("conformance: making the test harness: %v", err)
	}
	if h == nil {
		t.Fatal("conformance: the HarnessMaker returned a nil Harness and no error")
	}
	t.Cleanup(h.Close)
	c, err := h.MakeConnector(t.Context(), t)
	if err != nil {
		t.Fatalf("conformance: Harness.MakeConnector: %v", err)
	}
	if c == nil {
		t.Fatal("conformance: Harness.MakeConnector returned a nil connector and no error")
	}
	if cl, ok := c.(io.Closer); ok {
		t.Cleanup(func() {
			if err := cl.Close(); err != nil {
				t.Errorf("conformance: closing the connector: %v", err)
			}
		})
	}
	return &env{h: h, c: c}
}
