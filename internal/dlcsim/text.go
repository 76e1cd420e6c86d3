package dlcsim

import (
	"slices"
	"strings"
	"unicode"
)

// tokenize splits text for the full-text parameters (ReasonSearch, UserCommandSearch,
// ImageSearch, DisplayNameSearchMode=fulltext), case-insensitively:
//   - Latin text: runs of letters and digits are words ("pytorch-training:1.12" → pytorch,
//     training, 1, 12);
//   - CJK text: each run of Han, Hiragana, Katakana or Hangul characters yields its overlapping
//     bigrams ("内存不足" → 内存, 存不, 不足), or the single character of a one-character run.
//
// Bigrams are the standard tokenisation of search engines without a dictionary (Lucene's CJK
// analyser); the real service's segmenter is not documented.
func tokenize(text string) []string {
	var tokens []string
	var word []rune
	var cjk []rune
	flushWord := func() {
		if len(word) > 0 {
			tokens = append(tokens, string(word))
			word = word[:0]
		}
	}
	flushCJK := func() {
		switch len(cjk) {
		case 0:
		case 1:
			tokens = append(tokens, string(cjk))
		default:
			for i := 0; i+1 < len(cjk); i++ {
				tokens = append(tokens, string(cjk[i:i+2]))
			}
		}
		cjk = cjk[:0]
	}
	for _, r := range text {
		switch {
		case isCJK(r):
			flushWord()
			cjk = append(cjk, r)
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			flushCJK()
			word = append(word, unicode.ToLower(r))
		default:
			flushWord()
			flushCJK()
		}
	}
	flushWord()
	flushCJK()
	return tokens
}

func isCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)
}

// tokenSet returns the sorted, de-duplicated tokens of the texts.
func tokenSet(texts ...string) []string {
	all := make([]string, 0, 8*len(texts))
	for _, t := range texts {
		all = append(all, tokenize(t)...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// containsAll reports whether every query token is in the sorted set. An empty query matches.
func containsAll(set, query []string) bool {
	for _, q := range query {
		if _, ok := slices.BinarySearch(set, q); !ok {
			return false
		}
	}
	return true
}

// globMatch matches s against a pattern where * is any run of characters and ? any one
// character, case-insensitively (both are already lowercased by the caller).
func globMatch(pattern, s string) bool {
	p, t := []rune(pattern), []rune(s)
	pi, ti, star, mark := 0, 0, -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// hasWildcard reports whether a DisplayName value uses glob syntax.
func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?") }
