package cli

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/waygate-dev/waygate/internal/scheme"
)

// table prints rows under headers, aligned as kubectl aligns its tables,
// and returns the column widths, which rows printed later (--watch) keep.
func (o *Options) table(headers []string, rows [][]string) []int {
	widths := make([]int, len(headers))
	for _, r := range append([][]string{headers}, rows...) {
		for i, cell := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	o.printRow(widths, headers)
	for _, r := range rows {
		o.printRow(widths, r)
	}
	return widths
}

// printRow prints one row of a table with the given column widths.
func (o *Options) printRow(widths []int, row []string) {
	var b strings.Builder
	for i, cell := range row {
		b.WriteString(cell)
		if i < len(row)-1 {
			b.WriteString(strings.Repeat(" ", max(widths[i]-utf8.RuneCountInString(cell), 0)+3))
		}
	}
	o.printf("%s\n", b.String())
}

// structured prints obj as JSON or YAML (for -o json|yaml), with its kind
// set, as kubectl get does; it reports false for table output.
func (o *Options) structured(obj runtime.Object) (bool, error) {
	if o.Output != "json" && o.Output != "yaml" {
		return false, nil
	}
	setKind(obj)
	return true, o.encode(obj)
}

// setKind sets obj's apiVersion and kind, which objects read from the API
// server lack.
func setKind(obj runtime.Object) {
	if gvk, err := apiutil.GVKForObject(obj, scheme.Scheme); err == nil {
		obj.GetObjectKind().SetGroupVersionKind(gvk)
	}
}

// streamer prints objects one at a time, with their kind set, as kubectl
// get -w -o json|yaml prints events: with -o json one object a line (JSON
// lines), with -o yaml one document each, separated by "---".
func streamer[T runtime.Object](o *Options) func(T) error {
	first := true
	return func(obj T) error {
		setKind(obj)
		raw, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		if o.Output == "yaml" {
			if raw, err = yaml.JSONToYAML(raw); err != nil {
				return err
			}
			if !first {
				raw = append([]byte("---\n"), raw...)
			}
		} else {
			raw = append(raw, '\n')
		}
		first = false
		_, err = o.Out.Write(raw)
		return err
	}
}

// encode prints v as JSON, or YAML with -o yaml.
func (o *Options) encode(v any) error {
	raw, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	if o.Output == "yaml" {
		if raw, err = yaml.JSONToYAML(raw); err != nil {
			return err
		}
	} else {
		raw = append(raw, '\n')
	}
	_, err = o.Out.Write(raw)
	return err
}

// formatTime shows t in local time, or UTC with --utc.
func (o *Options) formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if o.UTC {
		t = t.UTC()
	} else {
		t = t.Local()
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

// age is how long ago t was, as kubectl shows ages (5m, 3d4h), or "in 2h"
// for a time to come.
func (o *Options) age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := o.Now().Sub(t)
	if d < 0 {
		return "in " + duration.HumanDuration(-d)
	}
	return duration.HumanDuration(d)
}

// orDash is s, or "-" when empty, for table cells.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
