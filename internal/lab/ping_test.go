package lab

import "testing"

func TestPingSummary(t *testing.T) {
	for _, c := range []struct {
		name, out  string
		sent, recv int
	}{
		{"iputils", "PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.\n\n--- 10.0.0.1 ping statistics ---\n" +
			"5 packets transmitted, 4 received, 20% packet loss, time 804ms\nrtt min/avg/max/mdev = 0.041/0.052/0.070/0.011 ms\n", 5, 4},
		{"iputils with errors", "6 packets transmitted, 0 received, +6 errors, 100% packet loss, time 5004ms\n", 6, 0},
		{"busybox", "PING 10.0.0.1 (10.0.0.1): 56 data bytes\n\n--- 10.0.0.1 ping statistics ---\n" +
			"3 packets transmitted, 3 packets received, 0% packet loss\nround-trip min/avg/max = 0.3/0.4/0.6 ms\n", 3, 3},
		{"no summary", "ping: connect: Network is unreachable\n", 0, 0},
	} {
		if sent, recv := PingSummary(c.out); sent != c.sent || recv != c.recv {
			t.Errorf("%s: %d sent, %d answered; want %d, %d", c.name, sent, recv, c.sent, c.recv)
		}
	}
}
