// Command courier-trace shows what Courier does to a packet, stage by
// stage: logically from the southbound's flows, or live through the real
// programs of the chassis it crosses.
package main

import (
	"fmt"
	"os"

	"github.com/courier-sdn/courier/tools/trace"
)

func main() {
	if err := trace.App(os.Stdout).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "courier-trace:", err)
		os.Exit(1)
	}
}
