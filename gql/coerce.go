package gql

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/vektah/gqlparser/v2/ast"
)

// Input coercion turns variable and argument values into canonical Go
// values, following graphql-js (stricter than gqlparser's VariableValues in
// places: Int is 32-bit, enums match exactly, strings are not numbers):
// Int → int64, Float → float64, String/ID/enum → string, Boolean → bool,
// lists → []any, input objects → map[string]any, custom scalars unchanged.

// coerceInput coerces v to type t.
func coerceInput(s *ast.Schema, t *ast.Type, v any) (any, error) {
	if v == nil {
		if t.NonNull {
			return nil, fmt.Errorf("expected non-nullable type %q not to be null", t.String())
		}
		return nil, nil
	}
	if t.Elem != nil {
		return coerceList(s, t.Elem, v)
	}
	def := s.Types[t.NamedType]
	if def == nil {
		return nil, fmt.Errorf("unknown type %q", t.NamedType)
	}
	switch def.Kind {
	case ast.Scalar:
		return coerceScalar(def.Name, v)
	case ast.Enum:
		str, ok := v.(string)
		if !ok || def.EnumValues.ForName(str) == nil {
			return nil, fmt.Errorf("value %s does not exist in %q enum", inspectGo(v), def.Name)
		}
		return str, nil
	case ast.InputObject:
		return coerceObject(s, def, v)
	}
	return nil, fmt.Errorf("type %q is not an input type", def.Name)
}

// coerceList coerces a list value; a single value becomes a one-item list.
func coerceList(s *ast.Schema, elem *ast.Type, v any) (any, error) {
	items, ok := v.([]any)
	if !ok {
		one, err := coerceInput(s, elem, v)
		if err != nil {
			return nil, err
		}
		return []any{one}, nil
	}
	out := make([]any, len(items))
	for i, it := range items {
		c, err := coerceInput(s, elem, it)
		if err != nil {
			return nil, fmt.Errorf("at index %d: %w", i, err)
		}
		out[i] = c
	}
	return out, nil
}

// coerceObject coerces an input object, applying field defaults.
func coerceObject(s *ast.Schema, def *ast.Definition, v any) (any, error) {
	in, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected type %q to be an object", def.Name)
	}
	for k := range in {
		if def.Fields.ForName(k) == nil {
			return nil, fmt.Errorf("field %q is not defined by type %q", k, def.Name)
		}
	}
	out := make(map[string]any, len(def.Fields))
	for _, f := range def.Fields {
		fv, has := in[f.Name]
		if !has && f.DefaultValue != nil {
			dv, err := f.DefaultValue.Value(nil)
			if err != nil {
				return nil, err
			}
			fv, has = dv, true
		}
		if !has {
			if f.Type.NonNull {
				return nil, fmt.Errorf("field %q of required type %q was not provided", f.Name, f.Type.String())
			}
			continue
		}
		c, err := coerceInput(s, f.Type, fv)
		if err != nil {
			return nil, fmt.Errorf("in field %q: %w", f.Name, err)
		}
		out[f.Name] = c
	}
	return out, nil
}

// coerceScalar coerces a built-in scalar; custom scalars pass unchanged.
func coerceScalar(name string, v any) (any, error) {
	switch name {
	case "Int":
		return coerceInt(v)
	case "Float":
		f, ok := number(v)
		if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("Float cannot represent non numeric value: %s", inspectGo(v))
		}
		return f, nil
	case "String":
		if str, ok := v.(string); ok {
			return str, nil
		}
		return nil, fmt.Errorf("String cannot represent a non string value: %s", inspectGo(v))
	case "Boolean":
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("Boolean cannot represent a non boolean value: %s", inspectGo(v))
	case "ID":
		return coerceID(v)
	}
	return v, nil
}

// coerceInt accepts integral numbers within 32 bits.
func coerceInt(v any) (any, error) {
	f, ok := number(v)
	if !ok || f != math.Trunc(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("Int cannot represent non-integer value: %s", inspectGo(v))
	}
	if f > math.MaxInt32 || f < math.MinInt32 {
		return nil, fmt.Errorf("Int cannot represent non 32-bit signed integer value: %s", inspectGo(v))
	}
	return int64(f), nil
}

// coerceID accepts strings and integers; integers become decimal strings.
func coerceID(v any) (any, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return strconv.FormatInt(n, 10), nil
		}
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int:
		return strconv.Itoa(v), nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= 1<<53 {
			return strconv.FormatInt(int64(v), 10), nil
		}
	}
	return nil, fmt.Errorf("ID cannot represent value: %s", inspectGo(v))
}

// number returns v as a float64 if it is a JSON or Go number.
func number(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		return f, err == nil
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	case int32:
		return float64(v), true
	case uint64:
		return float64(v), true
	}
	return 0, false
}

// inspectGo formats a Go value for an error message.
func inspectGo(v any) string {
	if b, err := json.Marshal(v); err == nil {
		return inspect(string(b))
	}
	return fmt.Sprintf("%v", v)
}

// appendCanon appends an unambiguous, map-order independent encoding of v
// (as produced by coercion or JSON decoding) for hashing.
func appendCanon(b []byte, v any) []byte {
	if out, ok := appendCanonScalar(b, v); ok {
		return out
	}
	switch v := v.(type) {
	case []any:
		b = append(b, '[')
		for _, it := range v {
			b = appendCanon(b, it)
		}
		return append(b, ']')
	case map[string]any:
		return appendCanonMap(b, v)
	}
	return appendCanonString(append(b, 'x'), fmt.Sprintf("%T:%#v", v, v))
}

// appendCanonScalar appends the encoding of v as appendCanon does when v
// is nil, a bool, a string, a json.Number, an int64 or a float64; ok is
// false for other values. Unlike appendCanon (recursive) it does not make
// b escape, so a stack buffer stays on the stack.
func appendCanonScalar(b []byte, v any) (_ []byte, ok bool) {
	switch v := v.(type) {
	case nil:
		return append(b, 'n'), true
	case bool:
		return appendCanonBool(b, v), true
	case string:
		return appendCanonString(append(b, 's'), v), true
	case json.Number:
		return appendCanonString(append(b, 'j'), string(v)), true
	case int64:
		return appendCanonInt(b, v), true
	case float64:
		return append(strconv.AppendFloat(append(b, 'd'), v, 'g', -1, 64), ';'), true
	}
	return b, false
}

// appendCanonBool appends appendCanon's encoding of v.
func appendCanonBool(b []byte, v bool) []byte {
	if v {
		return append(b, 't')
	}
	return append(b, 'f')
}

// appendCanonInt appends appendCanon's encoding of v.
func appendCanonInt(b []byte, v int64) []byte {
	return append(strconv.AppendInt(append(b, 'i'), v, 10), ';')
}

// appendCanonString appends a length-prefixed string.
func appendCanonString(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	return append(append(b, ':'), s...)
}

// appendCanonMap appends the members of m in key order.
func appendCanonMap(b []byte, m map[string]any) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for _, k := range keys {
		b = appendCanon(appendCanonString(b, k), m[k])
	}
	return append(b, '}')
}
