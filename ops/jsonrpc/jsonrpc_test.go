package jsonrpc

import (
	"encoding/json"
	"io"
	"math/rand"
	"strings"
	"testing"
)

// chunkReader hands out its input a few bytes at a time, so that
// messages and strings are cut at every possible place.
type chunkReader struct {
	s   string
	rng *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := min(1+c.rng.Intn(7), len(c.s), len(p))
	copy(p, c.s[:n])
	c.s = c.s[n:]
	return n, nil
}

func TestFramerCutsMessages(t *testing.T) {
	msgs := []string{
		`{"id":1,"result":[{"uuid":["uuid","x"]}],"error":null}`,
		`{"id":null,"method":"update","params":["w",{"T":{"u":{"new":{"s":"br{ace}s [and] \"quotes\\\" \\\\"}}}}]}`,
		`{"method":"echo","params":[],"id":"echo"}`,
		`{"id":2,"result":{},"error":{"error":"syntax error","details":"}"}}`,
	}
	stream := strings.Join(msgs, "\n") + " \r\n\t"
	for seed := int64(0); seed < 50; seed++ {
		fr := &framer{}
		r := &chunkReader{s: stream, rng: rand.New(rand.NewSource(seed))}
		var got []string
		for {
			m, err := fr.next(r)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			got = append(got, string(m))
		}
		if len(got) != len(msgs) {
			t.Fatalf("seed %d: %d messages, want %d: %q", seed, len(got), len(msgs), got)
		}
		for i := range msgs {
			if got[i] != msgs[i] {
				t.Fatalf("seed %d: message %d\n got %s\nwant %s", seed, i, got[i], msgs[i])
			}
			var m rpcMessage
			if err := m.parse([]byte(got[i])); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			var ref map[string]json.RawMessage
			json.Unmarshal([]byte(msgs[i]), &ref)
			if string(m.ID) != string(ref["id"]) || string(m.Params) != string(ref["params"]) ||
				string(m.Result) != string(ref["result"]) || string(m.Error) != string(ref["error"]) {
				t.Errorf("message %d parsed as %+v", i, m)
			}
		}
	}
	// Anything but an object between messages ends the connection.
	fr := &framer{}
	if _, err := fr.next(strings.NewReader(`{"id":1} x{"id":2}`)); err != nil {
		t.Fatalf("first message: %v", err)
	}
	if _, err := fr.next(strings.NewReader("")); err == nil || err == io.EOF {
		t.Errorf("garbage between messages: err %v", err)
	}
}
