package flags

import (
	"bytes"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	waygatev1 "github.com/waygate-dev/waygate/api/v1alpha1"
)

// ValidateVariationValues checks that every variation value is of the flag's
// type, which the schema cannot see into.
func ValidateVariationValues(typ waygatev1.FlagType, variations []waygatev1.Variation, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, v := range variations {
		if _, err := decodeValue(typ, v.Value.Raw); err != nil {
			errs = append(errs, field.Invalid(path.Index(i).Child("value"), string(v.Value.Raw),
				fmt.Sprintf("variation %q of a %s flag: %v", v.Name, typ, err)))
		}
	}
	return errs
}

// decodeValue reads a variation value of a flag of type typ as the
// OpenFeature SDKs resolve it: bool, string, int64, float64, or (json) what
// encoding/json decodes. An error says what a value of typ looks like.
func decodeValue(typ waygatev1.FlagType, raw []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("value is not valid JSON")
	}
	switch typ {
	case waygatev1.FlagBoolean:
		if _, ok := v.(bool); !ok {
			return nil, fmt.Errorf("value must be true or false")
		}
	case waygatev1.FlagString:
		if _, ok := v.(string); !ok {
			return nil, fmt.Errorf("value must be a string (quote it in YAML)")
		}
	case waygatev1.FlagInteger:
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil {
			return nil, fmt.Errorf("value must be a whole number")
		}
		return i, nil
	case waygatev1.FlagFloat:
		n, ok := v.(json.Number)
		f, err := n.Float64()
		if !ok || err != nil {
			return nil, fmt.Errorf("value must be a number")
		}
		return f, nil
	default:
		// Objects and lists as encoding/json gives them to Go code.
		var plain any
		if err := json.Unmarshal(raw, &plain); err != nil {
			return nil, fmt.Errorf("value is not valid JSON")
		}
		return plain, nil
	}
	return v, nil
}
