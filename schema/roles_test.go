package schema

import (
	"encoding/json"
	"slices"
	"testing"
)

// Every table and column a role names is in the southbound schema, and
// no role may update a column that decides whose a row is: ovsdb-server
// checks the row before an update, not after, so such a column would let
// a client hand its row to somebody else.
func TestRolesNameRealColumns(t *testing.T) {
	var sch struct {
		Tables map[string]struct {
			Columns map[string]any `json:"columns"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(SB, &sch); err != nil {
		t.Fatal(err)
	}
	for role, perms := range Roles() {
		seen := map[string]bool{}
		for _, p := range perms {
			tb, ok := sch.Tables[p.Table]
			if !ok {
				t.Errorf("%s: no table %s", role, p.Table)
				continue
			}
			if seen[p.Table] {
				t.Errorf("%s: table %s twice", role, p.Table)
			}
			seen[p.Table] = true
			for _, c := range p.Update {
				if _, ok := tb.Columns[c]; !ok {
					t.Errorf("%s: %s has no column %s", role, p.Table, c)
				}
			}
			for _, c := range p.Authorization {
				if c == "" {
					continue
				}
				if _, ok := tb.Columns[c]; !ok {
					t.Errorf("%s: %s has no column %s", role, p.Table, c)
				}
				if role == RoleChassis && slices.Contains(p.Update, c) && !(p.Table == "Port_Binding" && c == "chassis") {
					t.Errorf("%s may update %s.%s, which decides whose the row is", role, p.Table, c)
				}
			}
		}
	}
}
