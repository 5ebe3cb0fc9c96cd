package connector

import (
	"strings"

	bcp47 "golang.org/x/text/language"
)

// ValidLocale reports whether tag is a BCP 47 language tag a platform can mean: well formed,
// subtags joined by hyphens, registered, and naming a language ("en", "fr-CA", "zh-Hant-TW",
// "es-419"; any case). It is the one check of a language tag: template locales and the keys of
// Metadata.Name and Metadata.Description are held to it. "en_US" (not BCP 47, though
// golang.org/x/text reads it), "und" and "root" (no language) are not locales.
func ValidLocale(tag string) bool {
	if strings.Contains(tag, "_") {
		return false
	}
	t, err := bcp47.Parse(tag)
	return err == nil && t != bcp47.Und
}
