package connector

import (
	"encoding/json"
	"testing"
)

// TestReadConfigRefusesInvalidUTF8: a configuration whose text is not UTF-8, wherever the bad
// byte is, is one violation of the whole configuration, and read never runs: encoding/json
// would otherwise read each bad byte as U+FFFD and quietly change the value.
func TestReadConfigRefusesInvalidUTF8(t *testing.T) {
	for _, raw := range []string{
		"{\"authToken\": \"abc\xffdef\"}", // inside a string value
		"{\"auth\xffToken\": \"abcdef\"}", // inside a key
		"{\"a\": \"\xed\xa0\x80\"}",       // an encoded surrogate
		"{\"a\": 1}\xff",                  // after the object
	} {
		read := false
		v, vs := ReadConfig(json.RawMessage(raw), func(r *ConfigReader, raw json.RawMessage) *map[string]any {
			read = true
			m := map[string]any{}
			return &m
		})
		if v != nil || read || len(vs) != 1 || vs[0].Field != "" || vs[0].Description != "is not valid UTF-8: the configuration must be JSON text in UTF-8" {
			t.Errorf("%q: value %v, read %v, violations %v; want one violation of the whole configuration", raw, v, read, vs)
		}
	}
}
