package console

import (
	"context"
	_ "embed" // for the README
	"encoding/base64"

	"github.com/sms-connector/sms-connector/connector"
)

// readme is the guide served in Metadata.Readme.
//
//go:embed README.md
var readme string

// logoSVG is the connector's logo: a terminal prompt, drawn for this connector.
const logoSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">` +
	`<rect x="4" y="8" width="56" height="48" rx="6" fill="#1F2937"/>` +
	`<path d="M16 24l10 8-10 8" fill="none" stroke="#34D399" stroke-width="4" stroke-linecap="round" stroke-linejoin="round"/>` +
	`<path d="M30 42h16" stroke="#34D399" stroke-width="4" stroke-linecap="round"/>` +
	`</svg>`

// logo is logoSVG as a data URI, computed once.
var logo = "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(logoSVG))

// Metadata describes the connector: names, logo, readme, the Logto-style form, the JSON Schema
// of the configuration and a ready-to-use configuration (DefaultConfig). Every call returns a
// fresh value the caller may modify. It never fails.
func (c *Connector) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{
		ID:     ID,
		Target: Provider,
		Name: map[string]string{
			"en": "Console SMS (development)",
			"fr": "SMS console (développement)",
		},
		Description: map[string]string{
			"en": "Writes each verification message as a JSON line to the server's log instead of sending an SMS. For development and tests.",
			"fr": "Écrit chaque message de vérification sous forme de ligne JSON dans le journal du serveur au lieu d'envoyer un SMS. Pour le développement et les tests.",
		},
		Logo:           logo,
		Readme:         readme,
		FormItems:      formItems(),
		ConfigSchema:   ConfigSchema(),
		ConfigTemplate: configTemplate(),
		UsageTypes:     connector.UsageTypes(),
		Version:        Version,
	}, nil
}

// formItems is the configuration form, in display order, in Logto's shape.
func formItems() []connector.FormItem {
	return []connector.FormItem{
		{
			Key: "templates", Label: "Templates", Type: connector.FormItemJSON, Required: true,
			Default:     templatesJSON(),
			Description: "A list of {usageType, content, locale?}. {{code}} is replaced by the code. A Generic template is used for any usage type without its own. Add locale (a BCP 47 tag such as fr or pt-BR) to localise.",
		},
		{
			Key: "senderName", Label: "Sender name", Type: connector.FormItemText,
			Placeholder: "Acme",
			Description: "Optional: shown as the sender of each logged message, at most 64 characters.",
		},
	}
}

// ConfigSchema returns the JSON Schema (draft 2020-12) of the configuration, as JSON-like
// values; a fresh copy on every call. It is built from the patterns ParseConfig uses. Two
// rules it cannot express are documented in descriptions instead: templates may not repeat a
// (usageType, locale) pair, and lengths are counted in UTF-16 code units.
func ConfigSchema() map[string]any {
	templates := connector.TemplatesSchema(MaxBodyLength, "Message templates. A Generic template serves every usage type without its own; "+
		"a usage type with neither fails with TEMPLATE_NOT_FOUND. No two templates may share usageType and locale.")
	templates["minItems"] = 1
	return map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  "https://sms-connector.dev/schemas/console-config.json",
		"title":                "Console SMS connector configuration",
		"description":          "Message templates, as for the Twilio connector, and an optional sender name.",
		"type":                 "object",
		"additionalProperties": false,
		"required":             []any{"templates"},
		"properties": map[string]any{
			"templates": templates,
			"senderName": map[string]any{
				"type": "string", "maxLength": MaxSenderNameLength,
				"description": "Shown as the sender of each logged message; no control characters.",
			},
		},
	}
}
