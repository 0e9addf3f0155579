package webhook

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

func TestMetaPatch(t *testing.T) {
	journal := map[string]string{"waygate.dev/journal": "[]"}
	fin := []string{"waygate.dev/audit"}
	for _, tc := range []struct {
		name              string
		annotations, want map[string]string
		finalizers, wantF []string
		ops               int
	}{
		{name: "nothing to change", annotations: journal, want: journal, finalizers: fin, wantF: fin, ops: 0},
		{name: "first journal and finalizer", want: journal, wantF: fin, ops: 2},
		{name: "journal added next to other annotations", annotations: map[string]string{"team": "a"},
			want: map[string]string{"team": "a", "waygate.dev/journal": "[]"}, finalizers: fin, wantF: fin, ops: 1},
		{name: "last annotation removed", annotations: journal, finalizers: fin, wantF: fin, ops: 1},
		{name: "finalizer restored after a user removed it", annotations: journal, want: journal,
			finalizers: []string{"other"}, wantF: []string{"other", "waygate.dev/audit"}, ops: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := &waygatev1.RouteGate{ObjectMeta: metav1.ObjectMeta{Name: "g", Annotations: tc.annotations, Finalizers: tc.finalizers}}
			want := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Annotations: tc.want, Finalizers: tc.wantF}}
			ops := metaPatch(obj, want)
			if len(ops) != tc.ops {
				t.Fatalf("%d operations, want %d: %v", len(ops), tc.ops, ops)
			}
			raw, _ := json.Marshal(obj)
			patch, _ := json.Marshal(ops)
			decoded, err := jsonpatch.DecodePatch(patch)
			if err != nil {
				t.Fatal(err)
			}
			out, err := decoded.Apply(raw)
			if err != nil {
				t.Fatalf("applying %s: %v", patch, err)
			}
			var got waygatev1.RouteGate
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got.Annotations, tc.want) || !slices.Equal(got.Finalizers, tc.wantF) {
				t.Errorf("patched metadata: annotations %v finalizers %v, want %v %v", got.Annotations, got.Finalizers, tc.want, tc.wantF)
			}
		})
	}
}

func TestLocate(t *testing.T) {
	cases := map[string]string{
		`{"spec":{"route":"/a","window":{"start":"tomorrow","end":"2030-01-02T00:00:00Z"}}}`: ".spec.window.start",
		`{"spec":{"route":"/a","burst":"lots"}}`:                                             ".spec.burst",
		`{"metadata":{"name":5},"spec":{}}`:                                                  ".metadata.name",
		`{"spec":{"exempt":[1]}}`:                                                            ".spec.exempt",
		`{"spec":{"route":"/a"}}`:                                                            "",
	}
	for raw, want := range cases {
		typ := reflect.TypeOf(waygatev1.RouteGate{})
		if strings.Contains(raw, "burst") {
			typ = reflect.TypeOf(waygatev1.RateLimitPolicy{})
		}
		if got := locate([]byte(raw), typ, ""); got != want {
			t.Errorf("locate(%s) = %q, want %q", raw, got, want)
		}
	}
}
