package connector

import (
	"strings"
	"testing"
)

func TestCountSegments(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		segments int
		enc      Encoding
	}{
		{"empty", "", 1, EncodingGSM7},
		{"short gsm", "Your code is 123456", 1, EncodingGSM7},
		{"160 gsm", strings.Repeat("a", 160), 1, EncodingGSM7},
		{"161 gsm", strings.Repeat("a", 161), 2, EncodingGSM7},
		{"306 gsm", strings.Repeat("a", 306), 2, EncodingGSM7},
		{"307 gsm", strings.Repeat("a", 307), 3, EncodingGSM7},
		{"extension costs two", strings.Repeat("a", 158) + "€", 1, EncodingGSM7},
		{"extension tips over", strings.Repeat("a", 159) + "{", 2, EncodingGSM7},
		{"gsm accents", "Código: 1234 é à ñ ü Ø", 1, EncodingUCS2}, // ó is not GSM
		{"gsm basic accents", "é à ñ ü Ø Ä", 1, EncodingGSM7},
		{"70 ucs2", strings.Repeat("й", 70), 1, EncodingUCS2},
		{"71 ucs2", strings.Repeat("й", 71), 2, EncodingUCS2},
		{"134 ucs2", strings.Repeat("й", 134), 2, EncodingUCS2},
		{"135 ucs2", strings.Repeat("й", 135), 3, EncodingUCS2},
		{"emoji counts two", strings.Repeat("й", 68) + "😀", 1, EncodingUCS2},
		{"emoji tips over", strings.Repeat("й", 69) + "😀", 2, EncodingUCS2},
		{"chinese", "您的验证码是 123456", 1, EncodingUCS2},
		{"invalid utf8", "code \xff", 1, EncodingUCS2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, enc := CountSegments(tt.body)
			if n != tt.segments || enc != tt.enc {
				t.Errorf("CountSegments(%q) = %d, %s; want %d, %s", tt.body, n, enc, tt.segments, tt.enc)
			}
		})
	}
}
