package connector

import (
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/language"
)

// The fuzz targets of package connector. Each has seeds here (f.Add) and a committed corpus in
// testdata/fuzz/<Name>/; `go test` runs both as regression tests, and
// `go test -run '^$' -fuzz '^<Name>$' -fuzztime 10s ./connector` explores further.

// reE164 is the form every normalised number has.
var reE164 = regexp.MustCompile(`^\+[1-9]\d{6,14}$`)

// FuzzNormalizePhone: NormalizePhone never panics; what it returns is E.164, made of the
// input's digits only (less an international "00"), and normalising it again gives itself; a
// failure is an INVALID_PHONE_NUMBER *Error.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{
		"+14155550123", "+1 (415) 555-0123", "0044 20 7946 0000", "14155550123", "+44.20.7946.0000",
		"", "+", "00", "0123456", "+0123456", "+1234567890123456", "+\u00a04155550123", "+１４１５",
		"٤١٥٥٥٥٠١٢٣", "+1+415", "+14155550123\x00", " +14155550123 ", "\xff\xfe", strings.Repeat("1", 65),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := NormalizePhone(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason != ReasonInvalidPhoneNumber || e.Message == "" {
				t.Fatalf("NormalizePhone(%q) failed with %v, not an INVALID_PHONE_NUMBER *Error", s, err)
			}
			return
		}
		if !reE164.MatchString(out) {
			t.Fatalf("NormalizePhone(%q) = %q, not E.164", s, out)
		}
		var digits strings.Builder
		for _, r := range s {
			if r >= '0' && r <= '9' {
				digits.WriteRune(r)
			}
		}
		d := digits.String()
		if out[1:] != d && "00"+out[1:] != d {
			t.Fatalf("NormalizePhone(%q) = %q, whose digits are not the input's %q", s, out, d)
		}
		again, err := NormalizePhone(out)
		if err != nil || again != out {
			t.Fatalf("NormalizePhone(%q) = %q, %v; normalising is not idempotent", out, again, err)
		}
	})
}

// FuzzCountSegments: CountSegments never panics and counts at least one segment; for valid
// UTF-8 (what a rendered body always is), appending a character never lowers the count nor
// turns UCS-2 back into GSM-7.
//
// For invalid UTF-8 the count is not monotone, by design: a truncated multi-byte sequence
// counts as replacement characters (UCS-2), and the byte that completes it can make the body
// GSM-7 again ("\xe2\x82" + "\xac" is "€").
func FuzzCountSegments(f *testing.F) {
	for _, s := range []struct {
		body string
		r    rune
	}{
		{"", 'a'}, {"Your code is 123456", '7'}, {strings.Repeat("a", 160), 'a'}, {strings.Repeat("a", 159), '€'},
		{strings.Repeat("a", 153), '^'}, {strings.Repeat("a", 70), 'ж'}, {strings.Repeat("ж", 70), 'ж'},
		{strings.Repeat("😀", 35), 'a'}, {"{}[]~|\\^€", '\f'}, {"\xe2\x82", 0xac}, {"ok", utf8.RuneError}, {"a", 0xD800},
	} {
		f.Add(s.body, s.r)
	}
	f.Fuzz(func(t *testing.T, body string, r rune) {
		n, enc := CountSegments(body)
		if n < 1 || (enc != EncodingGSM7 && enc != EncodingUCS2) {
			t.Fatalf("CountSegments(%q) = %d, %q", body, n, enc)
		}
		if n > len(body)+1 {
			t.Fatalf("CountSegments(%q) = %d segments for %d bytes", body, n, len(body))
		}
		if !utf8.ValidString(body) {
			return
		}
		m, enc2 := CountSegments(body + string(r))
		if m < n {
			t.Fatalf("appending %q to %q lowered the segments from %d to %d", r, body, n, m)
		}
		if enc == EncodingUCS2 && enc2 != EncodingUCS2 {
			t.Fatalf("appending %q to UCS-2 %q gave %s", r, body, enc2)
		}
	})
}

// FuzzRender: Render never panics, and its output is exactly the content with each
// placeholder replaced by its value from the payload, worked out here independently of the
// implementation: so nothing from outside the payload (configuration, environment, other
// placeholders' syntax) can reach a message, and values are not rendered again.
func FuzzRender(f *testing.F) {
	for _, s := range []struct {
		content, code, locale, path, value string
		num                                float64
	}{
		{"Your code is {{code}}", "123456", "en", "application.name", "Acme", 0},
		{"{{ code }} for {{application.name}} ({{locale}}) n={{n}}", "42", "fr-CA", "application.name", "Acme", 1.5},
		{"{{authToken}} {{config.authToken}} {{__proto__}} {{constructor.prototype}}", "1", "", "a", "b", 0},
		{"{{{code}}} {{code} {code}} {{ code", "9", "", "x", "y", 0},
		{"{{a.}} {{.a}} {{a..b}} {{a-b_c.D9}}", "1", "", "a-b_c.D9", "ok", 0},
		{"{{application}} {{application.name.more}}", "1", "", "application.name", "Acme", 0},
		{"{{code}}", "{{locale}}", "{{code}}", "code", "shadow", 0},
		{"{{\tcode\n}}{{\vcode}}", "1", "", "n", "x", 1e21},
		{"\xff{{code}}\xfe", "\xff", "", "n", "", math.Copysign(0, -1)},
		{"{{link}} {{ link }} {{link.x}}", "1", "", "link", "shadow", 0},
	} {
		f.Add(s.content, s.code, s.locale, s.path, s.value, s.num)
	}
	f.Fuzz(func(t *testing.T, content, code, locale, path, value string, num float64) {
		vars := map[string]any{"n": num}
		setPath(vars, strings.Split(path, "."), value)
		p := Payload{Code: code, Locale: locale, Link: "https://example.com/?" + value, Variables: vars}
		got := Render(content, p)
		if want := renderOracle(content, p); got != want {
			t.Fatalf("Render(%q, %+v)\n got %q\nwant %q", content, p, got, want)
		}
		if again := CompileTemplate(content).Render(p); again != got {
			t.Fatalf("CompileTemplate(%q).Render = %q, Render = %q", content, again, got)
		}
		if want := renderRegexp(content, p); got != want {
			t.Fatalf("Render(%q) = %q, the regexp implementation gives %q", content, got, want)
		}
		if has, want := HasCodePlaceholder(content), hasCodeRegexp(content); has != want {
			t.Fatalf("HasCodePlaceholder(%q) = %v, the regexp implementation says %v", content, has, want)
		}
		if !strings.Contains(content, "{{") && got != content {
			t.Fatalf("Render changed %q without placeholders to %q", content, got)
		}
	})
}

// setPath sets vars[path[0]][path[1]]... = value, making maps as needed (an existing non-map
// value in the way is replaced).
func setPath(vars map[string]any, path []string, value string) {
	for _, k := range path[:len(path)-1] {
		next, ok := vars[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			vars[k] = next
		}
		vars = next
	}
	vars[path[len(path)-1]] = value
}

// renderOracle is Render written from its specification, by hand: at each "{{", optional
// white space (RE2's \s: tab, newline, form feed, carriage return, space), a dotted name of
// letters, digits, '_' and '-', optional white space and "}}" make a placeholder; anything else
// is copied.
func renderOracle(content string, p Payload) string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }
	isName := func(c byte) bool {
		return c == '_' || c == '-' || c == '.' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
	}
	var b strings.Builder
	for i := 0; i < len(content); {
		if !strings.HasPrefix(content[i:], "{{") {
			b.WriteByte(content[i])
			i++
			continue
		}
		j := i + 2
		for j < len(content) && isSpace(content[j]) {
			j++
		}
		start := j
		for j < len(content) && isName(content[j]) {
			j++
		}
		name := content[start:j]
		for j < len(content) && isSpace(content[j]) {
			j++
		}
		valid := name != "" && !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".") && !strings.Contains(name, "..")
		if !valid || !strings.HasPrefix(content[j:], "}}") {
			b.WriteByte(content[i])
			i++
			continue
		}
		b.WriteString(oracleValue(name, p))
		i = j + 2
	}
	return b.String()
}

// oracleValue is the text of placeholder name: the code, the link, the locale, or a scalar
// found by its dotted path in the variables; empty otherwise.
func oracleValue(name string, p Payload) string {
	switch name {
	case "link":
		return p.Link
	case "code":
		return p.Code
	case "locale":
		return p.Locale
	}
	var cur any = p.Variables
	for _, k := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		if cur, ok = m[k]; !ok {
			return ""
		}
	}
	switch v := cur.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// FuzzSelectTemplate: SelectTemplate never panics, returns one of the given templates or
// TEMPLATE_NOT_FOUND, and follows its documented order, step by step: the usage type in the
// asked locale (the first such template), then in its language; Generic likewise; the usage
// type without a locale; Generic without a locale (the first such template each). A language
// step may pick any template of the asked base language, or pass when x/text's Matcher rates
// them all No; a template of another language is never chosen, and TEMPLATE_NOT_FOUND comes
// exactly when no step has a candidate.
//
// spec lists templates one per line as "usageType|locale".
func FuzzSelectTemplate(f *testing.F) {
	for _, s := range []struct{ spec, usage, locale, more string }{
		{"Generic|\nSignIn|\nSignIn|fr", "SignIn", "fr-CA", ""},
		{"Generic|\nGeneric|fr\nGeneric|fr-CA", "Register", "FR-ca", ""},
		{"SignIn|de\nSignIn|en", "SignIn", "", ""},
		{"SignIn|de\nSignIn|en", "SignIn", "es", ""},
		{"SignIn|de\nSignIn|fr\nGeneric|\nGeneric|es", "SignIn", "es", ""},
		{"SignIn|de\nSignIn|fr\nGeneric|\nGeneric|es", "SignIn", "ja", ""},
		{"SignIn|zh\nSignIn|zh-Hant\nSignIn|", "SignIn", "zh-TW", ""},
		{"Generic|nb\nSignIn|", "SignIn", "nn", ""},
		{"Register|", "SignIn", "en", ""},
		{"", "Generic", "", ""},
		{"Generic|pt_BR\nGeneric|pt", "Generic", "pt-PT", ""},
		{"|\n|x", "", "", ""},
		{"SignIn|de\nSignIn|fr\nGeneric|\nGeneric|es", "SignIn", "ja", "ko es-MX fr"},
		{"SignIn|\nGeneric|de\nSignIn|fr", "SignIn", "", "de-AT fr"},
		{"Generic|\nSignIn|pt-BR", "Register", "en", " pt_PT"},
	} {
		f.Add(s.spec, s.usage, s.locale, s.more)
	}
	// more is the preference list (Payload.Locales), its entries separated by spaces.
	f.Fuzz(func(t *testing.T, spec, usage, locale, more string) {
		var ts []Template
		if spec != "" {
			for line := range strings.SplitSeq(spec, "\n") {
				u, l, _ := strings.Cut(line, "|")
				ts = append(ts, Template{UsageType: UsageType(u), Locale: l, Content: "{{code}}"})
			}
		}
		var locales []string
		if more != "" {
			locales = strings.Split(more, " ")
		}
		got, err := SelectTemplate(ts, UsageType(usage), locale, locales...)
		idx := -1
		if err == nil {
			for i := range ts {
				if &ts[i] == got {
					idx = i
				}
			}
			if idx < 0 {
				t.Fatalf("SelectTemplate returned %p, not one of the given templates", got)
			}
		} else if ReasonOf(err) != ReasonTemplateNotFound || got != nil {
			t.Fatalf("SelectTemplate: %v, %v; the only failure is TEMPLATE_NOT_FOUND", got, err)
		}
		for _, s := range templateSteps(ts, UsageType(usage), append([]string{locale}, locales...)) {
			switch {
			case len(s.candidates) == 0:
				continue
			case !s.byLanguage:
				if idx != s.candidates[0] {
					t.Fatalf("chose templates[%d] (%v), want templates[%d] (%v): step %q", idx, got, s.candidates[0], ts[s.candidates[0]], s.name)
				}
				return
			case slices.Contains(s.candidates, idx):
				return
			}
			// A language step passed over: the Matcher must rate every candidate No.
			tags := make([]language.Tag, len(s.candidates))
			for i, c := range s.candidates {
				tags[i], _ = language.All.Parse(ts[c].Locale)
			}
			asked, _ := language.All.Parse(s.asked)
			if _, best, c := language.NewMatcher(tags).Match(asked); c != language.No {
				t.Fatalf("chose templates[%d] (%v), but step %q had templates[%d] (%v, confidence %v)", idx, got, s.name, s.candidates[best], ts[s.candidates[best]], c)
			}
		}
		if err == nil {
			t.Fatalf("chose templates[%d] (%v), which no step allows", idx, got)
		}
	})
}

// templateStep is one step of SelectTemplate's order and its candidates, indexes into the
// templates in list order.
type templateStep struct {
	name       string
	candidates []int
	byLanguage bool   // any candidate may be chosen, or none when the Matcher rates all No
	asked      string // the asked tag of a language step, "_" read as "-"
}

// templateSteps lists SelectTemplate's steps for a send of usage type u in the asked locales,
// in preference order (empty ones are skipped).
func templateSteps(ts []Template, u UsageType, locales []string) []templateStep {
	var steps []templateStep
	usages := []UsageType{u, UsageGeneric}
	for _, locale := range locales {
		if locale == "" {
			continue
		}
		want := strings.ReplaceAll(locale, "_", "-")
		asked, _ := language.All.Parse(want)
		askedBase, _ := asked.Base()
		for _, u := range usages {
			exact := templateStep{name: string(u) + " in the locale " + want}
			lang := templateStep{name: string(u) + " in the language of " + want, byLanguage: true, asked: want}
			for i, t := range ts {
				if t.UsageType != u || t.Locale == "" {
					continue
				}
				if strings.EqualFold(t.Locale, want) {
					exact.candidates = append(exact.candidates, i)
				}
				tag, _ := language.All.Parse(t.Locale)
				if base, _ := tag.Base(); asked != language.Und && tag != language.Und && base == askedBase {
					lang.candidates = append(lang.candidates, i)
				}
			}
			steps = append(steps, exact, lang)
		}
	}
	for _, u := range usages {
		none := templateStep{name: string(u) + " without a locale"}
		for i, t := range ts {
			if t.UsageType == u && t.Locale == "" {
				none.candidates = append(none.candidates, i)
			}
		}
		steps = append(steps, none)
	}
	return steps
}
