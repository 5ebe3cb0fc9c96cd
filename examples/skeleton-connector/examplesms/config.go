package examplesms

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/sms-connector/sms-connector/connector"
)

// MaxBodyLength is the longest message text Example SMS accepts, in UTF-16 code units.
const MaxBodyLength = 1600

// Config is the connector's per-tenant configuration, the JSON a platform stores and sends.
// It has no URL field on purpose: where requests go is the operator's choice (Options.APIURL),
// never a tenant's, or a tenant could aim the API key and every message at a host of theirs.
type Config struct {
	// APIKey authenticates the account; confidential.
	APIKey string `json:"apiKey"`
	// From is the sender: an E.164 number or an alphanumeric sender id of 1 to 11 characters.
	From string `json:"from"`
	// Templates are the message templates, Logto's shape.
	Templates []connector.Template `json:"templates"`
}

var (
	knownFields = []string{"apiKey", "from", "templates"}
	reFrom      = regexp.MustCompile(`^(\+[1-9][0-9]{6,14}|[A-Za-z0-9 ]{1,11})$`)
	rules       = connector.TemplateRules{MaxLength: MaxBodyLength, TooLong: "is %d characters long; Example SMS accepts at most %d"}
)

// ParseConfig decodes and validates a configuration, reporting every problem at its JSON path.
func ParseConfig(raw json.RawMessage) (*Config, []connector.Violation) {
	return connector.ReadConfig(raw, func(r *connector.ConfigReader, raw json.RawMessage) *Config {
		fields, ok := r.Object(raw, "", "a JSON object")
		if !ok {
			return nil
		}
		cfg := &Config{Templates: r.TemplateList(fields, "templates", rules)}
		if key := r.String(fields, "apiKey", "apiKey"); key.Set {
			cfg.APIKey = key.Value
		} else if !key.Wrong {
			r.Add("apiKey", "is required: the API key of the Example SMS account")
		}
		switch from := r.String(fields, "from", "from"); {
		case from.Wrong:
		case !from.Set:
			r.Add("from", "is required: the sender, an E.164 number or a sender id")
		case !reFrom.MatchString(from.Value):
			r.Add("from", "must be an E.164 number (+15005550006) or a sender id of 1 to 11 letters, digits or spaces")
		default:
			cfg.From = from.Value
		}
		r.Unknown(fields, knownFields, "", "is not a field of the Example SMS configuration (known fields: "+strings.Join(knownFields, ", ")+")")
		return cfg
	})
}

// Metadata describes the connector to a platform. It never fails.
func (c *Connector) Metadata(_ context.Context) (*connector.Metadata, error) {
	templates := connector.TemplatesJSON(connector.DefaultTemplates())
	return &connector.Metadata{
		ID:          ID,
		Target:      Provider,
		Name:        map[string]string{"en": "Example SMS"},
		Description: map[string]string{"en": "Sends verification codes through the Example SMS API."},
		Readme:      "Set apiKey to your Example SMS API key and from to your sender.",
		FormItems: []connector.FormItem{
			{Key: "apiKey", Label: "API key", Type: connector.FormItemText, Required: true, Confidential: true},
			{Key: "from", Label: "Sender", Type: connector.FormItemText, Required: true, Placeholder: "Acme"},
			{Key: "templates", Label: "Templates", Type: connector.FormItemJSON, Required: true, Default: templates},
		},
		ConfigSchema: map[string]any{
			"type": "object", "required": []any{"apiKey", "from", "templates"}, "additionalProperties": false,
			"properties": map[string]any{
				"apiKey":    map[string]any{"type": "string", "minLength": 1},
				"from":      map[string]any{"type": "string", "pattern": reFrom.String()},
				"templates": connector.TemplatesSchema(MaxBodyLength, "Message templates; a Generic one serves every usage type without its own."),
			},
		},
		ConfigTemplate: map[string]any{"apiKey": "YOUR_API_KEY", "from": "Acme", "templates": templates},
		UsageTypes:     connector.UsageTypes(),
		Version:        Version,
	}, nil
}
