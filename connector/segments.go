package connector

import "unicode/utf8"

// Encoding is the character set an SMS is sent in. It decides how many characters fit in one
// segment, and so what a message costs.
type Encoding string

const (
	// EncodingGSM7 is the GSM 03.38 7-bit alphabet: 160 characters in one SMS, 153 per part.
	EncodingGSM7 Encoding = "GSM-7"
	// EncodingUCS2 is UTF-16: 70 characters in one SMS, 67 per part. One character outside the
	// GSM alphabet switches the whole message to it.
	EncodingUCS2 Encoding = "UCS-2"
)

// gsmBasic is the GSM 03.38 basic character set; each costs one septet.
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtension is the GSM 03.38 extension table; each costs two septets (escape + character).
const gsmExtension = "^{}\\[~]|€\f"

// gsmCost maps a GSM-7 character to its cost in septets.
var gsmCost = func() map[rune]int {
	m := make(map[rune]int, 140)
	for _, r := range gsmBasic {
		m[r] = 1
	}
	for _, r := range gsmExtension {
		m[r] = 2
	}
	return m
}()

// CountSegments reports how many SMS segments body needs and in which encoding, following the
// GSM 03.38 / UCS-2 rules carriers bill by. An empty body is one segment.
func CountSegments(body string) (segments int, enc Encoding) {
	septets, gsm := 0, true
	for _, r := range body {
		c, ok := gsmCost[r]
		if !ok {
			gsm = false
			break
		}
		septets += c
	}
	if gsm {
		return split(septets, 160, 153), EncodingGSM7
	}
	units := 0
	for _, r := range body {
		if r == utf8.RuneError {
			units++
			continue
		}
		if r > 0xFFFF {
			units += 2
		} else {
			units++
		}
	}
	return split(units, 70, 67), EncodingUCS2
}

// split returns how many parts n units need when one part holds single units and each part of
// a concatenated message holds multi units.
func split(n, single, multi int) int {
	if n <= single {
		return 1
	}
	return (n + multi - 1) / multi
}
