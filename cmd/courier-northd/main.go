// Command courier-northd compiles Courier's northbound into the southbound.
package main

import (
	"fmt"
	"os"

	"github.com/courier-sdn/courier/northd"
)

func main() {
	if err := northd.App().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "courier-northd:", err)
		os.Exit(1)
	}
}
