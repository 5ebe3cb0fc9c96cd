package connector

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/text/language"
)

// Template is one message template of a connector configuration, in Logto's shape: a usage type,
// the content with {{placeholders}}, and optionally the locale it is written for.
type Template struct {
	// UsageType is the usage type the template is for; Generic serves every usage type
	// without a template of its own.
	UsageType UsageType `json:"usageType"`
	// Content is the message text, with {{code}} where the code goes, {{link}} where the link
	// goes, or both (see Render).
	Content string `json:"content"`
	// Locale is the BCP 47 tag the template is written in (ValidLocale); empty for the
	// template used when no localised one matches.
	Locale string `json:"locale,omitempty"`
}

// SelectTemplate picks the template for usage and the end user's locales: locale, then each of
// more in order (Payload.Locale, then Payload.Locales: the user's preference list). Each is a
// BCP 47 tag ("_" is read as "-"); empty ones are skipped. It tries in this order and takes
// the first step that finds one:
//
//  1. for each asked locale in turn, first to last:
//     a. a template of usage in that locale (the same tag, case-insensitively), then one of
//     usage in that locale's language;
//     b. a Generic template in that locale, then one in its language;
//  2. a template of usage without a locale;
//  3. a Generic template without a locale;
//  4. else TEMPLATE_NOT_FOUND: a template in another language is never sent.
//
// So a user who prefers fr-CA, then de, gets the French SignIn template, else the French
// Generic one, else the German SignIn one, else the German Generic one, else the SignIn
// template without a locale. "Its language" is decided by golang.org/x/text/language's Matcher
// among the templates whose tag has the asked base language (after canonicalisation: "iw" is
// "he", "nb" is "no"), so zh-TW finds zh-Hant (before zh or zh-Hans), pt-BR finds pt, fr-CA finds
// fr; a tag of another base language never matches, however close the Matcher finds it (nn
// and nb, ms and id). Among templates the Matcher rates alike, the first listed wins.
// ValidateConfig reports a usage type that step 2 or 3 cannot serve (see
// ConfigReader.TemplateList), so that a locale without templates still gets a default.
func SelectTemplate(templates []Template, usage UsageType, locale string, more ...string) (*Template, error) {
	i, err := SelectTemplateIndex(templates, usage, locale, more...)
	if err != nil {
		return nil, err
	}
	return &templates[i], nil
}

// SelectTemplateIndex is SelectTemplate returning the index of the chosen template, so that a
// connector can find what it prepared for it (a CompiledTemplate at the same index). It
// allocates only to match by language or to fail.
func SelectTemplateIndex(templates []Template, usage UsageType, locale string, more ...string) (int, error) {
	usages := [2]UsageType{usage, UsageGeneric}
	asked := 0 // how many non-empty locales were tried
	for k := -1; k < len(more); k++ {
		loc := locale
		if k >= 0 {
			loc = more[k]
		}
		if loc == "" {
			continue
		}
		asked++
		if i := selectInLocale(templates, usages, strings.ReplaceAll(loc, "_", "-")); i >= 0 {
			return i, nil
		}
	}
	for _, u := range usages {
		for i := range templates {
			if templates[i].UsageType == u && templates[i].Locale == "" {
				return i, nil
			}
		}
	}
	if asked == 0 {
		return -1, Errorf(ReasonTemplateNotFound, "no template without a locale for usage type %s or Generic", usage)
	}
	return -1, Errorf(ReasonTemplateNotFound,
		"no template for usage type %s or Generic in the asked locales' languages, and none of them without a locale", usage)
}

// selectInLocale is step 1 of SelectTemplate for one asked tag: the index of the template of
// usages[0], then of usages[1], in that tag or its language, or -1.
func selectInLocale(templates []Template, usages [2]UsageType, tag string) int {
	asked, parsed := language.Und, false
	for _, u := range usages {
		if i := exactLocale(templates, u, tag); i >= 0 {
			return i
		}
		if !parsed {
			asked, parsed = parseLocale(tag), true
		}
		if i := sameLanguage(templates, u, asked); i >= 0 {
			return i
		}
	}
	return -1
}

// exactLocale returns the index of the first template of usage type u whose locale is tag,
// compared case-insensitively, or -1.
func exactLocale(ts []Template, u UsageType, tag string) int {
	for i := range ts {
		if ts[i].UsageType == u && ts[i].Locale != "" && strings.EqualFold(ts[i].Locale, tag) {
			return i
		}
	}
	return -1
}

// sameLanguage returns the index of the template of usage type u in the language of asked that
// language.Matcher finds best, or -1 when none has asked's base language or the Matcher rates
// them all No.
func sameLanguage(ts []Template, u UsageType, asked language.Tag) int {
	if asked == language.Und {
		return -1
	}
	base, _ := asked.Base()
	var tags []language.Tag
	var idx []int
	for i := range ts {
		if ts[i].UsageType != u || ts[i].Locale == "" {
			continue
		}
		t := parseLocale(ts[i].Locale)
		if b, _ := t.Base(); t == language.Und || b != base {
			continue
		}
		tags, idx = append(tags, t), append(idx, i)
	}
	if len(tags) == 0 {
		return -1
	}
	_, best, conf := language.NewMatcher(tags).Match(asked)
	if conf == language.No {
		return -1
	}
	return idx[best]
}

// parseLocale reads a BCP 47 tag in its canonical form, or returns language.Und when it names
// no language x/text knows. A tag with an unknown subtag beyond the language keeps the rest
// ("en-abcde" is en).
func parseLocale(s string) language.Tag {
	t, _ := language.All.Parse(s)
	return t
}

// usagesWithoutDefault returns, in UsageTypes order, the usage types of ts that some locale
// would find no template for (SelectTemplate's steps 2 and 3 find none): each of their
// templates carries a locale, and no Generic template is without one. Templates of an
// unknown usage type are ignored.
func usagesWithoutDefault(ts []Template) []UsageType {
	localised := map[UsageType]bool{} // usage type -> every template so far has a locale
	for _, t := range ts {
		if t.UsageType.Valid() {
			every, seen := localised[t.UsageType]
			localised[t.UsageType] = (every || !seen) && t.Locale != ""
		}
	}
	if every, seen := localised[UsageGeneric]; seen && !every {
		return nil // a Generic template without a locale serves every usage type
	}
	var out []UsageType
	for _, u := range UsageTypes() {
		if localised[u] {
			out = append(out, u)
		}
	}
	return out
}

// Render replaces each {{name}} in content with its value from p: "code", "link", "locale", or
// a dotted path into p.Variables ({{link}} is p.Link, never a variable named link). As in
// Logto, a placeholder with no value renders empty (TemplateSet.Render refuses a send whose
// template would carry neither its code nor its link); values are never looked up anywhere but
// the payload, so a template cannot reach configuration or secrets.
//
// A placeholder is "{{", optional white space (tab, newline, form feed, carriage return,
// space), a name of letters, digits, '_' and '-' with single dots between its parts, optional
// white space and "}}"; any other text, stray braces included, is copied as it is. A connector
// that renders the same template many times compiles it once with CompileTemplate instead.
func Render(content string, p Payload) string {
	if !strings.Contains(content, "{{") {
		return content
	}
	return CompileTemplate(content).Render(p)
}

// HasCodePlaceholder reports whether content contains a {{code}} placeholder.
func HasCodePlaceholder(content string) bool {
	return CompileTemplate(content).HasPlaceholder("code")
}

// HasCodeOrLinkPlaceholder reports whether content contains a {{code}} or a {{link}}
// placeholder, as every template must: a verification message carries a code, a link (an
// organization invitation), or both.
func HasCodeOrLinkPlaceholder(content string) bool {
	t := CompileTemplate(content)
	return t.HasPlaceholder("code") || t.HasPlaceholder("link")
}

// CompiledTemplate is a template's content split once into literal text and placeholders, so
// that rendering it is a single pass that allocates only the result. It is immutable and safe
// for concurrent use. Make one with CompileTemplate.
type CompiledTemplate struct {
	content  string
	parts    []part
	literals int // total length of the literal parts
}

// part is one piece of a compiled template: literal text, or a placeholder.
type part struct {
	lit  string   // the literal text, when kind is partLiteral
	kind partKind // what the part renders
	name string   // the placeholder's name ("application.name"), for HasPlaceholder
	path []string // the name split at its dots, for partVariable
}

// partKind says what a part renders.
type partKind uint8

const (
	partLiteral  partKind = iota // lit as it is
	partCode                     // Payload.Code
	partLink                     // Payload.Link
	partLocale                   // Payload.Locale
	partVariable                 // the scalar at path in Payload.Variables
)

// CompileTemplate splits content into literal text and placeholders, with Render's syntax.
// Every string is a template (text that is not a placeholder is literal), so it cannot fail.
func CompileTemplate(content string) *CompiledTemplate {
	t := &CompiledTemplate{content: content}
	lit := 0 // start of the literal text not yet emitted
	for i := 0; ; {
		j := strings.Index(content[i:], "{{")
		if j < 0 {
			break
		}
		start := i + j
		name, end, ok := scanPlaceholder(content, start)
		if !ok {
			i = start + 1 // "{{{code}}": the placeholder may start at the next brace
			continue
		}
		if lit < start {
			t.addLiteral(content[lit:start])
		}
		p := part{name: name}
		switch name {
		case "code":
			p.kind = partCode
		case "link":
			p.kind = partLink
		case "locale":
			p.kind = partLocale
		default:
			p.kind, p.path = partVariable, strings.Split(name, ".")
		}
		t.parts = append(t.parts, p)
		lit, i = end, end
	}
	if lit < len(content) {
		t.addLiteral(content[lit:])
	}
	return t
}

// addLiteral appends literal text.
func (t *CompiledTemplate) addLiteral(s string) {
	t.parts = append(t.parts, part{lit: s})
	t.literals += len(s)
}

// scanPlaceholder reads the placeholder that starts at content[start:] ("{{"): it returns its
// name and the index just past its "}}", or ok false when the text there is not one.
func scanPlaceholder(content string, start int) (name string, end int, ok bool) {
	i := skipSpace(content, start+2)
	n := i
	for {
		m := n
		for m < len(content) && isNameByte(content[m]) {
			m++
		}
		if m == n { // an empty name, or an empty part after a dot
			return "", 0, false
		}
		n = m
		if n+1 < len(content) && content[n] == '.' && isNameByte(content[n+1]) {
			n++
			continue
		}
		break
	}
	name = content[i:n]
	e := skipSpace(content, n)
	if !strings.HasPrefix(content[e:], "}}") {
		return "", 0, false
	}
	return name, e + 2, true
}

// skipSpace returns the index of the first byte at or after i that is not white space as
// RE2's \s has it (tab, newline, form feed, carriage return, space).
func skipSpace(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\f', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// isNameByte reports whether c may appear in a placeholder name's part.
func isNameByte(c byte) bool {
	return c == '_' || c == '-' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// Content returns the template's text as it was compiled.
func (t *CompiledTemplate) Content() string { return t.content }

// HasPlaceholder reports whether the template has a placeholder named name ("code").
func (t *CompiledTemplate) HasPlaceholder(name string) bool {
	for i := range t.parts {
		if t.parts[i].kind != partLiteral && t.parts[i].name == name {
			return true
		}
	}
	return false
}

// Render renders the template with p, exactly as Render(t.Content(), p) does.
func (t *CompiledTemplate) Render(p Payload) string {
	if len(t.parts) == 1 && t.parts[0].kind == partLiteral {
		return t.parts[0].lit
	}
	// Look the values up once, sizing the result before writing it.
	var small [8]string
	vals := small[:0]
	n := t.literals
	for i := range t.parts {
		var v string
		switch pt := &t.parts[i]; pt.kind {
		case partLiteral:
			continue
		case partCode:
			v = p.Code
		case partLink:
			v = p.Link
		case partLocale:
			v = p.Locale
		case partVariable:
			if x, ok := lookup(p.Variables, pt.path); ok {
				v = format(x)
			}
		}
		vals = append(vals, v)
		n += len(v)
	}
	var b strings.Builder
	b.Grow(n)
	k := 0
	for i := range t.parts {
		if t.parts[i].kind == partLiteral {
			b.WriteString(t.parts[i].lit)
			continue
		}
		b.WriteString(vals[k])
		k++
	}
	return b.String()
}

// lookup follows path through nested maps.
func lookup(vars map[string]any, path []string) (any, bool) {
	var cur any = vars
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// format turns a JSON-like scalar into template text; objects and lists render empty.
func format(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	case int, int32, int64, uint, uint32, uint64, float32:
		return fmt.Sprint(x)
	default:
		return ""
	}
}
