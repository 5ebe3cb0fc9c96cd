package connector

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Template is one message template of a connector configuration, in Logto's shape: a usage type,
// the content with {{placeholders}}, and optionally the locale it is written for.
type Template struct {
	UsageType UsageType `json:"usageType"`
	Content   string    `json:"content"`
	Locale    string    `json:"locale,omitempty"`
}

// placeholder matches {{ name }} and {{ a.b.c }}; names are letters, digits, _ and -.
var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)\s*\}\}`)

// SelectTemplate picks the template for usage and locale with Logto's rules: templates of the
// exact usage type, else of Generic, else TEMPLATE_NOT_FOUND. Among those, the exact locale tag
// (case-insensitive), then one of the same language ("fr" for "fr-CA", or "fr-FR" for "fr"), then
// one without a locale, then the first.
func SelectTemplate(templates []Template, usage UsageType, locale string) (*Template, error) {
	for _, u := range []UsageType{usage, UsageGeneric} {
		var candidates []*Template
		for i := range templates {
			if templates[i].UsageType == u {
				candidates = append(candidates, &templates[i])
			}
		}
		if len(candidates) > 0 {
			return pickLocale(candidates, locale), nil
		}
	}
	return nil, Errorf(ReasonTemplateNotFound, "no template for usage type %s and no Generic template", usage)
}

// pickLocale chooses among templates of one usage type by locale.
func pickLocale(ts []*Template, locale string) *Template {
	if locale != "" {
		for _, t := range ts {
			if strings.EqualFold(t.Locale, locale) {
				return t
			}
		}
		lang := language(locale)
		for _, t := range ts {
			if t.Locale != "" && strings.EqualFold(language(t.Locale), lang) {
				return t
			}
		}
	}
	for _, t := range ts {
		if t.Locale == "" {
			return t
		}
	}
	return ts[0]
}

// language returns the primary language subtag of a BCP 47 tag ("pt" of "pt-BR" or "pt_BR").
func language(tag string) string {
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		return tag[:i]
	}
	return tag
}

// Render replaces each {{name}} in content with its value from p: "code", "locale", or a dotted
// path into p.Variables. As in Logto, a placeholder with no value renders empty; values are
// never looked up anywhere but the payload, so a template cannot reach configuration or secrets.
func Render(content string, p Payload) string {
	return placeholder.ReplaceAllStringFunc(content, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		switch name {
		case "code":
			return p.Code
		case "locale":
			return p.Locale
		}
		v, ok := lookup(p.Variables, strings.Split(name, "."))
		if !ok {
			return ""
		}
		return format(v)
	})
}

// HasCodePlaceholder reports whether content contains a {{code}} placeholder.
func HasCodePlaceholder(content string) bool {
	for _, m := range placeholder.FindAllStringSubmatch(content, -1) {
		if m[1] == "code" {
			return true
		}
	}
	return false
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
