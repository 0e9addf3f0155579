package flags

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/blang/semver/v4"
	"k8s.io/apimachinery/pkg/util/validation/field"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// clause is a Clause compiled: its values parsed once, as its operator
// compares them.
type clause struct {
	attr   string
	op     waygatev1.Operator
	negate bool
	// missing is the operator's result for a context without the attribute:
	// true for is_not and not_in only.
	missing bool
	// The values, in the form the operator compares.
	strs  []string
	set   map[string]struct{} // strs, for long lists of is, is_not, in, not_in
	res   []*regexp.Regexp
	nums  []float64
	times []time.Time
	vers  []semver.Version
	// segs are the segments of in_segment and not_in_segment, by key (nil
	// for a key no segment has), resolved once every segment is compiled.
	segs []*segment
}

// setAbove is the number of values from which is and in look values up in a
// map rather than compare them one by one.
const setAbove = 8

// compileClause compiles c. Values its operator cannot read are reported
// as errors, one for each, under path (values[i]); the clause then never
// matches.
func compileClause(c waygatev1.Clause, path *field.Path) (*clause, field.ErrorList) {
	cl := &clause{attr: c.Attribute, op: c.Operator, negate: c.Negate,
		missing: c.Operator == waygatev1.OperatorIsNot || c.Operator == waygatev1.OperatorNotIn}
	var errs field.ErrorList
	bad := func(i int, err error) {
		errs = append(errs, field.Invalid(path.Child("values").Index(i), c.Values[i], fmt.Sprintf("operator %s: %v", c.Operator, err)))
	}
	switch c.Operator {
	case waygatev1.OperatorMatches, waygatev1.OperatorNotMatches:
		for i, v := range c.Values {
			re, err := regexp.Compile(v)
			if err != nil {
				bad(i, fmt.Errorf("not a valid regular expression (RE2 syntax): %w", err))
				continue
			}
			cl.res = append(cl.res, re)
		}
	case waygatev1.OperatorGT, waygatev1.OperatorGTE, waygatev1.OperatorLT, waygatev1.OperatorLTE:
		for i, v := range c.Values {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				bad(i, fmt.Errorf("not a number: write a decimal number such as 18 or 2.5"))
				continue
			}
			cl.nums = append(cl.nums, n)
		}
	case waygatev1.OperatorBefore, waygatev1.OperatorAfter:
		for i, v := range c.Values {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				bad(i, fmt.Errorf("not a time: write an RFC 3339 time such as 2026-06-01T03:00:00Z"))
				continue
			}
			cl.times = append(cl.times, t)
		}
	case waygatev1.OperatorSemverEq, waygatev1.OperatorSemverLT, waygatev1.OperatorSemverGT:
		for i, v := range c.Values {
			ver, err := semver.ParseTolerant(v)
			if err != nil {
				bad(i, fmt.Errorf("not a semantic version: write a version such as 1.4.0 (%w)", err))
				continue
			}
			cl.vers = append(cl.vers, ver)
		}
	default:
		cl.strs = slices.Clone(c.Values)
		if len(cl.strs) > setAbove {
			cl.set = make(map[string]struct{}, len(cl.strs))
			for _, v := range cl.strs {
				cl.set[v] = struct{}{}
			}
		}
	}
	return cl, errs
}

// ValidateClauses checks that every clause's values suit its operator:
// regular expressions compile, numbers, times and versions parse. The schema
// checks everything else. It is the engine's own compilation, so what it
// accepts is what evaluates.
func ValidateClauses(clauses []waygatev1.Clause, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range clauses {
		_, e := compileClause(c, path.Index(i))
		errs = append(errs, e...)
	}
	return errs
}

// matches tells whether ctx satisfies the clause; depth counts the segments
// being evaluated around it.
func (c *clause) matches(ctx *Context, depth int) bool {
	return c.test(ctx, depth) != c.negate
}

func (c *clause) test(ctx *Context, depth int) bool {
	v, ok := ctx.attribute(c.attr)
	if !ok {
		return c.missing
	}
	switch c.op {
	case waygatev1.OperatorIs:
		return c.has(v)
	case waygatev1.OperatorIsNot:
		return !c.has(v)
	case waygatev1.OperatorIn:
		return c.hasAny(v)
	case waygatev1.OperatorNotIn:
		return !c.hasAny(v)
	case waygatev1.OperatorContains, waygatev1.OperatorStartsWith, waygatev1.OperatorEndsWith:
		return c.affix(v)
	case waygatev1.OperatorNotContains:
		return !c.affix(v)
	case waygatev1.OperatorMatches:
		return c.regexp(v)
	case waygatev1.OperatorNotMatches:
		return !c.regexp(v)
	case waygatev1.OperatorGT, waygatev1.OperatorGTE, waygatev1.OperatorLT, waygatev1.OperatorLTE:
		return c.number(v)
	case waygatev1.OperatorBefore, waygatev1.OperatorAfter:
		return c.time(v)
	case waygatev1.OperatorSemverEq, waygatev1.OperatorSemverLT, waygatev1.OperatorSemverGT:
		return c.version(v)
	case waygatev1.OperatorInSegment:
		return c.inSegment(ctx, depth)
	case waygatev1.OperatorNotInSegment:
		return !c.inSegment(ctx, depth)
	}
	return false
}

// has tells whether the attribute, read as a string, is one of the values.
func (c *clause) has(v any) bool {
	s, ok := stringOf(v)
	if !ok {
		return false
	}
	if c.set != nil {
		_, in := c.set[s]
		return in
	}
	return slices.Contains(c.strs, s)
}

// hasAny is has for an attribute that may be a list: any of its elements.
func (c *clause) hasAny(v any) bool {
	if list, ok := v.([]any); ok {
		return slices.ContainsFunc(list, c.has)
	}
	if list, ok := v.([]string); ok {
		return slices.ContainsFunc(list, func(s string) bool { return c.has(s) })
	}
	return c.has(v)
}

func (c *clause) affix(v any) bool {
	s, ok := stringOf(v)
	if !ok {
		return false
	}
	test := strings.Contains
	switch c.op {
	case waygatev1.OperatorStartsWith:
		test = strings.HasPrefix
	case waygatev1.OperatorEndsWith:
		test = strings.HasSuffix
	}
	for _, want := range c.strs {
		if test(s, want) {
			return true
		}
	}
	return false
}

func (c *clause) regexp(v any) bool {
	s, ok := stringOf(v)
	if !ok {
		return false
	}
	return slices.ContainsFunc(c.res, func(re *regexp.Regexp) bool { return re.MatchString(s) })
}

func (c *clause) number(v any) bool {
	n, ok := numberOf(v)
	if !ok {
		return false
	}
	for _, want := range c.nums {
		switch {
		case c.op == waygatev1.OperatorGT && n > want,
			c.op == waygatev1.OperatorGTE && n >= want,
			c.op == waygatev1.OperatorLT && n < want,
			c.op == waygatev1.OperatorLTE && n <= want:
			return true
		}
	}
	return false
}

func (c *clause) time(v any) bool {
	t, ok := timeOf(v)
	if !ok {
		return false
	}
	for _, want := range c.times {
		if (c.op == waygatev1.OperatorBefore && t.Before(want)) || (c.op == waygatev1.OperatorAfter && t.After(want)) {
			return true
		}
	}
	return false
}

func (c *clause) version(v any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	ver, err := semver.ParseTolerant(s)
	if err != nil {
		return false
	}
	for _, want := range c.vers {
		cmp := ver.Compare(want)
		switch {
		case c.op == waygatev1.OperatorSemverEq && cmp == 0,
			c.op == waygatev1.OperatorSemverLT && cmp < 0,
			c.op == waygatev1.OperatorSemverGT && cmp > 0:
			return true
		}
	}
	return false
}

// inSegment tells whether the context is a member of any of the clause's
// segments (whose keys the schema makes the clause's attribute "key").
func (c *clause) inSegment(ctx *Context, depth int) bool {
	for _, s := range c.segs {
		if s != nil && s.contains(ctx, depth+1) {
			return true
		}
	}
	return false
}
