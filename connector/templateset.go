package connector

import "fmt"

// DefaultMaxSegments is the segment limit a connector binary applies unless its operator sets
// another (package sdk's --max-segments): 10 segments, 1530 GSM-7 characters, far more than a
// code needs and far less than a pumping template would use.
const DefaultMaxSegments = 10

// TemplateSet is a configuration's validated templates compiled once, with the limits a
// rendered body must meet, so that a connector keeps one per prepared configuration (see
// ConfigCache) and each send only selects, renders and checks. It is the vendor-neutral part
// of every Send, written once so that drivers do only their vendor's I/O. It is immutable and
// safe for concurrent use.
type TemplateSet struct {
	templates   []Template
	compiled    []*CompiledTemplate // templates[i], compiled
	maxLength   int
	limit       string
	maxSegments int
}

// NewTemplateSet compiles templates, which must have passed validation (see
// ConfigReader.TemplateList). maxLength is the vendor's longest rendered body, in UTF-16 code
// units; limit names it in the MESSAGE_TOO_LONG error ("the limit", "Twilio's limit").
// maxSegments is the operator's limit on the SMS segments of one message (a binary's
// --max-segments, handed to the vendor's New hook as sdk.Runtime.MaxSegments); 0 means no
// limit but maxLength.
func NewTemplateSet(templates []Template, maxLength int, limit string, maxSegments int) *TemplateSet {
	s := &TemplateSet{
		templates:   templates,
		compiled:    make([]*CompiledTemplate, len(templates)),
		maxLength:   maxLength,
		limit:       limit,
		maxSegments: maxSegments,
	}
	for i, t := range templates {
		s.compiled[i] = CompileTemplate(t.Content)
	}
	return s
}

// Rendered is a message body ready to send, with what it will cost.
type Rendered struct {
	// Body is the rendered message.
	Body string
	// Segments is how many SMS segments Body takes (CountSegments).
	Segments int
	// Encoding is the character set Body is sent in.
	Encoding Encoding
}

// Render selects the template for usage and the payload's locales, p.Locale then p.Locales
// (SelectTemplateIndex), renders it with p and counts its segments. It fails with
// TEMPLATE_NOT_FOUND when no template applies; with INVALID_REQUEST (naming payload.code or
// payload.link) when the template would carry neither the code nor the link because the
// payload lacks the one it holds (a {{code}}-only template and a link-only send, or the
// reverse: an SMS without either is useless and still billed), while a template with both
// renders the missing one empty; and with MESSAGE_TOO_LONG when the body is over the set's
// maximum length or takes more than its maximum segments; all before anything is sent.
func (s *TemplateSet) Render(usage UsageType, p Payload) (Rendered, error) {
	i, err := SelectTemplateIndex(s.templates, usage, p.Locale, p.Locales...)
	if err != nil {
		return Rendered{}, err
	}
	if err := s.carries(i, p); err != nil { // see CheckCarries
		return Rendered{}, err
	}
	body := s.compiled[i].Render(p)
	if n := UTF16Len(body); n > s.maxLength {
		return Rendered{}, Errorf(ReasonMessageTooLong,
			"the rendered %s message is %d characters (UTF-16 code units), over %s of %d: shorten its template",
			s.templates[i].UsageType, n, s.limit, s.maxLength)
	}
	segments, enc := CountSegments(body)
	if s.maxSegments > 0 && segments > s.maxSegments {
		return Rendered{}, Errorf(ReasonMessageTooLong,
			"the rendered %s message takes %d SMS segments (%s), over this connector's limit of %d: shorten its template or its variables",
			s.templates[i].UsageType, segments, enc, s.maxSegments)
	}
	return Rendered{Body: body, Segments: segments, Encoding: enc}, nil
}

// carries is CheckCarries for templates[i], compiled once.
func (s *TemplateSet) carries(i int, p Payload) error {
	return checkCarries(&s.templates[i], s.compiled[i], p)
}

// CheckCarries returns the INVALID_REQUEST error of a send whose selected template t would
// carry neither p's code nor its link: t has {{code}} and no {{link}} and p has no code, or
// the reverse. The error names the missing field (payload.code or payload.link). It returns
// nil when t carries what p has, including a template with both placeholders and only one of
// the values (the other renders empty), and for a template with neither placeholder (not one
// ConfigReader.TemplateList accepts), which is rendered as it is. TemplateSet.Render applies
// it; a connector that renders with Render applies it to the template SelectTemplate chose.
func CheckCarries(t *Template, p Payload) error {
	return checkCarries(t, CompileTemplate(t.Content), p)
}

// checkCarries is CheckCarries with t's content compiled as c.
func checkCarries(t *Template, c *CompiledTemplate, p Payload) error {
	hasCode, hasLink := c.HasPlaceholder("code"), c.HasPlaceholder("link")
	if hasCode && p.Code != "" || hasLink && p.Link != "" || !hasCode && !hasLink {
		return nil
	}
	which := fmt.Sprintf("the %s template", t.UsageType)
	if t.Locale != "" {
		which = fmt.Sprintf("the %s template for locale %s", t.UsageType, t.Locale)
	}
	// Short enough for a BadRequest description (see internal/protoconv's caps).
	v := Violation{Field: "payload.link", Description: "is required by " + which + ": it has {{link}} and no {{code}}"}
	if hasCode {
		v = Violation{Field: "payload.code", Description: "is required by " + which + ": it has {{code}} and no {{link}}"}
	}
	return ViolationsError(ReasonInvalidRequest, RequestSubject, []Violation{v})
}
