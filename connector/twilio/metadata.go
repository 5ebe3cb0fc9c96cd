package twilio

import (
	"context"
	_ "embed" // for the README
	"encoding/base64"
	"strconv"

	"github.com/sms-connector/sms-connector/connector"
)

// readme is the setup guide served in Metadata.Readme.
//
//go:embed README.md
var readme string

// logoSVG is the connector's logo: a red disc with four white dots, drawn for this connector.
const logoSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">` +
	`<circle cx="32" cy="32" r="30" fill="#F22F46"/>` +
	`<circle cx="32" cy="32" r="21" fill="none" stroke="#fff" stroke-width="4"/>` +
	`<circle cx="25" cy="25" r="5" fill="#fff"/><circle cx="39" cy="25" r="5" fill="#fff"/>` +
	`<circle cx="25" cy="39" r="5" fill="#fff"/><circle cx="39" cy="39" r="5" fill="#fff"/>` +
	`</svg>`

// logo is logoSVG as a data URI, computed once.
var logo = "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(logoSVG))

// The configuration template's credentials are those of the twiliotest emulator's sandbox
// account, so the template is valid as is and works against the binary's --sandbox mode; on
// the real Twilio they fail with PROVIDER_AUTH_FAILED until replaced.
const (
	templateAccountSID = "AC00000000000000000000000000000000"
	templateAuthToken  = "0123456789abcdef0123456789abcdef"
	templateServiceSID = "MG00000000000000000000000000000000"
)

// templatesJSON returns the connector package's default templates, one English template per
// usage type, as JSON-like values (a fresh copy on every call).
func templatesJSON() []any {
	return connector.TemplatesJSON(connector.DefaultTemplates())
}

// Metadata describes the connector: names, logo, readme, the Logto-style form, the JSON Schema
// of the configuration and a ready-to-edit configuration. Every call returns a fresh value the
// caller may modify. It never fails.
func (c *Connector) Metadata(context.Context) (*connector.Metadata, error) {
	return &connector.Metadata{
		ID:     ID,
		Target: Provider,
		Name: map[string]string{
			"en":    "Twilio SMS",
			"fr":    "SMS Twilio",
			"de":    "Twilio-SMS",
			"es":    "SMS de Twilio",
			"zh-CN": "Twilio 短信",
			"ja":    "Twilio SMS",
		},
		Description: map[string]string{
			"en": "Sends verification codes by SMS through Twilio Programmable Messaging.",
			"fr": "Envoie les codes de vérification par SMS via Twilio Programmable Messaging.",
			"de": "Versendet Bestätigungscodes per SMS über Twilio Programmable Messaging.",
			"es": "Envía códigos de verificación por SMS a través de Twilio Programmable Messaging.",
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

// configTemplate is a valid configuration with sandbox credentials and every usage type.
func configTemplate() map[string]any {
	return map[string]any{
		"accountSID":              templateAccountSID,
		"authToken":               templateAuthToken,
		"fromMessagingServiceSID": templateServiceSID,
		"templates":               templatesJSON(),
	}
}

// formItems is the configuration form, in display order, in Logto's shape.
func formItems() []connector.FormItem {
	return []connector.FormItem{
		{
			Key: "accountSID", Label: "Account SID", Type: connector.FormItemText, Required: true,
			Placeholder: "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			Description: "Your Twilio Account SID: AC followed by 32 hex digits, on the Twilio Console's home page.",
		},
		{
			Key: "authToken", Label: "Auth Token", Type: connector.FormItemText, Confidential: true,
			Placeholder: "<auth-token>",
			Description: "The account's Auth Token. Required unless you authenticate with an API key (apiKeySID and apiKeySecret).",
		},
		{
			Key: "fromMessagingServiceSID", Label: "From Messaging Service SID", Type: connector.FormItemText,
			Placeholder: "MGxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			Description: "The Messaging Service that sends the messages (MG followed by 32 hex digits). Give this or From, not both.",
		},
		{
			Key: "from", Label: "From", Type: connector.FormItemText,
			Placeholder: "+14155550123",
			Description: "Instead of a Messaging Service: a phone number of your account in E.164 form, or an alphanumeric sender ID (1 to 11 letters, digits and spaces, at least one letter) where the destination country allows it.",
		},
		{
			Key: "apiKeySID", Label: "API Key SID", Type: connector.FormItemText,
			Placeholder: "SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			Description: "Optional: a Twilio API key (SK followed by 32 hex digits) to authenticate with instead of the Auth Token.",
		},
		{
			Key: "apiKeySecret", Label: "API Key Secret", Type: connector.FormItemText, Confidential: true,
			Placeholder: "<api-key-secret>",
			Description: "The API key's secret, shown once when the key was created. Required with API Key SID.",
		},
		{
			Key: "host", Label: "API host", Type: connector.FormItemText,
			Placeholder: "api.twilio.com",
			Description: "Twilio API host name only, without https://, port or path: api.twilio.com (default) or a regional host like api.dublin.ie1.twilio.com.",
		},
		{
			Key: "disableRiskCheck", Label: "Disable risk check", Type: connector.FormItemSwitch, Default: false,
			Description: "Turns off Twilio's SMS pumping protection for these messages (RiskCheck=disable). Leave it off unless Twilio asks otherwise.",
		},
		{
			Key: "validityPeriod", Label: "Validity period (seconds)", Type: connector.FormItemNumber,
			Placeholder: "600",
			Description: "Optional, 1 to " + strconv.Itoa(MaxValidityPeriod) + ": how long Twilio keeps trying to deliver a message. Set it to the code's lifetime so a late SMS is dropped.",
		},
		{
			Key: "templates", Label: "Templates", Type: connector.FormItemJSON, Required: true,
			Default:     templatesJSON(),
			Description: "A list of {usageType, content, locale?}. {{code}} is replaced by the code, {{link}} by the link (organization invitations); each template needs one of them. A Generic template is required: it is used for any usage type without its own. Add locale (a BCP 47 tag such as fr or pt-BR) to localise.",
		},
	}
}

// ConfigSchema returns the JSON Schema (draft 2020-12) of the configuration, as JSON-like
// values; a fresh copy on every call. It is built from the same patterns ParseConfig uses.
// Two rules it cannot express are documented in descriptions instead: templates may not repeat
// a (usageType, locale) pair, and lengths are counted in UTF-16 code units, as Twilio does.
func ConfigSchema() map[string]any {
	optional := func(pattern string) string { return "^(" + pattern[1:len(pattern)-1] + ")?$" }
	nonEmpty := func(field string) map[string]any {
		return map[string]any{
			"required":   []any{field},
			"properties": map[string]any{field: map[string]any{"minLength": 1}},
		}
	}
	containsUsage := func(u connector.UsageType) map[string]any {
		return map[string]any{"contains": map[string]any{
			"required":   []any{"usageType"},
			"properties": map[string]any{"usageType": map[string]any{"const": string(u)}},
		}}
	}
	everyUsage := make([]any, 0, 9)
	for _, u := range connector.UsageTypes() {
		everyUsage = append(everyUsage, containsUsage(u))
	}
	templates := connector.TemplatesSchema(MaxBodyLength, "Message templates. A Generic template (the fallback for every usage type) is required "+
		"unless every usage type has its own. No two templates may share usageType and locale.")
	templates["anyOf"] = []any{containsUsage(connector.UsageGeneric), map[string]any{"allOf": everyUsage}}
	return map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  "https://sms-connector.dev/schemas/twilio-config.json",
		"title":                "Twilio SMS connector configuration",
		"description":          "A superset of Logto's Twilio SMS connector configuration. Empty strings count as absent.",
		"type":                 "object",
		"additionalProperties": false,
		"required":             []any{"accountSID", "templates"},
		"properties": map[string]any{
			"accountSID": map[string]any{
				"type": "string", "pattern": patternAccountSID,
				"description": "The Twilio Account SID: AC followed by 32 hex digits.",
			},
			"authToken": map[string]any{
				"type": "string", "pattern": optional(patternCredential), "writeOnly": true,
				"description": "The account's Auth Token (secret). Required unless apiKeySID and apiKeySecret are given.",
			},
			"fromMessagingServiceSID": map[string]any{
				"type": "string", "pattern": optional(patternServiceSID),
				"description": "The Messaging Service that sends: MG followed by 32 hex digits. Exactly one of this and from.",
			},
			"from": map[string]any{
				"type": "string",
				"anyOf": []any{
					map[string]any{"maxLength": 0},
					map[string]any{"pattern": patternE164},
					map[string]any{"pattern": patternAlphaSender, "maxLength": maxAlphaSenderLen},
				},
				"description": "The sender: an E.164 number of the account, or an alphanumeric sender ID of 1 to 11 letters, digits and spaces with at least one letter. Exactly one of this and fromMessagingServiceSID.",
			},
			"apiKeySID": map[string]any{
				"type": "string", "pattern": optional(patternAPIKeySID),
				"description": "A Twilio API key: SK followed by 32 hex digits. With apiKeySecret, used instead of authToken.",
			},
			"apiKeySecret": map[string]any{
				"type": "string", "pattern": optional(patternCredential), "writeOnly": true,
				"description": "The API key's secret.",
			},
			"host": map[string]any{
				"type": "string", "pattern": optional(patternHost), "maxLength": 253,
				"description": "Twilio's API host: api.twilio.com (default) or api.<edge>.<region>.twilio.com, host name only.",
			},
			"templates": templates,
			"disableRiskCheck": map[string]any{
				"type": "boolean", "default": false,
				"description": "Sends RiskCheck=disable, turning off Twilio's SMS pumping protection.",
			},
			"validityPeriod": map[string]any{
				"type": "integer", "minimum": 1, "maximum": MaxValidityPeriod,
				"description": "Seconds Twilio keeps trying to deliver a message; set it to the code's lifetime.",
			},
		},
		"allOf": []any{
			// Exactly one sender.
			map[string]any{"oneOf": []any{
				map[string]any{"allOf": []any{nonEmpty("fromMessagingServiceSID"), map[string]any{"not": nonEmpty("from")}}},
				map[string]any{"allOf": []any{nonEmpty("from"), map[string]any{"not": nonEmpty("fromMessagingServiceSID")}}},
			}},
			// An auth token or a complete API key.
			map[string]any{"anyOf": []any{
				nonEmpty("authToken"),
				map[string]any{"allOf": []any{nonEmpty("apiKeySID"), nonEmpty("apiKeySecret")}},
			}},
			// An API key comes with its secret, and a secret with its key.
			map[string]any{"if": nonEmpty("apiKeySID"), "then": nonEmpty("apiKeySecret")},
			map[string]any{"if": nonEmpty("apiKeySecret"), "then": nonEmpty("apiKeySID")},
		},
	}
}
