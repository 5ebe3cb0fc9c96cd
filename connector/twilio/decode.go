package twilio

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math/bits"
	"unicode/utf8"
)

// Reading and decoding a 2xx answer (see readCreated). encoding/json scans Twilio's ~1 KB
// message twice (once to find the end of the value, once to unmarshal it) at some 10 ns a byte,
// to fill two fields; under load that was a tenth of the server's CPU. The connector therefore
// reads the answer into a pooled buffer and tries decodeCreated, a single-pass scanner that
// accepts only answers whose result it is sure of, and hands everything else to encoding/json,
// whose result and error are then exactly those of the plain decoder.
const (
	// maxFastBody bounds how much of a 2xx answer readCreated reads before it decodes; Twilio's
	// message is about 1 KB. A longer answer is still decoded, by encoding/json, from the bytes
	// read and the rest of the body.
	maxFastBody = 64 << 10
	// bodyBufSize is the first capacity of a pooled buffer; it grows, up to maxFastBody, when an
	// answer is longer.
	bodyBufSize = 4 << 10
	// maxFastDepth bounds the nesting of arrays and objects that decodeCreated follows (the top
	// object is at depth 1; Twilio's message reaches 2). Deeper values go to encoding/json,
	// which has its own, higher limit.
	maxFastDepth = 64
)

// readMessage decodes the created message of a 2xx answer's body as
// json.NewDecoder(body).Decode would (see readCreated), into a buffer from the Connector's pool,
// so that a Send allocates no buffer of its own.
func (c *Connector) readMessage(body io.Reader) (createdMessage, error) {
	bp, _ := c.bodyBufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, bodyBufSize)
		bp = &b
	}
	m, err := readCreated(body, bp, maxFastBody)
	c.bodyBufs.Put(bp)
	return m, err
}

// readCreated reads the created message from body as json.NewDecoder(body).Decode would, with
// the same result and the same error, reading at most limit bytes of body before it decodes.
//
// It reads body into *buf (reusing its storage, growing it up to limit bytes) until EOF, a
// read error or limit, and returns decodeCreated's answer when that one is sure. Otherwise
// encoding/json decodes the bytes read followed by what the body has left (nothing more than
// the same error when reading stopped on one, so the decoder sees exactly the stream it would
// have seen). A read error after the end of the first JSON value is ignored, as the decoder
// ignores it: it never reads that far. (Unlike the decoder, readCreated waits for the end of a
// short body; the connector drains the body after decoding anyway, see attemptTransport.finish.)
// buf is left holding the (possibly grown) storage, for the caller to reuse; the returned
// strings never share it.
func readCreated(body io.Reader, buf *[]byte, limit int) (createdMessage, error) {
	b, rerr := readUpTo(body, (*buf)[:0], limit)
	*buf = b[:0]
	if m, ok := decodeCreated(b); ok {
		return m, nil
	}
	rest := body
	if rerr != nil {
		rest = errReader{rerr}
	}
	var m createdMessage
	err := json.NewDecoder(io.MultiReader(bytes.NewReader(b), rest)).Decode(&m)
	return m, err
}

// readUpTo appends what r yields to b until r returns an error (io.EOF included), which it
// returns, or b holds limit bytes, when it returns nil. It grows b by doubling, never beyond
// limit, so that a short answer only ever uses the pooled buffer.
func readUpTo(r io.Reader, b []byte, limit int) ([]byte, error) {
	for len(b) < limit {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(max(2*cap(b), 512), limit))
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):min(cap(b), limit)])
		b = b[:len(b)+n]
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// errReader is a reader that has nothing left but err: what a body that failed, or ended,
// yields when read again.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// decodeCreated is the fast path of readCreated: it decodes the first JSON value of b into a
// createdMessage in a single pass, and reports ok only when the result is certainly the one
// json.NewDecoder(bytes.NewReader(b)).Decode(&m) gives, with a nil error.
//
// It checks the syntax of the whole first value, as the decoder does before it unmarshals
// anything (strings with their escapes and control characters, numbers by the JSON grammar,
// literals, separators, whitespace), and ignores what follows it. The value must be an object;
// its "sid" and "status" members must be strings without escapes, in valid UTF-8, so that their
// bytes are their value (a repeated member is read as the decoder reads it: the last one wins).
// It gives up (ok false) on anything else, which encoding/json then decodes with its own result
// or error: a value that is not an object, a syntax error or a value cut short, nesting deeper
// than maxFastDepth, a "sid" or "status" that is null, not a string or escaped, and any top-level
// name with an escape or a non-ASCII byte, or equal to "sid" or "status" only when the case is
// ignored: encoding/json matches names to fields without regard to (Unicode) case.
func decodeCreated(b []byte) (m createdMessage, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return createdMessage{}, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return m, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return createdMessage{}, false
		}
		end, plain := scanString(b, i)
		if end < 0 {
			return createdMessage{}, false
		}
		field := topField(b[i+1:end-1], plain)
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return createdMessage{}, false
		}
		i = skipSpace(b, i+1)
		switch field {
		case fieldOther:
			i = skipValue(b, i, 1)
		case fieldSid, fieldStatus:
			if i >= len(b) || b[i] != '"' {
				return createdMessage{}, false
			}
			end, plain := scanString(b, i)
			if end < 0 || !plain || !utf8.Valid(b[i+1:end-1]) {
				return createdMessage{}, false
			}
			if field == fieldSid {
				m.Sid = string(b[i+1 : end-1])
			} else {
				m.Status = string(b[i+1 : end-1])
			}
			i = end
		default:
			return createdMessage{}, false
		}
		if i < 0 {
			return createdMessage{}, false
		}
		var done bool
		if i, done = nextMember(b, i, '}'); i < 0 {
			return createdMessage{}, false
		} else if done {
			return m, true
		}
	}
}

// nextMember reads what follows a member of an object or an element of an array, from b[i]
// on: white space, then a comma, after which it returns where the next one starts, or the
// closing bracket, after which it returns the end of the object or array and done. It returns
// -1 on anything else.
func nextMember(b []byte, i int, closing byte) (next int, done bool) {
	i = skipSpace(b, i)
	if i >= len(b) {
		return -1, false
	}
	switch b[i] {
	case ',':
		return skipSpace(b, i+1), false
	case closing:
		return i + 1, true
	}
	return -1, false
}

// What a top-level name is to decodeCreated.
const (
	fieldOther  = iota // a name no field of createdMessage matches
	fieldSid           // exactly "sid"
	fieldStatus        // exactly "status"
	fieldUnsure        // a name encoding/json might match to a field other than by equality
)

// topField classifies the top-level name key (the bytes between its quotes; plain when they
// hold no escape). encoding/json matches a name to a field exactly first, then with Unicode case
// folding (so "SID", and even "ſid" with a long s, decode into Sid); only plain ASCII names
// are classified here, the rest are unsure.
func topField(key []byte, plain bool) int {
	if !plain {
		return fieldUnsure
	}
	switch {
	case string(key) == "sid":
		return fieldSid
	case string(key) == "status":
		return fieldStatus
	case foldsTo(key, "sid"), foldsTo(key, "status"):
		return fieldUnsure
	}
	if hasNonASCII(key) {
		return fieldUnsure
	}
	return fieldOther
}

// hasNonASCII reports whether b has a byte at or above 0x80, looking at eight bytes at a time.
func hasNonASCII(b []byte) bool {
	var or uint64
	for len(b) >= 8 {
		or |= binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	for _, c := range b {
		or |= uint64(c)
	}
	return or&0x8080808080808080 != 0
}

// foldsTo reports whether the name key is lower (lowercase ASCII letters) when the case of
// ASCII letters is ignored. A byte at or above 0x80 never matches.
func foldsTo(key []byte, lower string) bool {
	if len(key) != len(lower) {
		return false
	}
	for j, c := range key {
		if c|0x20 != lower[j] { // only 'X' and 'x' give 'x'
			return false
		}
	}
	return true
}

// skipSpace returns the index of the first byte of b at or after i that is not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue checks the JSON value that starts at b[i], inside a container at depth depth, and
// returns the index just after it, or -1 when it is not valid JSON, is cut short or nests deeper
// than maxFastDepth.
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; c {
	case '"':
		end, _ := scanString(b, i)
		return end
	case '{':
		if depth >= maxFastDepth {
			return -1
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return -1
			}
			if i, _ = scanString(b, i); i < 0 {
				return -1
			}
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return -1
			}
			if i = skipValue(b, skipSpace(b, i+1), depth+1); i < 0 {
				return -1
			}
			var done bool
			if i, done = nextMember(b, i, '}'); i < 0 || done {
				return i
			}
		}
	case '[':
		if depth >= maxFastDepth {
			return -1
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1
		}
		for {
			if i = skipValue(b, i, depth+1); i < 0 {
				return -1
			}
			var done bool
			if i, done = nextMember(b, i, ']'); i < 0 || done {
				return i
			}
		}
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return scanNumber(b, i)
		}
		return -1
	}
}

// skipLiteral returns the index just after lit when b holds it at i, else -1. What follows it
// is the caller's to check: "truex" is then rejected for the x.
func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanString checks the JSON string whose opening quote is b[i] and returns the index just
// after its closing quote, and whether it holds no escape (its bytes are then its value, when
// they are valid UTF-8); -1 when it is invalid (a control character, a bad escape) or cut short.
func scanString(b []byte, i int) (end int, plain bool) {
	plain = true
	i++
	for {
		// Most bytes are neither special nor control characters: skip them eight at a time,
		// then one at a time.
		for len(b)-i >= 8 {
			if m := stopBytes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		for i < len(b) && b[i] >= 0x20 && b[i] != '"' && b[i] != '\\' {
			i++
		}
		if i >= len(b) || b[i] < 0x20 {
			return -1, false
		}
		if b[i] == '"' {
			return i + 1, plain
		}
		// A backslash.
		plain = false
		if i+1 >= len(b) {
			return -1, false
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
				return -1, false
			}
			i += 6
		default:
			return -1, false
		}
	}
}

// stopBytes returns, of the eight bytes of w (the first in the low byte), a mask whose lowest
// set bit is the top bit of the first byte that ends a run of a string's plain bytes: a quote,
// a backslash or a control character (below 0x20); 0 when there is none. Bits above the lowest
// may be set wrongly (by a borrow), so only the lowest one counts.
//
// (x - 0x01…01*n) & ^x & 0x80…80 flags the bytes of x below n (n <= 0x80): the subtraction of a
// byte at or above n borrows nothing, and its top bit is then set only when x's is; the first
// byte below n wraps around to a value with its top bit set, its own top bit clear.
func stopBytes(w uint64) uint64 {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	s := w ^ (ones * '\\')
	return ((w-ones*0x20) & ^w | (q-ones) & ^q | (s-ones) & ^s) & tops
}

// isHex reports whether c is a hexadecimal digit.
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanNumber checks the JSON number that starts at b[i] (a minus sign or a digit) and returns
// the index just after it, or -1: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. A digit
// after a leading 0 ends the number there, and the caller then rejects that digit.
func scanNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i+1 >= len(b) || !isDigit(b[i+1]) {
			return -1
		}
		i = skipDigits(b, i+2)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		i = skipDigits(b, i+1)
	}
	return i
}

// isDigit reports whether c is a decimal digit.
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipDigits returns the index of the first byte of b at or after i that is not a digit.
func skipDigits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}
