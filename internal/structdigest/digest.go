// Package structdigest computes a digest of a google.protobuf.Struct straight from its wire
// bytes, without decoding it, so that the server can recognise a configuration it has seen
// before and skip decoding it again.
//
// The digest is canonical: the entries of every Struct are taken in key order, so two
// encodings of the same Struct that differ only in the order of their map entries (Go's
// protobuf writes map entries in random order unless asked for deterministic output) have
// the same digest. Two Structs that decode to different values never share one, short of a
// SHA-256 collision.
//
// Only plainly encoded Structs get a digest: every map entry with a value, every Value with
// exactly one kind, known field numbers with their proper wire types, no duplicate keys, no
// repeated singular fields, UTF-8 strings, bools of 0 or 1 and a null of 0, and nesting no
// deeper than MaxDepth. Anything else (legal protobuf, but with merge or last-one-wins
// semantics a digest would have to imitate) is refused, and the caller decodes the Struct the
// ordinary way. Every encoder in common use writes the plain form.
package structdigest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// MaxDepth bounds how many Structs and ListValues may nest inside one another. A deeper
// Struct gets no digest; configurations are a few levels deep.
const MaxDepth = 32

// Field numbers of google.protobuf.Struct, its map entries, Value and ListValue.
const (
	structFields protowire.Number = 1 // Struct.fields (map<string, Value>)
	entryKey     protowire.Number = 1 // map entry key
	entryValue   protowire.Number = 2 // map entry value
	valueNull    protowire.Number = 1 // Value.null_value
	valueNumber  protowire.Number = 2 // Value.number_value
	valueString  protowire.Number = 3 // Value.string_value
	valueBool    protowire.Number = 4 // Value.bool_value
	valueStruct  protowire.Number = 5 // Value.struct_value
	valueList    protowire.Number = 6 // Value.list_value
	listValues   protowire.Number = 1 // ListValue.values
)

// Tags of the canonical form the digest is taken over. Each value is written as a tag byte
// and a self-delimiting payload, so the form is unambiguous.
const (
	tagStruct byte = 'S'
	tagNull   byte = 'N'
	tagNumber byte = 'D'
	tagString byte = 'T'
	tagBool   byte = 'B'
	tagList   byte = 'L'
)

// Digest returns the canonical SHA-256 digest of b, the wire bytes of a
// google.protobuf.Struct, and true; or false when b is not a plainly encoded Struct (see the
// package documentation), in which case the caller should decode b instead.
func Digest(b []byte) (d [sha256.Size]byte, ok bool) {
	form, ok := appendCanonical(make([]byte, 0, len(b)+len(b)/2+64), b)
	if !ok {
		return d, false
	}
	return sha256.Sum256(form), true
}

// appendCanonical appends the canonical form of the Struct whose wire bytes are b to out, and
// reports whether b is a plainly encoded Struct. Digest hashes this form.
func appendCanonical(out, b []byte) ([]byte, bool) {
	w := writer{out: out}
	ok := w.structValue(b, 0)
	return w.out, ok
}

// writer builds the canonical form of a Struct.
type writer struct {
	out []byte
}

// entry is one map entry of a Struct: its key and the wire bytes of its Value.
type entry struct {
	key   []byte
	value []byte
}

// structValue writes the Struct whose wire bytes are b.
func (w *writer) structValue(b []byte, depth int) bool {
	if depth >= MaxDepth {
		return false
	}
	var local [16]entry
	es := local[:0]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != structFields || typ != protowire.BytesType {
			return false
		}
		b = b[n:]
		raw, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		e, ok := parseEntry(raw)
		if !ok {
			return false
		}
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(es); i++ {
		if bytes.Equal(es[i-1].key, es[i].key) {
			return false // the decoder keeps the last; refuse rather than imitate
		}
	}
	w.header(tagStruct, uint64(len(es)))
	for _, e := range es {
		w.bytes(e.key)
		if !w.value(e.value, depth) {
			return false
		}
	}
	return true
}

// parseEntry splits a map entry into its key and its Value's wire bytes. An absent key is the
// empty string; an absent value, or either field twice, is refused.
func parseEntry(b []byte) (e entry, ok bool) {
	var haveKey, haveValue bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return e, false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return e, false
		}
		b = b[n:]
		switch {
		case num == entryKey && !haveKey:
			if !utf8.Valid(v) {
				return e, false
			}
			e.key, haveKey = v, true
		case num == entryValue && !haveValue:
			e.value, haveValue = v, true
		default:
			return e, false
		}
	}
	return e, haveValue
}

// value writes the Value whose wire bytes are b: exactly one kind, once.
func (w *writer) value(b []byte, depth int) bool {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return false
	}
	b = b[n:]
	var rest []byte
	switch {
	case num == valueNull && typ == protowire.VarintType:
		v, n := protowire.ConsumeVarint(b)
		if n < 0 || v != 0 {
			return false
		}
		w.header(tagNull, 0)
		rest = b[n:]
	case num == valueBool && typ == protowire.VarintType:
		v, n := protowire.ConsumeVarint(b)
		if n < 0 || v > 1 {
			return false
		}
		w.header(tagBool, v)
		rest = b[n:]
	case num == valueNumber && typ == protowire.Fixed64Type:
		v, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return false
		}
		w.out = binary.LittleEndian.AppendUint64(append(w.out, tagNumber), v)
		rest = b[n:]
	case typ == protowire.BytesType && (num == valueString || num == valueStruct || num == valueList):
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		rest = b[n:]
		switch num {
		case valueString:
			if !utf8.Valid(v) {
				return false
			}
			w.header(tagString, uint64(len(v)))
			w.out = append(w.out, v...)
		case valueStruct:
			if !w.structValue(v, depth+1) {
				return false
			}
		default:
			if !w.listValue(v, depth+1) {
				return false
			}
		}
	default:
		return false
	}
	return len(rest) == 0 // a second kind, or the same one again, is refused
}

// listValue writes the ListValue whose wire bytes are b.
func (w *writer) listValue(b []byte, depth int) bool {
	if depth >= MaxDepth {
		return false
	}
	count := 0
	for c := b; len(c) > 0; count++ {
		num, typ, n := protowire.ConsumeTag(c)
		if n < 0 || num != listValues || typ != protowire.BytesType {
			return false
		}
		m := protowire.ConsumeFieldValue(num, typ, c[n:])
		if m < 0 {
			return false
		}
		c = c[n+m:]
	}
	w.header(tagList, uint64(count))
	for len(b) > 0 {
		_, _, n := protowire.ConsumeTag(b)
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		b = b[n:]
		if !w.value(v, depth) {
			return false
		}
	}
	return true
}

// header writes a tag byte and an unsigned number.
func (w *writer) header(tag byte, n uint64) {
	w.out = protowire.AppendVarint(append(w.out, tag), n)
}

// bytes writes a length-prefixed byte string.
func (w *writer) bytes(b []byte) {
	w.out = append(protowire.AppendVarint(w.out, uint64(len(b))), b...)
}
