package schema

import (
	"encoding/json"
	"slices"
)

// An older northbound's ports have no keys (schema/portkeys.go): all
// empty, equal under the keys' unique indexes, so the database cannot be
// converted to this schema at once. It is converted in two steps: first
// to NBStaging, this schema without the keys' indexes; then, once
// courier-nbctl claim-sync has given every port its keys, to NB.
// courier-ctl start does both for a standalone database; a cluster's
// operator runs them (docs/operations.md).

// keyIndexes are the indexes of Port keys, left out of NBStaging.
var keyIndexes = [][]string{{"mac_key"}, {"ip_key"}}

// NBStaging is the northbound schema without the Port keys' indexes.
func NBStaging() []byte {
	var s map[string]any
	if err := json.Unmarshal(NB, &s); err != nil {
		panic(err) // the embedded schema is checked by its tests
	}
	port := s["tables"].(map[string]any)["Port"].(map[string]any)
	var kept []any
	for _, ix := range port["indexes"].([]any) {
		var cols []string
		for _, c := range ix.([]any) {
			cols = append(cols, c.(string))
		}
		if !slices.ContainsFunc(keyIndexes, func(k []string) bool { return slices.Equal(k, cols) }) {
			kept = append(kept, ix)
		}
	}
	port["indexes"] = kept
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err)
	}
	return out
}
