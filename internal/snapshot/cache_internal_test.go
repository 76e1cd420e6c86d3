package snapshot

import (
	"fmt"
	"strings"
	"testing"
)

// The intern table is bounded in bytes, however many distinct strings the snapshots carry, and a
// long string (one job's own text) is never kept in it.
func TestInterningIsBoundedInBytes(t *testing.T) {
	long := strings.Repeat("x", maxInternedLen+1)
	if got := intern(long); got != long {
		t.Fatalf("intern changed a string: %q", got)
	}
	for i := range 200_000 {
		intern(fmt.Sprintf("%0200d", i))
	}
	interned.Lock()
	defer interned.Unlock()
	if _, kept := interned.byValue[long]; kept {
		t.Errorf("a string of %d bytes was interned", len(long))
	}
	held := 0
	for k := range interned.byValue {
		held += len(k)
	}
	if held > maxInternedBytes {
		t.Errorf("the intern table holds %d bytes of strings, more than %d", held, maxInternedBytes)
	}
}
