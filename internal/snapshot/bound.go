package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// Size limits of a snapshot's job data. A job is always mirrored: a value too long for the
// object is cut and visibly marked ("...[cut by dlcsync: N bytes]", N the length it had), never
// refused by the apiserver.
const (
	// MaxStringBytes bounds every string of a snapshot's job, in JSON-encoded bytes. It is the
	// smallest maxLength the status schema puts on a copied value: a condition message (which
	// carries the job's reasonMessage) allows 32,768 characters. Encoded bytes are never fewer
	// than characters, so a string within it fits any field of the schema.
	MaxStringBytes = 32768
	// MaxJobBytes bounds the JSON-encoded bytes of all the strings of a job together. When a job
	// exceeds it, the longest strings are cut first, all to one common length, until the job
	// fits. With the status's copies of displayName and reasonMessage and its condition messages,
	// a snapshot stays far below etcd's 1.5 MiB request limit.
	MaxJobBytes = 256 << 10
	// MaxKeyBytes bounds a map key (an env name, an annotation key). A longer key is cut with a
	// hash of the whole key, so two long keys stay distinct.
	MaxKeyBytes = 1024
	// minCut is the shortest a cut string gets: the marker alone.
	minCut = len("...[cut by dlcsync: 1000000000 bytes]")
)

// markCut is the marker that ends a cut string.
func markCut(n int) string { return fmt.Sprintf("...[cut by dlcsync: %d bytes]", n) }

// jsonRuneLen is the length of r in the output of encoding/json, which escapes quotes, the
// backslash, control characters, <, >, & and the JavaScript line separators.
func jsonRuneLen(r rune, size int) int {
	switch {
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
		return 6
	}
	return size
}

// jsonLen is the length of s encoded as a JSON string, without the quotes.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		n += jsonRuneLen(r, size)
		i += size
	}
	return n
}

// cut returns s when its encoded length is within limit, otherwise its longest prefix (whole
// runes) that, with the marker, fits limit.
func cut(s string, limit int) string {
	if len(s) <= limit/6 || jsonLen(s) <= limit {
		return s
	}
	marker := markCut(len(s))
	room, used, n := limit-len(marker), 0, 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		w := jsonRuneLen(r, size)
		if used+w > room {
			break
		}
		used += w
		n += size
	}
	return s[:n] + marker
}

// cutKey bounds a map key, keeping distinct keys distinct.
func cutKey(k string) string {
	if jsonLen(k) <= MaxKeyBytes {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return cut(k, MaxKeyBytes-17) + "-" + hex.EncodeToString(sum[:8])
}

// clean makes every string valid UTF-8 (the apiserver's JSON would replace invalid bytes
// anyway, and a hash must see what is stored) and removes URL userinfo.
func clean(v reflect.Value) {
	fix := func(s string) string { return scrubURLs(strings.ToValidUTF8(s, "\uFFFD")) }
	eachString(v, stringFuncs{key: func(k string) string { return cutKey(fix(k)) }, value: fix})
}

// bound cuts the strings under v to MaxStringBytes and, when they still exceed MaxJobBytes
// together, cuts the longest ones further, to the common length at which they fit ("water
// filling"), so short fields (IDs, statuses, times) keep their values.
func bound(v reflect.Value) {
	var lengths []int
	keys := 0
	eachString(v, stringFuncs{
		key:   func(k string) string { keys += jsonLen(k); return k },
		value: func(s string) string { lengths = append(lengths, min(jsonLen(s), MaxStringBytes)); return s },
	})
	limit := MaxStringBytes
	if total := keys + sum(lengths); total > MaxJobBytes {
		limit = min(limit, waterLevel(lengths, MaxJobBytes-keys))
	}
	eachString(v, stringFuncs{key: func(k string) string { return k }, value: func(s string) string { return cut(s, limit) }})
}

// waterLevel is the largest length c such that the lengths, each cut to c, sum to at most
// budget; never below minCut.
func waterLevel(lengths []int, budget int) int {
	ls := slices.Clone(lengths)
	slices.SortFunc(ls, func(a, b int) int { return b - a })
	rest := sum(ls)
	for k := range ls {
		rest -= ls[k] // the strings after the k+1 longest, kept whole
		c := (budget - rest) / (k + 1)
		next := 0
		if k+1 < len(ls) {
			next = ls[k+1]
		}
		if c >= next {
			return max(c, minCut)
		}
	}
	return minCut
}

func sum(ls []int) int {
	n := 0
	for _, l := range ls {
		n += l
	}
	return n
}
