package connector

import "fmt"

// defaultTemplates is one English template per usage type, in UsageTypes order.
var defaultTemplates = []Template{
	{UsageType: UsageRegister, Content: "Your sign-up verification code is {{code}}. It expires in 10 minutes."},
	{UsageType: UsageSignIn, Content: "Your sign-in verification code is {{code}}. It expires in 10 minutes."},
	{UsageType: UsageForgotPassword, Content: "Your password reset code is {{code}}. It expires in 10 minutes."},
	{UsageType: UsageGeneric, Content: "Your verification code is {{code}}. It expires in 10 minutes."},
	{UsageType: UsageOrganizationInvitation, Content: "Your organization invitation code is {{code}}. It expires in 10 minutes."},
	{UsageType: UsageUserPermissionValidation, Content: "Your permission validation code is {{code}}. It expires in 10 minutes."},
	{UsageType: UsageBindNewIdentifier, Content: "Your code to link this phone number is {{code}}. It expires in 10 minutes."},
	{UsageType: UsageMfaVerification, Content: "Your two-step verification code is {{code}}. It expires in 10 minutes."},
	{UsageType: UsageBindMfa, Content: "Your two-step verification setup code is {{code}}. It expires in 10 minutes."},
}

// DefaultTemplates returns one English template per usage type, in UsageTypes order, for
// connectors' configuration templates and form defaults, so that every connector offers the
// same ready-to-use wording. A fresh copy on every call.
func DefaultTemplates() []Template {
	return append([]Template(nil), defaultTemplates...)
}

// TemplatesJSON returns ts as JSON-like values ({usageType, content, locale?}), the shape of a
// configuration's template list in a form default or configuration template. A fresh copy on
// every call.
func TemplatesJSON(ts []Template) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		m := map[string]any{"usageType": string(t.UsageType), "content": t.Content}
		if t.Locale != "" {
			m["locale"] = t.Locale
		}
		out[i] = m
	}
	return out
}

// patternLocaleSyntax is the shape of a template's locale for a form to check as it is typed:
// empty, or subtags of 1 to 8 letters or digits joined by hyphens, the first letters only. It
// accepts every tag ValidLocale accepts; ValidLocale, at ValidateConfig, decides the rest.
const patternLocaleSyntax = `^([A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*)?$`

// TemplatesSchema returns the JSON Schema (draft 2020-12) of a template list as
// ConfigReader.TemplateList reads it, with contents of at most maxLength UTF-16 code units and
// the given description, as JSON-like values; a fresh copy on every call. A connector adds its
// own list-level rules (minItems, required usage types) to the map it gets. It is built from
// the same constants as the parser, so the two cannot drift apart; for a locale it gives only
// the syntax, since whether a subtag is registered is beyond a pattern (see ValidLocale).
func TemplatesSchema(maxLength int, description string) map[string]any {
	usageTypes := make([]any, 0, 9)
	for _, u := range UsageTypes() {
		usageTypes = append(usageTypes, string(u))
	}
	return map[string]any{
		"type":        "array",
		"description": description,
		"items": map[string]any{
			"type":                 "object",
			"additionalProperties": false,
			"required":             []any{"usageType", "content"},
			"properties": map[string]any{
				"usageType": map[string]any{"enum": usageTypes},
				"content": map[string]any{
					"type": "string", "minLength": 1, "maxLength": maxLength, "pattern": PatternCodeOrLinkInBody,
					"description": fmt.Sprintf("The message text; {{code}} is replaced by the code, {{link}} by the link (an organization invitation's); it needs at least one of them. At most %d UTF-16 code units.", maxLength),
				},
				"locale": map[string]any{
					"type": "string", "pattern": patternLocaleSyntax, "maxLength": MaxLocaleLength,
					"description": "The BCP 47 language tag the template is written in (en, fr-CA, zh-Hant-TW); absent for the default. ValidateConfig checks it.",
				},
			},
		},
	}
}
