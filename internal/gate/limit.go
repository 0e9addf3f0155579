package gate

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Unlimited is the tier limit that limits nothing.
const Unlimited = "unlimited"

// periods are the units a limit may count per.
var periods = map[string]time.Duration{
	"second": time.Second,
	"minute": time.Minute,
	"hour":   time.Hour,
	"day":    24 * time.Hour,
	"month":  30 * 24 * time.Hour,
	"year":   365 * 24 * time.Hour,
}

// Rate is a parsed limit: Count requests per Period.
type Rate struct {
	Count  int64
	Period time.Duration
}

// ParseRate parses "<count>/<unit>", e.g. "100/minute".
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(s, "/")
	count, err := strconv.ParseInt(n, 10, 64)
	period, known := periods[unit]
	if !ok || err != nil || count < 1 || !known {
		return Rate{}, fmt.Errorf("%q is not a limit: write <count>/<unit>, e.g. 100/minute, with unit one of second, minute, hour, day, month, year", s)
	}
	return Rate{Count: count, Period: period}, nil
}
