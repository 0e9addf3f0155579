package dashboard

import "testing"

// A value in an entry (its reason) cannot start a field or an event of the
// stream: every kind of line break is taken out.
func TestSSEData(t *testing.T) {
	for in, want := range map[string]string{
		"<tr><td>ok</td></tr>":              "<tr><td>ok</td></tr>",
		"a\nevent: reload\n":                "aevent: reload",
		"a\r\revent: reload\r":              "aevent: reload",
		"a\r\nevent: reload\r\ndata: x":     "aevent: reloaddata: x",
		"<td>why\r</td>\n<td>\r\nnext</td>": "<td>why</td><td>next</td>",
	} {
		if got := sseData(in); got != want {
			t.Errorf("sseData(%q) = %q, want %q", in, got, want)
		}
	}
}
