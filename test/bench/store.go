package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// clear deletes the snapshots every earlier phase left, and waits until the apiserver no longer
// lists any.
//
// A store that grows from phase to phase makes later phases slower (the apiserver's watch
// cache and heap grow with it), which would favour whichever side runs first; each phase starts
// from the same empty store instead. The snapshots are deleted in etcd directly, without the
// apiserver's work per object (admission, finalizer checks, encoding, audit): through the
// apiserver, clearing took about 4 minutes of a full run (430 objects/s with 8 delete-collection
// workers) and measured nothing. The apiserver's watch cache sees the deletions from its etcd
// watch, as it sees its own; snapshots carry no finalizers, and no manager runs while the store
// is cleared.
func (b *bencher) clear(ctx context.Context) error {
	start, total := time.Now(), 0
	for _, ns := range b.filled {
		n, err := b.etcd.deletePrefix(ctx, snapshotKeyPrefix(ns))
		total += n
		if err != nil {
			return fmt.Errorf("clearing %s: %w", ns, err)
		}
		if err := waitFor(ctx, func() (bool, error) {
			var list dlcv1alpha1.DLCJobSnapshotList
			err := b.k8s.List(ctx, &list, client.InNamespace(ns), client.Limit(1))
			return err == nil && len(list.Items) == 0, err
		}); err != nil {
			return fmt.Errorf("clearing %s: %w", ns, err)
		}
	}
	b.filled = nil
	if total > 0 {
		b.logf("cleared %d snapshots in %s", total, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// snapshotKeyPrefix is where kube-apiserver (its default --etcd-prefix, /registry) keeps the
// snapshots of a namespace.
func snapshotKeyPrefix(namespace string) string {
	return fmt.Sprintf("/registry/%s/dlcjobsnapshots/%s/", dlcv1alpha1.GroupVersion.Group, namespace)
}

// etcdKV speaks to envtest's etcd through its JSON gateway (/v3/kv/...), which needs no
// client library.
type etcdKV struct {
	url string
	hc  *http.Client
}

// deletePrefix deletes every key under prefix and returns how many there were. A range
// of keys at a time (deleteChunk), in one request each: a request per key took 8 s for 10,000
// keys, the whole prefix in one request 0.1 s but as one watch event batch of every deleted
// object for the apiserver; chunks keep both small.
func (e etcdKV) deletePrefix(ctx context.Context, prefix string) (int, error) {
	var listed struct {
		KVs []struct {
			Key []byte `json:"key"` // base64 in JSON, as []byte is
		} `json:"kvs"`
	}
	if err := e.call(ctx, "range", map[string]any{"key": []byte(prefix), "range_end": prefixEnd(prefix), "keys_only": true},
		&listed); err != nil {
		return 0, err
	}
	// etcd returns the keys sorted: each chunk is the range from its first key to just after
	// its last.
	for i := 0; i < len(listed.KVs); i += deleteChunk {
		last := listed.KVs[min(i+deleteChunk, len(listed.KVs))-1].Key
		end := append(append([]byte{}, last...), 0)
		if err := e.call(ctx, "deleterange", map[string]any{"key": listed.KVs[i].Key, "range_end": end}, nil); err != nil {
			return i, err
		}
	}
	return len(listed.KVs), nil
}

// deleteChunk is how many keys one etcd request deletes.
const deleteChunk = 500

// call posts body (JSON, []byte values base64 as etcd's gateway wants them) to /v3/kv/<method>.
func (e etcdKV) call(ctx context.Context, method string, body map[string]any, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(e.url, "/")+"/v3/kv/"+method, bytes.NewReader(data))
	if err != nil {
		return err
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", method, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s", method, resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// prefixEnd is the end of the key range of every key that starts with prefix.
func prefixEnd(prefix string) []byte {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}
