// Command courier-hostd runs Courier on a hypervisor.
package main

import (
	"fmt"
	"os"

	"github.com/courier-sdn/courier/hostd"
)

func main() {
	if err := hostd.App().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "courier-hostd:", err)
		os.Exit(1)
	}
}
